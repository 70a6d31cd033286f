import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { batchNormTraining, batchNormalization, FusedBatchNormalization } from '../../src/training/model/batchNorm';

const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];

describe('fused batch norm', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  for (const shape of [[4, 5, 5, 3], [16, 8]]) {
    it(`matches tfjs's moments + batchNorm, values and gradients, for [${shape}]`, () => {
      const channels = shape[shape.length - 1];
      const axes = shape.slice(0, -1).map((_, i) => i);
      const x = tf.randomNormal(shape, 1, 3, 'float32', 7);
      const gamma = tf.randomNormal([channels], 1, 0.5, 'float32', 8) as tf.Tensor1D;
      const beta = tf.randomNormal([channels], 0, 0.5, 'float32', 9) as tf.Tensor1D;
      const upstream = tf.randomNormal(shape, 0, 1, 'float32', 10);
      const reference = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const { mean, variance } = tf.moments(a, axes);
        return tf.sum(tf.mul(tf.batchNorm(a, mean, variance, b as tf.Tensor1D, g as tf.Tensor1D, 1e-5), upstream));
      };
      const fused = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const { y, mean, variance } = batchNormTraining(a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5);
        tf.dispose([mean, variance]);
        return tf.sum(tf.mul(y, upstream));
      };
      const expected = tf.grads(reference)([x, gamma, beta]);
      const actual = tf.grads(fused)([x, gamma, beta]);
      assert.ok(Math.abs(reference(x, gamma, beta).dataSync()[0] - fused(x, gamma, beta).dataSync()[0]) < 1e-3);
      ['x', 'gamma', 'beta'].forEach((name, i) => {
        const scale = tf.max(tf.abs(expected[i])).dataSync()[0];
        assert.ok(maxAbsDiff(expected[i], actual[i]) < 1e-4 * Math.max(1, scale), `d${name}`);
      });
    });
  }

  it('updates moving statistics like PyTorch (momentum 0.1, unbiased variance) and serialises as BatchNormalization', () => {
    const layer = batchNormalization({ momentum: 0.9, epsilon: 1e-5 });
    const x = tf.tensor2d([[1, 10], [3, 20], [5, 30], [7, 40]]);
    layer.apply(x, { training: true });
    const [, , movingMean, movingVariance] = layer.getWeights();
    const mean = movingMean.dataSync();
    const variance = movingVariance.dataSync();
    // mean 4 and 25; unbiased variance 20/3 and 500/3; start 0 and 1; new = 0.9·old + 0.1·batch
    [0.4, 2.5].forEach((e, i) => assert.ok(Math.abs(mean[i] - e) < 1e-5, `mean ${mean[i]}`));
    [0.9 + 2 / 3, 0.9 + 50 / 3].forEach((e, i) => assert.ok(Math.abs(variance[i] - e) < 1e-4, `variance ${variance[i]}`));
    assert.strictEqual(layer.getClassName(), 'BatchNormalization');
    assert.ok(layer instanceof FusedBatchNormalization);
    const inference = layer.apply(x, { training: false }) as tf.Tensor;
    assert.strictEqual(inference.shape.join(), '4,2');
  });
});
