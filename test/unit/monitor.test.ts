import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { collapseStd, knnAccuracy } from '../../src/training/monitor';
import { l2Normalize } from '../../src/training/loss';
import { Rng } from '../../src/training/data/rng';

describe('monitors', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('collapse monitor is ≈1/√d for spread outputs and 0 for collapsed ones', () => {
    const d = 256;
    const spread = collapseStd(tf.randomNormal([512, d]) as tf.Tensor2D).dataSync()[0];
    assert.ok(Math.abs(spread - 1 / Math.sqrt(d)) < 0.1 / Math.sqrt(d), `spread ${spread}`);
    const collapsed = collapseStd(tf.tile(tf.randomNormal([1, d]), [512, 1]) as tf.Tensor2D).dataSync()[0];
    assert.ok(collapsed < 1e-3, `collapsed ${collapsed}`);
  });

  it('kNN classifies a separable set perfectly and random labels near chance', async () => {
    const rng = new Rng(1);
    const classes = 4;
    const centres = Array.from({ length: classes }, () => Array.from({ length: 16 }, () => rng.uniform(-1, 1)));
    const sample = (n: number) => {
      const labels = Int32Array.from({ length: n }, (_, i) => i % classes);
      const rows = Array.from(labels, (c) => centres[c].map((v) => v + rng.uniform(-0.1, 0.1)));
      return { x: l2Normalize(tf.tensor2d(rows)), labels };
    };
    const bank = sample(200);
    const queries = sample(80);
    const options = { k: 20, temperature: 0.1, classes };
    assert.strictEqual(await knnAccuracy(bank.x, bank.labels, queries.x, queries.labels, options), 1);
    const shuffled = Int32Array.from(bank.labels, () => rng.int(classes));
    const chance = await knnAccuracy(bank.x, shuffled, queries.x, queries.labels, options);
    assert.ok(chance < 0.6, `random labels give ${chance}`);
  });

  it('weights votes by exp(similarity / t), not by count', async () => {
    // One very close neighbour of class 1 outweighs two distant ones of class 0 at t = 0.1.
    const bank = l2Normalize(tf.tensor2d([[1, 0], [0.2, 1], [0.2, -1]]));
    const query = l2Normalize(tf.tensor2d([[1, 0.01]]));
    const acc = await knnAccuracy(bank, Int32Array.from([1, 0, 0]), query, Int32Array.from([1]), { k: 3, temperature: 0.1, classes: 2 });
    assert.strictEqual(acc, 1);
    const flat = await knnAccuracy(bank, Int32Array.from([1, 0, 0]), query, Int32Array.from([1]), { k: 3, temperature: 100, classes: 2 });
    assert.strictEqual(flat, 0, 'with a flat weighting the majority wins: the weighting is what decided');
  });
});
