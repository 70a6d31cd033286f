import * as assert from 'assert';
import { resolveConfig, initialLr } from '../../src/training/config';
import { cosineLr, learningRates } from '../../src/training/schedule';

describe('learning-rate schedule', () => {
  it('scales the base lr linearly with the batch size', () => {
    assert.strictEqual(initialLr(resolveConfig('cifar', { batchSize: 512, baseLr: 0.03 })), 0.06);
    assert.strictEqual(initialLr(resolveConfig('imagenet', { batchSize: 256, baseLr: 0.05 })), 0.05);
  });

  it('decays by a half cosine over the epochs', () => {
    assert.strictEqual(cosineLr(0.1, 0, 10), 0.1);
    assert.ok(Math.abs(cosineLr(0.1, 5, 10) - 0.05) < 1e-12);
    assert.ok(cosineLr(0.1, 9, 10) < 0.003);
    for (let e = 1; e < 10; e++) assert.ok(cosineLr(0.1, e, 10) < cosineLr(0.1, e - 1, 10));
  });

  it('keeps the predictor at the initial lr while the encoder decays', () => {
    const config = resolveConfig('tiny', { epochs: 4, batchSize: 128, baseLr: 0.06 });
    const start = learningRates(config, 0);
    const late = learningRates(config, 3);
    assert.strictEqual(start.predictor, 0.03);
    assert.strictEqual(late.predictor, 0.03);
    assert.ok(late.encoder < start.encoder / 4);
    const decayed = learningRates(resolveConfig('tiny', { epochs: 4, fixedPredictorLr: false }), 3);
    assert.strictEqual(decayed.predictor, decayed.encoder);
  });
});
