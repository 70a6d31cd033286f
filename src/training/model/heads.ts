// SimSiam's projection MLP (part of the encoder f) and prediction MLP h, as in the official
// builder.py: BN in every hidden layer, an output BN without affine on the projector, and a
// bottleneck predictor.
import * as tf from '@tensorflow/tfjs';
import { BN_EPSILON, type SeedSource } from './resnet';
import { batchNormalization } from './batchNorm';

function linear(x: tf.SymbolicTensor, units: number, useBias: boolean, name: string, seeds: SeedSource): tf.SymbolicTensor {
  // PyTorch's nn.Linear default, kaiming_uniform(a=√5), is U(±1/√fan_in). (Its bias draws from
  // U(±1/√fan_in) too; tfjs computes a bias's fan from its own shape, so it starts at zero here.)
  return tf.layers.dense({
    units, useBias, name,
    kernelInitializer: tf.initializers.varianceScaling({ scale: 1 / 3, mode: 'fanIn', distribution: 'uniform', seed: seeds() }),
  }).apply(x) as tf.SymbolicTensor;
}

function bnRelu(x: tf.SymbolicTensor, momentum: number, name: string): tf.SymbolicTensor {
  const normed = batchNormalization({ momentum, epsilon: BN_EPSILON, name: `${name}_bn` }).apply(x);
  return tf.layers.reLU({ name: `${name}_relu` }).apply(normed) as tf.SymbolicTensor;
}

/**
 * Linear → BN → ReLU, repeated (layers − 1) times, then Linear → BN without affine.
 * tfjs-layers cannot run a BN with center=scale=false in training mode (it reads gamma), so the
 * output BN keeps gamma=1, beta=0 frozen: the same function, nothing to learn.
 */
export function projector(features: tf.SymbolicTensor, dim: number, layers: number, bnMomentum: number, seeds: SeedSource): tf.SymbolicTensor {
  let x = features;
  for (let i = 1; i < layers; i++) {
    x = bnRelu(linear(x, dim, false, `projector_fc${i}`, seeds), bnMomentum, `projector_${i}`);
  }
  x = linear(x, dim, false, `projector_fc${layers}`, seeds);
  return batchNormalization({
    momentum: bnMomentum, epsilon: BN_EPSILON, name: 'projector_out_bn', trainable: false,
  }).apply(x) as tf.SymbolicTensor;
}

/** Linear(dim → hidden, no bias) → BN → ReLU → Linear(hidden → dim). */
export function predictor(z: tf.SymbolicTensor, dim: number, hiddenDim: number, bnMomentum: number, seeds: SeedSource): tf.SymbolicTensor {
  const hidden = bnRelu(linear(z, hiddenDim, false, 'predictor_fc1', seeds), bnMomentum, 'predictor_1');
  return linear(hidden, dim, true, 'predictor_fc2', seeds);
}

/** Layer names of the predictor, whose lr stays fixed while the rest decays. */
export const PREDICTOR_PREFIX = 'predictor_';
