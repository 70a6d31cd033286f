import * as assert from 'assert';
import { parseEngineMessage, parseHostMessage, message, PROTOCOL_VERSION, ProtocolError } from '../../src/training/protocol';

describe('engine protocol', () => {
  it('accepts well-formed messages of both directions', () => {
    assert.strictEqual(parseHostMessage({ v: PROTOCOL_VERSION, type: 'stop' }).type, 'stop');
    const step = message({ type: 'step', step: 3, epoch: 0, batch: 3, batchesPerEpoch: 10, loss: -0.2, lr: 0.01 });
    assert.deepStrictEqual(parseEngineMessage(JSON.parse(JSON.stringify(step))), step);
  });

  it('rejects other versions, unknown types and malformed fields', () => {
    assert.throws(() => parseHostMessage({ v: 99, type: 'stop' }), ProtocolError);
    assert.throws(() => parseHostMessage({ v: PROTOCOL_VERSION, type: 'format-disk' }), /unknown host message type/);
    assert.throws(() => parseHostMessage({ v: PROTOCOL_VERSION, type: 'toString' }), /unknown host message type/);
    assert.throws(() => parseHostMessage({ v: PROTOCOL_VERSION, type: 'train', folder: 3, preset: 'tiny', overrides: {} }), /field "folder"/);
    assert.throws(() => parseEngineMessage({ v: PROTOCOL_VERSION, type: 'epoch', epoch: 1 }), /field "epochs"/);
    assert.throws(() => parseEngineMessage(null), ProtocolError);
  });
});
