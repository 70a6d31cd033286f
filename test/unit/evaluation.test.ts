// The evaluation's figures on features whose answers are known.
import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { precisionAtK, scoreFeatures } from '../../src/training/evaluation/evaluate';

const unit = (rows: number[][]) => tf.tidy(() => {
  const t = tf.tensor2d(rows);
  return tf.div(t, tf.norm(t, 2, 1, true)) as tf.Tensor2D;
});

describe('evaluation figures', function () {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('precision@k counts the same-class share of each query\'s k nearest', async () => {
    // Bank: two of class 0 near (1, 0), two of class 1 near (0, 1).
    const bank = unit([[1, 0.1], [1, 0.2], [0.1, 1], [0.2, 1]]);
    const queries = unit([[1, 0], [0.6, 1]]);
    const labels = Int32Array.from([0, 0, 1, 1]);
    try {
      // Query 0 (class 0): its 2 nearest are both class 0. Query 1 (class 0, but near class 1): none.
      assert.strictEqual(await precisionAtK(bank, labels, queries, Int32Array.from([0, 0]), 2), 0.5);
      // k above the bank size takes the whole bank: 2 of 4 for each query.
      assert.strictEqual(await precisionAtK(bank, labels, queries, Int32Array.from([0, 0]), 10), 0.5);
    } finally {
      tf.dispose([bank, queries]);
    }
  });

  it('scores classes that the features separate perfectly on every figure', async () => {
    const rows = (n: number, jitter: number) => Array.from({ length: n }, (_, i) => {
      const c = i % 3;
      return [c === 0 ? 1 : jitter * (i % 5) / 5, c === 1 ? 1 : jitter * (i % 7) / 7, c === 2 ? 1 : jitter * (i % 3) / 3];
    });
    const labelsOf = (n: number) => Int32Array.from({ length: n }, (_, i) => i % 3);
    const train = { features: unit(rows(60, 0.3)), labels: labelsOf(60) };
    const test = { features: unit(rows(30, 0.3)), labels: labelsOf(30) };
    try {
      assert.deepStrictEqual(await scoreFeatures(train, test, 3), { knnTop1At20: 1, knnTop1At200: 1, probeTop1: 1, precisionAt10: 1 });
    } finally {
      tf.dispose([train.features, test.features]);
    }
  });
});
