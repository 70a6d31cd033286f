import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { knnAccuracy } from '../../src/training/monitor';
import { l2Normalize } from '../../src/training/loss';
import { Rng } from '../../src/training/data/rng';

/** The InstDisc weighted kNN prediction of one query, by brute force in plain JS. */
function referencePrediction(bank: Float32Array, bankLabels: Int32Array, query: Float32Array, dims: number,
  k: number, temperature: number, classes: number): number {
  const similarities = Array.from({ length: bankLabels.length }, (_, row) => {
    let dot = 0;
    for (let d = 0; d < dims; d++) dot += bank[row * dims + d] * query[d];
    return { row, dot };
  }).sort((a, b) => b.dot - a.dot || a.row - b.row);
  const votes = new Float64Array(classes);
  for (const { row, dot } of similarities.slice(0, k)) votes[bankLabels[row]] += Math.exp(dot / temperature);
  return votes.indexOf(Math.max(...votes));
}

describe('kNN monitor over a bank too large for one similarity matrix', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('ranks queries in chunks and predicts exactly what one query at a time predicts', async () => {
    // 2^21 similarity floats per chunk: a 30,000-entry bank gives chunks of 69 queries, so 150
    // queries span three chunks, the last one partial.
    const dims = 4;
    const bankSize = 30_000;
    const queryCount = 150;
    const classes = 5;
    const rng = new Rng(7);
    const features = (n: number) => tf.tidy(() => l2Normalize(tf.tensor2d(
      Float32Array.from({ length: n * dims }, () => rng.uniform(-1, 1)), [n, dims])) as tf.Tensor2D);
    const bank = features(bankSize);
    const queries = features(queryCount);
    const bankLabels = Int32Array.from({ length: bankSize }, () => rng.int(classes));
    const queryLabels = Int32Array.from({ length: queryCount }, () => rng.int(classes));
    const options = { k: 20, temperature: 0.1, classes };
    try {
      const bankValues = bank.dataSync() as Float32Array;
      const queryValues = queries.dataSync() as Float32Array;
      let correct = 0;
      for (let q = 0; q < queryCount; q++) {
        const predicted = referencePrediction(bankValues, bankLabels, queryValues.subarray(q * dims, (q + 1) * dims), dims,
          options.k, options.temperature, classes);
        if (predicted === queryLabels[q]) correct++;
      }
      const tensorsBefore = tf.memory().numTensors;
      const accuracy = await knnAccuracy(bank, bankLabels, queries, queryLabels, options);
      assert.strictEqual(tf.memory().numTensors, tensorsBefore, 'every chunk\'s tensors are freed');
      assert.ok(correct > 0 && correct < queryCount, `the reference must not be trivially 0 or 1 (${correct})`);
      assert.strictEqual(accuracy, correct / queryCount);
    } finally {
      tf.dispose([bank, queries]);
    }
  });
});
