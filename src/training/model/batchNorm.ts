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
import * as tf from '@tensorflow/tfjs';

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

/** Normalises over every axis but the last; returns y and the batch statistics it used. */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number):
  { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const n = x.size / x.shape[x.rank - 1];
  let mean: tf.Tensor1D | undefined;
  let variance: tf.Tensor1D | undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, scale, offset] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const moments = tf.moments(input, axes);
    mean = tf.keep(moments.mean as tf.Tensor1D);
    variance = tf.keep(moments.variance as tf.Tensor1D);
    const invStd = tf.rsqrt(tf.add(variance, epsilon));
    save([input, mean, invStd, scale]);
    return {
      value: tf.batchNorm(input, mean, variance, offset, scale, epsilon),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedInput, savedMean, savedInvStd, savedScale] = saved;
        const normalised = tf.mul(tf.sub(savedInput, savedMean), savedInvStd);
        const dOffset = tf.sum(dy, axes);
        const dScale = tf.sum(tf.mul(dy, normalised), axes);
        const centred = tf.sub(tf.sub(dy, tf.div(dOffset, n)), tf.mul(normalised, tf.div(dScale, n)));
        return [tf.mul(centred, tf.mul(savedScale, savedInvStd)), dScale, dOffset];
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
