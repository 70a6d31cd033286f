// One metric record's way from the engine to the chart: the engine's message, the IPC channel
// (JSON), the host's validation, the panel's live forwarding, the webview channel, the webview's
// validation and its store. The record must arrive unchanged, and once, however the live stream
// and the histories the panel also sends overlap.
import * as assert from 'assert';
import { mergeMetrics, message, parseEngineMessage, type MetricRecord, type StepRecord } from '../../src/training/protocol';
import { LIVE_FLUSH_MS, LiveMetrics } from '../../src/host/panel/liveMetrics';
import { parseToWebview, webviewMessage, type ToWebviewMessage, type WebviewMessageBody } from '../../src/webview/protocol';
import { MetricStore } from '../../media/src/metricStore';

/** What crossing a process or webview boundary leaves of a message. */
const overTheWire = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

/** The engine side: a record as the trainer emits it, received and validated by the host. */
function fromEngine(record: MetricRecord): MetricRecord {
  const received = parseEngineMessage(overTheWire(message({ type: 'metric', record })));
  assert.strictEqual(received.type, 'metric');
  return received.record;
}

/** The webview side: a message the panel posted, received and validated by the panel's script. */
function inWebview(body: WebviewMessageBody<ToWebviewMessage>): ToWebviewMessage {
  return parseToWebview(overTheWire(webviewMessage(body)));
}

function applyTo(store: MetricStore, received: ToWebviewMessage): void {
  if (received.type === 'append') store.append(received.records);
  else if (received.type === 'history') store.replace(received.records);
  else assert.fail(`unexpected ${received.type} message`);
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('metric path, engine to chart', () => {
  const step: StepRecord = { kind: 'step', step: 7, epoch: 0, loss: -0.123456789, lr: 0.0234375 };
  const next: StepRecord = { kind: 'step', step: 8, epoch: 0, loss: -0.13, lr: 0.0234375 };
  const initialKnn: MetricRecord = { kind: 'eval', step: 0, epoch: 0, knnTop1: 0.4 };

  it('delivers a live step record unchanged, batched into one append message', async () => {
    const posted: ToWebviewMessage[] = [];
    const live = new LiveMetrics((append) => posted.push(inWebview(append)));
    live.push(fromEngine(step));
    live.push(fromEngine(next));
    assert.strictEqual(posted.length, 0, 'a record was posted before the batch interval ended');
    await wait(LIVE_FLUSH_MS + 50);
    assert.strictEqual(posted.length, 1);

    const store = new MetricStore();
    applyTo(store, posted[0]);
    assert.deepStrictEqual(store.steps, [step, next]);
    assert.deepStrictEqual(store.latest(), [next]);
    live.dispose();
  });

  it('keeps one record per step when the live stream and a history overlap, in either order', () => {
    const posted: ToWebviewMessage[] = [];
    const live = new LiveMetrics((append) => posted.push(inWebview(append)));
    const session = [initialKnn, step].map(fromEngine);
    // The host's history: the run's file (flushed once per epoch) merged with what the session streamed.
    const file: MetricRecord[] = [initialKnn];
    const history = inWebview({ type: 'history', records: mergeMetrics(file, session) });

    // The live batch that was in flight when the history was built arrives after it, and before it.
    live.push(session[1]);
    live.flush();
    for (const order of [[history, posted[0]], [posted[0], history]]) {
      const store = new MetricStore();
      order.forEach((received) => applyTo(store, received));
      assert.deepStrictEqual(store.steps, [step]);
      assert.deepStrictEqual(store.evals, [initialKnn]);
      assert.deepStrictEqual(store.latest(), [initialKnn, step]);
    }
    live.dispose();
  });

  it('puts a late or repeated record in its place, once, the later one winning', () => {
    const store = new MetricStore();
    const steps = [1, 2, 3, 4, 5].map((n): StepRecord => ({ kind: 'step', step: n, epoch: 0, loss: -n / 10, lr: 0.01 }));
    store.replace([...steps, steps[4]]);
    const revised: StepRecord = { ...steps[2], loss: -0.9 };
    const epoch: MetricRecord = { kind: 'epoch', step: 5, epoch: 1, meanLoss: -0.3, lr: 0.01, zStd: 0.02, zStdReference: 0.044,
      knnTop1: 0.5, imagesPerSecond: 100, seconds: 3, skippedFiles: 0 };
    store.append([revised, epoch, steps[4]]);
    assert.deepStrictEqual(store.steps, [steps[0], steps[1], revised, steps[3], steps[4]]);
    assert.deepStrictEqual(store.latest(), [steps[4], epoch]);
  });

  it('sends nothing for an empty batch and nothing after it is disposed', async () => {
    const posted: unknown[] = [];
    const live = new LiveMetrics((append) => posted.push(append), 10);
    live.flush();
    live.push(step);
    live.dispose();
    await wait(30);
    assert.deepStrictEqual(posted, []);
  });
});
