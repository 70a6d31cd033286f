import * as assert from 'assert';
import {
  parseFromWebview, parseToWebview, webviewMessage, WebviewProtocolError, WEBVIEW_PROTOCOL_VERSION,
} from '../../src/webview/protocol';

const run = {
  runDir: '/data/.simsiam/runs/r1', id: 'r1', name: 'r1', datasetRoot: '/data', status: 'running', step: 3, epoch: 0,
  epochs: 5, batchesPerEpoch: 10, backend: 'wasm', preset: 'tiny', message: null, etaSeconds: 12.5,
} as const;

describe('webview protocol', () => {
  it('round-trips well-formed messages in both directions', () => {
    const init = webviewMessage({
      type: 'init', run, compareOptions: [{ runDir: '/x', label: 'x' }], galleryQuery: null,
      history: [
        { kind: 'eval', step: 0, epoch: 0, knnTop1: 0.1 },
        { kind: 'step', step: 1, epoch: 0, loss: Number.NaN, lr: 0.01 },
        { kind: 'epoch', step: 10, epoch: 1, meanLoss: -0.3, lr: 0.01, zStd: 0.02, zStdReference: 0.044, knnTop1: null,
          imagesPerSecond: 100, seconds: 3, skippedFiles: 0 },
      ],
    });
    assert.strictEqual(parseToWebview(init), init);
    const query = webviewMessage({ type: 'query', source: 'path', path: 'cats/a.png' });
    assert.deepStrictEqual(parseFromWebview(JSON.parse(JSON.stringify(query))), query);
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

    assert.throws(() => parseToWebview({ v, type: 'status', run: { ...run, status: 'exploded' } }), /field "run"/);
    assert.throws(() => parseToWebview({ v, type: 'append', records: [{ kind: 'step', step: 1, epoch: 0, loss: '0.1', lr: 0.1 }] }), /field "records"/);
    assert.throws(() => parseToWebview({ v, type: 'append', records: [{ kind: 'weights', step: 1, epoch: 0 }] }), /field "records"/);
    assert.throws(() => parseToWebview({ v, type: 'gallery', query: { path: 'a', src: 'b', label: null }, neighbours: [], checkpointStep: 1 }), /field "query"/);
  });
});
