// What a user watches to know the run is learning: the collapse monitor and the kNN monitor.
import * as tf from '@tensorflow/tfjs';
import { l2Normalize } from './loss';

/**
 * Collapse monitor (paper §4.1, fig. 2): std over the batch of l2-normalised z, averaged over
 * channels. ≈ 1/√d when the outputs spread over the unit sphere, → 0 when they collapse.
 */
export function collapseStd(z: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.sqrt(tf.moments(l2Normalize(z), 0).variance)) as tf.Scalar);
}

export interface KnnOptions { k: number; temperature: number; classes: number }

/**
 * Similarity scores held at once: queries are ranked this many bank entries' worth at a time. The
 * full queries × bank matrix grows with the square of the dataset (5,000 × 45,000 floats is
 * 900 MB) and, on wasm, the heap it grows to is never returned, so every later training step pays
 * for it. Each query is ranked on its own, so the chunking does not change any prediction.
 */
const SIMILARITY_CHUNK_FLOATS = 1 << 21;

/**
 * Weighted kNN classifier of InstDisc (Wu et al. 2018), as SimSiam's monitors use it: for each
 * query take the top k bank entries by cosine, weight each by exp(sim / t), sum per class,
 * predict the argmax. Features must be l2-normalised. Returns top-1 accuracy in [0, 1].
 */
export async function knnAccuracy(bank: tf.Tensor2D, bankLabels: Int32Array, queries: tf.Tensor2D,
  queryLabels: Int32Array, options: KnnOptions): Promise<number> {
  const k = Math.min(options.k, bank.shape[0]);
  const queryCount = queries.shape[0];
  const rowsPerChunk = Math.max(1, Math.floor(SIMILARITY_CHUNK_FLOATS / Math.max(1, bank.shape[0])));
  const labelsTensor = tf.tensor1d(bankLabels, 'int32');
  let correct = 0;
  try {
    for (let start = 0; start < queryCount; start += rowsPerChunk) {
      const rows = Math.min(rowsPerChunk, queryCount - start);
      const predicted = tf.tidy(() => {
        const chunk = rows === queryCount ? queries : tf.slice(queries, [start, 0], [rows, -1]);
        const similarity = tf.matMul(chunk, bank, false, true);
        const { values, indices } = tf.topk(similarity, k);
        const neighbourLabels = tf.gather(labelsTensor, indices);
        const weights = tf.exp(tf.div(values, options.temperature));
        const votes = tf.sum(tf.mul(tf.oneHot(neighbourLabels, options.classes), tf.expandDims(weights, 2)), 1);
        return tf.argMax(votes, 1);
      });
      const labels = await predicted.data();
      predicted.dispose();
      for (let i = 0; i < labels.length; i++) if (labels[i] === queryLabels[start + i]) correct++;
    }
  } finally {
    labelsTensor.dispose();
  }
  return queryCount ? correct / queryCount : 0;
}
