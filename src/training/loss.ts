// SimSiam's symmetric negative-cosine loss with stop-gradient (paper eq. 3–4).
import * as tf from '@tensorflow/tfjs';

/**
 * Identity in the forward pass, zero gradient in the backward pass. tfjs has no public
 * stopGradient op; without it the model collapses at once (paper §3, loss → −1).
 */
export const stopGradient: (x: tf.Tensor) => tf.Tensor = tf.customGrad((...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => ({
  value: (inputs[0] as tf.Tensor).clone(),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
}));

/** Rows scaled to unit length; the epsilon keeps an all-zero row finite (as F.normalize). */
export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.maximum(tf.sum(tf.square(x), 1, true), 1e-24));
    return tf.div(x, norm) as tf.Tensor2D;
  });
}

/** D(p, z) = −mean over the batch of cos(p, stopgrad(z)). */
export function negativeCosine(p: tf.Tensor2D, z: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const target = stopGradient(z) as tf.Tensor2D;
    return tf.neg(tf.mean(tf.sum(tf.mul(l2Normalize(p), l2Normalize(target)), 1))) as tf.Scalar;
  });
}

/** L = ½ D(p1, z2) + ½ D(p2, z1): each view's prediction chases the other view's projection. */
export function simsiamLoss(p1: tf.Tensor2D, p2: tf.Tensor2D, z1: tf.Tensor2D, z2: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.add(tf.mul(negativeCosine(p1, z2), 0.5), tf.mul(negativeCosine(p2, z1), 0.5)) as tf.Scalar);
}
