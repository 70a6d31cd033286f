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
 * Weighted kNN classifier of InstDisc (Wu et al. 2018), as SimSiam's monitors use it: for each
 * query take the top k bank entries by cosine, weight each by exp(sim / t), sum per class,
 * predict the argmax. Features must be l2-normalised. Returns top-1 accuracy in [0, 1].
 */
export async function knnAccuracy(bank: tf.Tensor2D, bankLabels: Int32Array, queries: tf.Tensor2D,
  queryLabels: Int32Array, options: KnnOptions): Promise<number> {
  const k = Math.min(options.k, bank.shape[0]);
  const predicted = tf.tidy(() => {
    const similarity = tf.matMul(queries, bank, false, true);
    const { values, indices } = tf.topk(similarity, k);
    const neighbourLabels = tf.gather(tf.tensor1d(bankLabels, 'int32'), indices);
    const weights = tf.exp(tf.div(values, options.temperature));
    const votes = tf.sum(tf.mul(tf.oneHot(neighbourLabels, options.classes), tf.expandDims(weights, 2)), 1);
    return tf.argMax(votes, 1);
  });
  const labels = await predicted.data();
  predicted.dispose();
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === queryLabels[i]) correct++;
  return labels.length ? correct / labels.length : 0;
}
