// Batch normalisation for training with a fused, analytic gradient.
//
// tfjs-layers' BatchNormalization trains through tf.moments + tf.batchNorm, whose registered
// gradients tile the per-channel scale to the full activation shape and build the mean's and
// variance's gradients from several full-size temporaries: on the wasm backend that was ~40 % of
// a SimSiam step, more than the convolutions. This layer keeps the same class name, weights and
// config (checkpoints stay standard `BatchNormalization` layers that any tfjs or Keras loader
// reads) and replaces only the training-mode computation with one op whose gradient is the
// textbook closed form:
//   x̂ = (x − μ)/σ,  y = γ x̂ + β
//   ∂β = Σ dy,  ∂γ = Σ dy·x̂,  ∂x = γ/σ · (dy − ∂β/n − x̂ ∂γ/n)
// It saves x̂ for the backward pass rather than recomputing it from x, and takes every per-channel
// mean as an average pool (see channelMeans). A backend may register the forward and its gradient
// as two fused kernels (the wasm backend does, on SIMD: ../tfjs/wasmGradients.ts), which then
// replace the 5 element-wise ops and 2 reductions of each direction.
import * as tf from '@tensorflow/tfjs';

/**
 * Fused training-mode batch norm: inputs { x, gamma, beta }, attrs { epsilon }; outputs
 * [y, normalised, mean, variance, invStd], mean and variance being the batch's (biased).
 */
export const BATCH_NORM_TRAINING = 'SimSiamBatchNormTraining';
/**
 * Its gradient: inputs { dy, normalised, invStd, gamma } (the forward's saved tensors); outputs
 * [dx, dGamma, dBeta] of the closed form above.
 */
export const BATCH_NORM_TRAINING_GRAD = 'SimSiamBatchNormTrainingGrad';

const POOLED_MEAN_BACKENDS = new Set(['wasm', 'cpu']);

type BatchNormArgs = NonNullable<Parameters<typeof tf.layers.batchNormalization>[0]>;

// tfjs does not export the class itself; its factory's instances carry it.
const LayersBatchNormalization = tf.layers.batchNormalization({}).constructor as {
  new (args: BatchNormArgs): tf.layers.Layer;
  fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T;
};

/** The layer's weights and settings, which tfjs-layers keeps private. */
interface BatchNormState {
  gamma: tf.LayerVariable; beta: tf.LayerVariable; movingMean: tf.LayerVariable; movingVariance: tf.LayerVariable;
  momentum: number; epsilon: number;
}

/**
 * Per-channel means over every other axis. On the JavaScript backends, as one average pool over x
 * viewed as a single column [1, rows, 1, channels]: it reads x once, where tf.mean over the
 * leading axes of an NHWC tensor first transposes it (on wasm 3-7x slower for the backbone's
 * activations; a matrix product with a row of ones is slower still, as XNNPACK repacks x as its
 * weights on every call). TensorFlow's native backends reduce well themselves, and may
 * parallelise a one-image pool poorly.
 */
function channelMeans(x: tf.Tensor): tf.Tensor1D {
  const channels = x.shape[x.rank - 1];
  const rows = x.size / channels;
  if (!POOLED_MEAN_BACKENDS.has(tf.getBackend())) {
    return tf.mean(x, Array.from({ length: x.rank - 1 }, (_, axis) => axis));
  }
  const column = tf.reshape(x, [1, rows, 1, channels]) as tf.Tensor4D;
  return tf.reshape(tf.avgPool(column, [rows, 1], 1, 'valid'), [channels]);
}

/** Whether the current backend registers both fused kernels. */
function fusedKernelsRegistered(): boolean {
  const backend = tf.getBackend();
  return tf.getKernel(BATCH_NORM_TRAINING, backend) !== undefined && tf.getKernel(BATCH_NORM_TRAINING_GRAD, backend) !== undefined;
}

/** batchNormTraining on the backend's fused kernels. */
function fusedBatchNormTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number):
  { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  let mean: tf.Tensor1D | undefined;
  let variance: tf.Tensor1D | undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, scale, offset] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const [y, normalised, batchMean, batchVariance, invStd] = tf.engine().runKernel(
      BATCH_NORM_TRAINING, { x: input, gamma: scale, beta: offset }, { epsilon }) as tf.Tensor[];
    mean = tf.keep(batchMean as tf.Tensor1D);
    variance = tf.keep(batchVariance as tf.Tensor1D);
    save([normalised, invStd, scale]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedNormalised, savedInvStd, savedScale] = saved;
        return tf.engine().runKernel(BATCH_NORM_TRAINING_GRAD,
          { dy, normalised: savedNormalised, invStd: savedInvStd, gamma: savedScale }) as tf.Tensor[];
      },
    };
  });
  const y = op(x, gamma, beta);
  return { y, mean: mean!, variance: variance! };
}

/** Normalises over every axis but the last; returns y and the batch statistics it used. */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number):
  { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  if (fusedKernelsRegistered()) {
    return fusedBatchNormTraining(x, gamma, beta, epsilon);
  }
  const n = x.size / x.shape[x.rank - 1];
  let mean: tf.Tensor1D | undefined;
  let variance: tf.Tensor1D | undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, scale, offset] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    mean = tf.keep(channelMeans(input));
    const centred = tf.sub(input, mean);
    // Two-pass variance, as tf.moments computes it.
    variance = tf.keep(channelMeans(tf.square(centred)));
    const invStd = tf.rsqrt(tf.add(variance, epsilon));
    const normalised = tf.mul(centred, invStd);
    save([normalised, invStd, scale]);
    return {
      value: tf.add(tf.mul(normalised, scale), offset),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedNormalised, savedInvStd, savedScale] = saved;
        const meanDy = channelMeans(dy);
        const meanDyNormalised = channelMeans(tf.mul(dy, savedNormalised));
        const centred = tf.sub(tf.sub(dy, meanDy), tf.mul(savedNormalised, meanDyNormalised));
        return [tf.mul(centred, tf.mul(savedScale, savedInvStd)), tf.mul(meanDyNormalised, n), tf.mul(meanDy, n)];
      },
    };
  });
  const y = op(x, gamma, beta);
  return { y, mean: mean!, variance: variance! };
}

export class FusedBatchNormalization extends LayersBatchNormalization {
  /** Serialised under the standard name, so saved models load anywhere without this class. */
  static className = 'BatchNormalization';

  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] {
    if (!kwargs.training) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const state = this as unknown as BatchNormState;
      const { y, mean, variance } = batchNormTraining(x, state.gamma.read() as tf.Tensor1D, state.beta.read() as tf.Tensor1D, state.epsilon);
      // Moving averages as PyTorch keeps them (unbiased variance), which the recipe's numbers assume.
      const n = x.size / x.shape[x.rank - 1];
      const decay = 1 - state.momentum;
      const update = (variable: tf.LayerVariable, batchValue: tf.Tensor) =>
        variable.write(tf.sub(variable.read(), tf.mul(tf.sub(variable.read(), batchValue), decay)));
      update(state.movingMean, mean);
      update(state.movingVariance, tf.mul(variance, n / Math.max(1, n - 1)));
      tf.dispose([mean, variance]);
      return y;
    });
  }
}
tf.serialization.registerClass(FusedBatchNormalization);

export function batchNormalization(args: BatchNormArgs): tf.layers.Layer {
  return new FusedBatchNormalization(args);
}
