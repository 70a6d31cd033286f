import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/training/tfjs/backend';
import { resolveConfig } from '../../src/training/config';
import { buildSimSiam } from '../../src/training/model/simsiam';
import { SgdMomentum } from '../../src/training/optimizer';
import { computeGradients, readAndDispose, parametersOf, parameterGroups } from '../../src/training/step';
import { DataParallelTrainer, flatten, microBatchSizes, replicaCount, unflatten } from '../../src/training/tfjs/dataParallel';
import { Rng } from '../../src/training/data/rng';

const CONFIG = resolveConfig('tiny', {
  imageSize: 16, batchSize: 16, widthMultiplier: 0.125, projectorDim: 32, predictorHiddenDim: 8, replicas: 2, seed: 5,
});

describe('data-parallel training', function () {
  this.timeout(120_000);

  before(async () => {
    await selectBackend('wasm');
  });

  it('shards only single-threaded backends, into equal shards of at least 8', () => {
    assert.strictEqual(replicaCount(CONFIG, 'wasm'), 2);
    assert.strictEqual(replicaCount(CONFIG, 'tensorflow'), 1);
    assert.strictEqual(replicaCount({ ...CONFIG, replicas: 0 }, 'wasm', 8), 2, 'batch 16 makes at most 2 shards of 8');
    assert.strictEqual(replicaCount({ ...CONFIG, replicas: 0, batchSize: 64 }, 'wasm', 2), 2);
    assert.strictEqual(replicaCount({ ...CONFIG, replicas: 3, batchSize: 64 }, 'cpu'), 2, '64 does not split in 3');
    assert.strictEqual(replicaCount({ ...CONFIG, replicas: 1 }, 'wasm'), 1);
  });

  it('applies the mean of the shard gradients, and keeps every replica identical', async () => {
    const model = buildSimSiam(CONFIG);
    const reference = buildSimSiam(CONFIG); // same seed: same initial weights
    const params = parametersOf(model);
    const refParams = parametersOf(reference);
    const optimizer = new SgdMomentum(CONFIG.momentum, CONFIG.weightDecay);
    const refOptimizer = new SgdMomentum(CONFIG.momentum, CONFIG.weightDecay);
    const parallel = await DataParallelTrainer.create(model, params.variables, optimizer, CONFIG, 'wasm', 2);
    try {
      const rng = new Rng(9);
      const floats = CONFIG.batchSize * 16 * 16 * 3;
      const half = floats / 2;
      const lrs = { encoder: 0.05, predictor: 0.1 };
      for (let step = 0; step < 3; step++) {
        const view1 = Float32Array.from({ length: floats }, () => rng.uniform(-2, 2));
        const view2 = Float32Array.from({ length: floats }, () => rng.uniform(-2, 2));
        const result = await parallel.step(view1.slice(), view2.slice(), CONFIG.batchSize, parameterGroups(params, lrs));

        const shardGradients = [0, 1].map((s) => {
          const shape: [number, number, number, number] = [8, 16, 16, 3];
          const x1 = tf.tensor4d(view1.subarray(s * half, (s + 1) * half), shape);
          const x2 = tf.tensor4d(view2.subarray(s * half, (s + 1) * half), shape);
          const g = computeGradients(reference, x1, x2, refParams.variables);
          const flat = flatten(refParams.variables.map((v) => g.grads[v.name]));
          tf.dispose([x1, x2]);
          return { flat, ...readAndDispose(g) };
        });
        const mean = shardGradients[0].flat.map((x, i) => (x + shardGradients[1].flat[i]) * 0.5);
        const grads = unflatten(mean, refParams.variables);
        refOptimizer.step(parameterGroups(refParams, lrs), grads);
        tf.dispose(Object.values(grads));
        const expectedLoss = (shardGradients[0].loss + shardGradients[1].loss) / 2;
        assert.ok(Math.abs(result.loss - expectedLoss) < 1e-6, `loss ${result.loss} vs ${expectedLoss}`);
      }
      const main = flatten(params.variables);
      const expected = flatten(refParams.variables);
      const replica = await parallel.replicaWeights(0);
      assert.ok(main.some((x, i) => x !== flatten(parametersOf(buildSimSiam(CONFIG)).variables)[i]), 'the weights moved');
      const maxDiff = main.reduce((m, x, i) => Math.max(m, Math.abs(x - expected[i])), 0);
      assert.ok(maxDiff < 1e-5, `main vs single-process reference: ${maxDiff}`);
      assert.deepStrictEqual(replica, main, 'the replica is bitwise identical to the main model');
    } finally {
      await parallel.close();
      optimizer.dispose();
      refOptimizer.dispose();
    }
  });

  it('splits a shard into micro-batches no larger than asked, as even as can be', () => {
    assert.deepStrictEqual(microBatchSizes(16, 0), [16]);
    assert.deepStrictEqual(microBatchSizes(16, 16), [16]);
    assert.deepStrictEqual(microBatchSizes(16, 4), [4, 4, 4, 4]);
    assert.deepStrictEqual(microBatchSizes(16, 5), [4, 4, 4, 4]);
    assert.deepStrictEqual(microBatchSizes(13, 4), [4, 3, 3, 3]);
    assert.deepStrictEqual(microBatchSizes(8, 32), [8]);
  });

  it('trains a shard in micro-batches on one thread as replicas would train them in parallel', async () => {
    // Batch 16: two threads of 8 and one thread in micro-batches of 8 see the same batch-norm
    // groups, so they must make the same update; uneven micro-batches (6 + 5 + 5) are weighted by size.
    const oneThread = { ...CONFIG, replicas: 1 };
    const trainers = [
      { shards: 2, microBatch: 0, config: CONFIG },
      { shards: 1, microBatch: 8, config: oneThread },
    ].map(({ shards, microBatch, config }) => {
      const model = buildSimSiam(config);
      const params = parametersOf(model);
      const optimizer = new SgdMomentum(config.momentum, config.weightDecay);
      return { model, params, optimizer, parallel: DataParallelTrainer.create(model, params.variables, optimizer, config, 'wasm', shards, microBatch) };
    });
    const started = await Promise.all(trainers.map((t) => t.parallel));
    try {
      const rng = new Rng(3);
      const floats = CONFIG.batchSize * 16 * 16 * 3;
      const lrs = { encoder: 0.05, predictor: 0.1 };
      for (let step = 0; step < 2; step++) {
        const view1 = Float32Array.from({ length: floats }, () => rng.uniform(-2, 2));
        const view2 = Float32Array.from({ length: floats }, () => rng.uniform(-2, 2));
        const results = [];
        for (const [i, parallel] of started.entries()) {
          results.push(await parallel.step(view1.slice(), view2.slice(), CONFIG.batchSize, parameterGroups(trainers[i].params, lrs)));
        }
        assert.ok(Math.abs(results[0].loss - results[1].loss) < 1e-6, `loss ${results[0].loss} vs ${results[1].loss}`);
        assert.ok(Math.abs(results[0].zStd - results[1].zStd) < 1e-6, `z-std ${results[0].zStd} vs ${results[1].zStd}`);
      }
      const [parallelWeights, microWeights] = trainers.map((t) => flatten(t.params.variables));
      const maxDiff = parallelWeights.reduce((m, x, i) => Math.max(m, Math.abs(x - microWeights[i])), 0);
      assert.ok(maxDiff < 1e-5, `two threads vs one thread in micro-batches: ${maxDiff}`);
      assert.ok(parallelWeights.some((x, i) => x !== flatten(parametersOf(buildSimSiam(CONFIG)).variables)[i]), 'the weights moved');

      // Uneven micro-batches: the loss is the image-weighted mean of the micro-batches' losses.
      const uneven = await DataParallelTrainer.create(trainers[1].model, trainers[1].params.variables, trainers[1].optimizer,
        oneThread, 'wasm', 1, 6);
      const view = (seed: number) => { const r = new Rng(seed); return Float32Array.from({ length: floats }, () => r.uniform(-2, 2)); };
      const [v1, v2] = [view(11), view(12)];
      const parts = [6, 5, 5];
      let start = 0;
      let expected = 0;
      for (const n of parts) {
        const per = 16 * 16 * 3;
        const x1 = tf.tensor4d(v1.slice(start * per, (start + n) * per), [n, 16, 16, 3]);
        const x2 = tf.tensor4d(v2.slice(start * per, (start + n) * per), [n, 16, 16, 3]);
        expected += (n / 16) * readAndDispose(computeGradients(trainers[1].model, x1, x2, trainers[1].params.variables)).loss;
        tf.dispose([x1, x2]);
        start += n;
      }
      const result = await uneven.step(v1, v2, 16, parameterGroups(trainers[1].params, { encoder: 0, predictor: 0 }));
      assert.ok(Math.abs(result.loss - expected) < 1e-6, `weighted loss ${result.loss} vs ${expected}`);
      await uneven.close();
    } finally {
      await Promise.all(started.map((p) => p.close()));
      trainers.forEach((t) => t.optimizer.dispose());
    }
  });
});
