import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { resolveConfig, PRESETS, AUGMENTATION_FIELDS } from '../../src/training/config';
import { augmentConfigFor, defaultAugmentConfig } from '../../src/training/data/augment';
import { readRun, RUN_FILE } from '../../src/training/run/runStore';

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
    assert.throws(() => resolveConfig('tiny', { seed: 2 ** 32 }), /seed must be an integer in \[0, 4294967295\]/, 'seeds past 32 bits would repeat smaller ones');
    assert.strictEqual(resolveConfig('tiny', { seed: 2 ** 32 - 1 }).seed, 2 ** 32 - 1);
    assert.throws(() => resolveConfig('tiny', { replicas: 65 }), /replicas must be an integer in \[0, 64\]/);
    assert.throws(() => resolveConfig('tiny', { loaderThreads: 1000 }), /loaderThreads must be an integer in \[0, 64\]/);
  });

  it('holds the augmentation: recipe defaults, blur by image size unless set, validated like any field', () => {
    const tiny = resolveConfig('tiny');
    assert.deepStrictEqual(AUGMENTATION_FIELDS.map((f) => tiny[f]), [0.2, 1, 1, 0.8, 0.2, 0, 0.5]);
    assert.strictEqual(resolveConfig('tiny', { imageSize: 96 }).blurP, 0.5, 'blur follows the size');
    assert.strictEqual(resolveConfig('imagenet', { blurP: 0.1 }).blurP, 0.1, 'unless set');
    assert.deepStrictEqual(augmentConfigFor(resolveConfig('imagenet')), defaultAugmentConfig(224), 'the recipe is the default');
    const custom = augmentConfigFor(resolveConfig('tiny', { cropScaleMin: 0.5, colorJitter: 0.5, colorJitterP: 1, grayscaleP: 0, flipP: 0 }));
    assert.deepStrictEqual([custom.cropScale, custom.jitter, custom.jitterP, custom.grayscaleP, custom.flipP],
      [[0.5, 1], { brightness: 0.2, contrast: 0.2, saturation: 0.2, hue: 0.05 }, 1, 0, 0]);
    assert.throws(() => resolveConfig('tiny', { cropScaleMin: 0 }), /cropScaleMin must be a fraction/);
    assert.throws(() => resolveConfig('tiny', { flipP: 1.5 }), /flipP must be a probability/);
    assert.throws(() => resolveConfig('tiny', { cropScaleMin: 0.8, cropScaleMax: 0.5 }), /cropScaleMin \(0\.8\) must not exceed cropScaleMax/);
  });

  it('reads a run.json from before the augmentation was recorded with the recipe it trained with, and refuses a bad one by name', () => {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-config-'));
    try {
      const config: Record<string, unknown> = { ...resolveConfig('imagenet') };
      for (const field of AUGMENTATION_FIELDS) delete config[field];
      const record = { id: 'r', name: 'r', createdAt: '2026-01-01T00:00:00Z', config, backend: 'wasm',
        dataset: { root: '/data', trainImages: 1, testImages: 0, classes: [] } };
      fs.writeFileSync(path.join(runDir, RUN_FILE), JSON.stringify(record));
      assert.deepStrictEqual(readRun(runDir).config, resolveConfig('imagenet'));
      fs.writeFileSync(path.join(runDir, RUN_FILE), JSON.stringify({ ...record, config: { ...config, batchSize: 'many' } }));
      assert.throws(() => readRun(runDir), (error: Error) => error.message.includes(path.join(runDir, RUN_FILE)) && /batchSize must be/.test(error.message));
      fs.writeFileSync(path.join(runDir, RUN_FILE), JSON.stringify({ ...record, dataset: { root: '/data' } }));
      assert.throws(() => readRun(runDir), /run\.json is not a valid run\.json: field "dataset\.trainImages"/);
    } finally {
      fs.rmSync(runDir, { recursive: true, force: true });
    }
  });
});
