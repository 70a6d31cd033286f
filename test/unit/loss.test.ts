import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { negativeCosine, simsiamLoss } from '../../src/training/loss';

describe('SimSiam loss', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('is −cos on hand-computed vectors', () => {
    // cos([1,0],[1,1]) = 1/√2; cos([0,2],[0,-3]) = −1 → D = −mean(0.7071, −1) = 0.1464
    const p = tf.tensor2d([[1, 0], [0, 2]]);
    const z = tf.tensor2d([[1, 1], [0, -3]]);
    const d = negativeCosine(p, z).dataSync()[0];
    assert.ok(Math.abs(d - -(Math.SQRT1_2 - 1) / 2) < 1e-6, `D = ${d}`);
  });

  it('pairs each prediction with the other view\'s projection (crossed)', () => {
    const p1 = tf.tensor2d([[1, 0, 0]]);
    const p2 = tf.tensor2d([[0, 1, 0]]);
    const z1 = tf.tensor2d([[0, 1, 0]]); // identical to p2: the uncrossed pairing would score p2·z2 and p1·z1
    const z2 = tf.tensor2d([[1, 0, 0]]); // identical to p1
    const crossed = simsiamLoss(p1, p2, z1, z2).dataSync()[0];
    assert.ok(Math.abs(crossed - -1) < 1e-6, `crossed pairing gives −1, got ${crossed}`);
    const uncrossed = (negativeCosine(p1, z1).dataSync()[0] + negativeCosine(p2, z2).dataSync()[0]) / 2;
    assert.ok(Math.abs(uncrossed) < 1e-6, 'the same-view pairing would give 0: the test distinguishes them');
  });

  it('lets no gradient flow into z, and a non-zero one into p', () => {
    const p1 = tf.randomNormal([4, 8]) as tf.Tensor2D;
    const p2 = tf.randomNormal([4, 8]) as tf.Tensor2D;
    const z1 = tf.randomNormal([4, 8]) as tf.Tensor2D;
    const z2 = tf.randomNormal([4, 8]) as tf.Tensor2D;
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) =>
      simsiamLoss(a as tf.Tensor2D, b as tf.Tensor2D, c as tf.Tensor2D, d as tf.Tensor2D))([p1, p2, z1, z2]);
    const maxAbs = (t: tf.Tensor) => tf.max(tf.abs(t)).dataSync()[0];
    assert.strictEqual(maxAbs(grads[2]), 0);
    assert.strictEqual(maxAbs(grads[3]), 0);
    assert.ok(maxAbs(grads[0]) > 1e-4 && maxAbs(grads[1]) > 1e-4);
  });

  it('has the gradient of cos(p1, z2) with respect to p1', () => {
    const p1 = tf.tensor2d([[3, 1]]);
    const z2 = tf.tensor2d([[1, 2]]);
    const otherP2 = tf.tensor2d([[-1, 4]]);
    const g = tf.grad((p: tf.Tensor) => simsiamLoss(p as tf.Tensor2D, otherP2, z2, z2))(p1).dataSync();
    // d/dp of −½ cos(p, z) = −½ (ẑ − cos·p̂)/|p|
    const np = Math.hypot(3, 1);
    const nz = Math.hypot(1, 2);
    const cos = (3 * 1 + 1 * 2) / (np * nz);
    const expected = [0, 1].map((i) => -0.5 * ([1, 2][i] / nz - cos * [3, 1][i] / np) / np);
    expected.forEach((e, i) => assert.ok(Math.abs(g[i] - e) < 1e-5, `component ${i}: ${g[i]} vs ${e}`));
  });
});
