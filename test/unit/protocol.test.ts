import * as assert from 'assert';
import { resolveConfig } from '../../src/training/config';
import {
  mergeMetrics, message, parseEngineMessage, parseHostMessage, PROTOCOL_VERSION, ProtocolError, type MetricRecord,
} from '../../src/training/protocol';

describe('engine protocol', () => {
  const config = resolveConfig('tiny');
  const dataset = { root: '/data', trainImages: 10, testImages: 2, classes: ['a', 'b'] };
  const started = message({
    type: 'started', runDir: '/runs/r', runId: 'r', backend: 'wasm', config, dataset, startStep: 0, batchesPerEpoch: 3,
  });

  it('accepts well-formed messages of both directions, unchanged through JSON', () => {
    assert.strictEqual(parseHostMessage({ v: PROTOCOL_VERSION, type: 'stop' }).type, 'stop');
    const step = message({ type: 'metric', record: { kind: 'step', step: 3, epoch: 0, loss: -0.2, lr: 0.01 } });
    assert.deepStrictEqual(parseEngineMessage(JSON.parse(JSON.stringify(step))), step);
    assert.deepStrictEqual(parseEngineMessage(JSON.parse(JSON.stringify(started))), started);
    const train = message({ type: 'train', folder: '/data', config });
    assert.deepStrictEqual(parseHostMessage(JSON.parse(JSON.stringify(train))), train);
  });

  it('rejects other versions, unknown types and malformed fields', () => {
    assert.throws(() => parseHostMessage({ v: 99, type: 'stop' }), ProtocolError);
    assert.throws(() => parseHostMessage({ v: PROTOCOL_VERSION, type: 'format-disk' }), /unknown host message type/);
    assert.throws(() => parseHostMessage({ v: PROTOCOL_VERSION, type: 'toString' }), /unknown host message type/);
    assert.throws(() => parseHostMessage({ v: PROTOCOL_VERSION, type: 'train', folder: 3, config }), /field "folder"/);
    assert.throws(() => parseEngineMessage({ v: PROTOCOL_VERSION, type: 'metric', record: { kind: 'epoch', step: 1, epoch: 1 } }),
      /field "record\.meanLoss"/);
    assert.throws(() => parseEngineMessage(null), ProtocolError);
  });

  it('checks nested fields: the config, the dataset summary, a record, a neighbour list', () => {
    assert.throws(() => parseHostMessage({ ...message({ type: 'train', folder: '/data', config }), config: { ...config, batchSize: 0 } }),
      /config.*batchSize must be/);
    assert.throws(() => parseHostMessage({ ...message({ type: 'train', folder: '/data', config }), config: { ...config, colour: 1 } }),
      /unknown field "colour"/);
    assert.throws(() => parseEngineMessage({ ...started, dataset: { ...dataset, classes: [1] } }), /field "dataset\.classes\.0"/);
    assert.throws(() => parseEngineMessage({ ...started, dataset: { ...dataset, trainImages: -1 } }), /field "dataset\.trainImages"/);
    assert.throws(() => parseEngineMessage(message({ type: 'metric', record: { kind: 'step', step: 1.5, epoch: 0, loss: 0, lr: 0 } })),
      /field "record\.step"/);
    assert.throws(() => parseEngineMessage({
      v: PROTOCOL_VERSION, type: 'similarResult', query: 'q', neighbours: [{ path: 'a', score: 0.9, label: null }, { path: 'b', score: 'high', label: null }],
    }), /field "neighbours\.1\.score"/);
  });
});

describe('metric histories', () => {
  it('merges overlapping sources into one record per kind and step, in step order, the later source winning', () => {
    const step = (s: number, loss: number): MetricRecord => ({ kind: 'step', step: s, epoch: 0, loss, lr: 0.1 });
    const evalAt0: MetricRecord = { kind: 'eval', step: 0, epoch: 0, knnTop1: 0.2 };
    const merged = mergeMetrics([evalAt0, step(1, -0.1), step(2, -0.2)], [step(2, -0.25), step(3, -0.3)]);
    assert.deepStrictEqual(merged, [evalAt0, step(1, -0.1), step(2, -0.25), step(3, -0.3)]);
  });
});
