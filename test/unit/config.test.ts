import * as assert from 'assert';
import { resolveConfig, PRESETS } from '../../src/training/config';

describe('training config', () => {
  it('has the presets of the issue', () => {
    const tiny = PRESETS.tiny;
    assert.deepStrictEqual(
      [tiny.backbone, tiny.widthMultiplier * 64, tiny.stem, tiny.imageSize, tiny.projectorDim, tiny.predictorHiddenDim, tiny.batchSize],
      ['resnet18', 16, 'cifar', 32, 512, 128, 64]);
    assert.deepStrictEqual([PRESETS.cifar.projectorDim, PRESETS.cifar.predictorHiddenDim, PRESETS.cifar.batchSize], [2048, 512, 512]);
    assert.deepStrictEqual([PRESETS.imagenet.backbone, PRESETS.imagenet.imageSize, PRESETS.imagenet.batchSize], ['resnet50', 224, 256]);
    assert.strictEqual(PRESETS.imagenet.bnMomentum, 0.9, 'Keras momentum 0.9 ≡ PyTorch 0.1');
  });

  it('overrides any field and validates it', () => {
    assert.strictEqual(resolveConfig('tiny', { epochs: 3, batchSize: 8 }).batchSize, 8);
    assert.throws(() => resolveConfig('tiny', { batchSize: 0 }), /batchSize must be/);
    assert.throws(() => resolveConfig('tiny', { epochs: 1.5 }), /epochs must be a positive integer/);
    assert.throws(() => resolveConfig('tiny', { backend: 'tpu' }), /backend must be one of/);
    assert.throws(() => resolveConfig('tiny', { colour: 1 }), /Unknown config field "colour"/);
    assert.throws(() => resolveConfig('huge' as never), /Unknown preset "huge"/);
  });
});
