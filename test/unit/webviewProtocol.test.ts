import * as assert from 'assert';
import {
  parseFromWebview, parsePanelState, parseToWebview, webviewMessage, WebviewProtocolError, WEBVIEW_PROTOCOL_VERSION,
} from '../../src/webview/protocol';

const progress = {
  running: true, step: 3, epochsDone: 0, epochs: 5, batchesPerEpoch: 10, loss: { of: 'step', value: -0.2 }, knnTop1: null,
  phase: { task: 'evaluate', done: 3, total: 9 }, etaSeconds: 12.5,
} as const;
const run = {
  runDir: '/data/.simsiam/runs/r1', id: 'r1', name: 'r1', datasetRoot: '/data', status: 'running', progress,
  backend: 'wasm', preset: 'tiny', message: null,
} as const;
const shown = { summary: 'epoch 1/5 · step 3/50', banner: null, emptyNotes: ['Waiting for data…'] };

describe('webview protocol', () => {
  it('round-trips well-formed messages in both directions', () => {
    const init = webviewMessage({
      type: 'init', run, compareOptions: [{ runDir: '/x', label: 'x' }], galleryQuery: null,
      history: [
        { kind: 'eval', step: 0, epoch: 0, knnTop1: 0.1 },
        { kind: 'step', step: 1, epoch: 0, loss: -0.2, lr: 0.01 },
        { kind: 'epoch', step: 10, epoch: 1, meanLoss: -0.3, lr: 0.01, zStd: 0.02, zStdReference: 0.044, knnTop1: null,
          imagesPerSecond: 100, seconds: 3, skippedFiles: 0 },
      ],
    });
    assert.deepStrictEqual(parseToWebview(JSON.parse(JSON.stringify(init))), init);
    const query = webviewMessage({ type: 'query', source: 'path', path: 'cats/a.png' });
    assert.deepStrictEqual(parseFromWebview(JSON.parse(JSON.stringify(query))), query);
    const rendered = webviewMessage({ type: 'rendered', stepPoints: 1, epochPoints: 1, comparePoints: 0, latest: init.history, ...shown });
    assert.deepStrictEqual(parseFromWebview(JSON.parse(JSON.stringify(rendered))), rendered);
    assert.strictEqual(parseFromWebview({ v: WEBVIEW_PROTOCOL_VERSION, type: 'compare', runDir: null }).type, 'compare');
  });

  it('rejects other versions, unknown or inherited types and malformed fields', () => {
    const v = WEBVIEW_PROTOCOL_VERSION;
    const bad: unknown[] = [
      null, 'ready', [], { type: 'ready' }, { v: v + 1, type: 'ready' },
      { v, type: 'deleteEverything' }, { v, type: 'toString' }, { v, type: '__proto__' },
      { v, type: 'openImage' }, { v, type: 'openImage', path: '' }, { v, type: 'openImage', path: 42 },
      { v, type: 'openImage', path: 'x'.repeat(5000) },
      { v, type: 'query', source: 'everything' }, { v, type: 'query', source: 'path' },
      { v, type: 'rendered', stepPoints: -1, epochPoints: 0, comparePoints: 0 },
      { v, type: 'rendered', stepPoints: 1.5, epochPoints: 0, comparePoints: 0 },
      { v, type: 'log', level: 'info', message: 'x' },
    ];
    for (const raw of bad) assert.throws(() => parseFromWebview(raw), WebviewProtocolError, `accepted ${JSON.stringify(raw)}`);

    assert.throws(() => parseFromWebview({ v, type: 'query', source: 'path' }), /source "path" needs a path/);
    assert.throws(() => parseToWebview({ v, type: 'status', run: { ...run, status: 'exploded' } }), /field "run.status"/);
    assert.throws(() => parseToWebview({ v, type: 'append', records: [{ kind: 'step', step: 1, epoch: 0, loss: '0.1', lr: 0.1 }] }), /field "records.0.loss"/);
    assert.throws(() => parseToWebview({ v, type: 'append', records: [{ kind: 'weights', step: 1, epoch: 0 }] }), /field "records.0.kind"/);
    assert.throws(() => parseToWebview({ v, type: 'gallery', query: { path: 'a', src: 'b', label: null }, neighbours: [], checkpointStep: 1 }), /field "query.score"/);
  });

  it('checks nested fields all the way down, naming the one that is malformed', () => {
    const v = WEBVIEW_PROTOCOL_VERSION;
    const image = { path: 'cats/a.png', src: 'https://file+.vscode-resource/a.png', label: 'cats', score: 0.9 };
    const epoch = { kind: 'epoch', step: 10, epoch: 1, meanLoss: -0.3, lr: 0.01, zStd: 0.02, zStdReference: 0.044, knnTop1: null,
      imagesPerSecond: 100, seconds: 3, skippedFiles: 0 };
    const malformed: [unknown, RegExp][] = [
      [{ v, type: 'gallery', query: image, neighbours: [image, { ...image, score: '0.8' }], checkpointStep: 1 }, /field "neighbours.1.score"/],
      [{ v, type: 'gallery', query: image, neighbours: [{ ...image, label: 3 }], checkpointStep: 1 }, /field "neighbours.0.label"/],
      [{ v, type: 'init', run, history: [epoch, { ...epoch, step: 20, skippedFiles: -1 }], compareOptions: [], galleryQuery: null },
        /field "history.1.skippedFiles"/],
      [{ v, type: 'init', run: { ...run, progress: { ...progress, etaSeconds: Number.POSITIVE_INFINITY } }, history: [], compareOptions: [], galleryQuery: null },
        /field "run.progress.etaSeconds"/],
      [{ v, type: 'status', run: { ...run, progress: { ...progress, phase: { task: 'decode', done: -1, total: 9 } } } }, /field "run.progress.phase.done"/],
      [{ v, type: 'status', run: { ...run, progress: { ...progress, loss: { of: 'median', value: 0 } } } }, /field "run.progress.loss.of"/],
      [{ v, type: 'init', run, history: [], compareOptions: [{ runDir: '/x', label: 7 }], galleryQuery: null }, /field "compareOptions.0.label"/],
      // A diverged step never reaches a chart: the engine stops instead of reporting a non-finite loss.
      [{ v, type: 'history', records: [{ kind: 'step', step: 1, epoch: 0, loss: Number.NaN, lr: 0.01 }] }, /field "records.0.loss"/],
      [{ v, type: 'compareSeries', runDir: '/x', label: 'x', steps: [1, 2.5], losses: [0, 0] }, /field "steps.1"/],
    ];
    for (const [raw, field] of malformed) assert.throws(() => parseToWebview(raw), field, `accepted ${JSON.stringify(raw)}`);
    const rendered = { v, type: 'rendered', stepPoints: 1, epochPoints: 1, comparePoints: 0, ...shown };
    assert.throws(() => parseFromWebview({ ...rendered, latest: [{ ...epoch, knnTop1: 'high' }] }), /field "latest.0.knnTop1"/);
    // The last record of each of the four kinds at most.
    assert.throws(() => parseFromWebview({ ...rendered, latest: [epoch, epoch, epoch, epoch, epoch] }), /field "latest"/);
    assert.throws(() => parseFromWebview({ ...rendered, latest: [], banner: 'x'.repeat(10_001) }), /field "banner"/);
    assert.throws(() => parseFromWebview({ ...rendered, latest: [], emptyNotes: [3] }), /field "emptyNotes.0"/);
  });

  it('reads back only a well-formed saved panel state', () => {
    const state = { runDir: '/data/.simsiam/runs/r1', compareRunDir: null, queryPath: 'cats/a.png' };
    assert.deepStrictEqual(parsePanelState(state), state);
    for (const bad of [undefined, null, {}, { runDir: 3 }, { runDir: '' }, { runDir: '/r', queryPath: 7 }]) {
      assert.strictEqual(parsePanelState(bad), null, JSON.stringify(bad));
    }
  });
});
