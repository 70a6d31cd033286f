// SGD with momentum and coupled weight decay, exactly torch.optim.SGD as the official recipe uses:
//   g ← g + wd·w;  buf ← momentum·buf + g;  w ← w − lr·buf
// tfjs's own SGD/momentum optimizers take one lr and no decay, and Keras-style l2 regularisers
// are only added inside model.fit, so a custom loop applies decay here, once.
import * as tf from '@tensorflow/tfjs';

export interface ParameterGroup {
  variables: tf.Variable[];
  lr: number;
}

export class SgdMomentum {
  private readonly buffers = new Map<tf.Variable, tf.Variable>();

  constructor(readonly momentum: number, readonly weightDecay: number) {}

  /** Applies one update; `grads` maps variable name → gradient (as tf.variableGrads returns). */
  step(groups: ParameterGroup[], grads: Record<string, tf.Tensor>): void {
    for (const { variables, lr } of groups) {
      for (const variable of variables) {
        const grad = grads[variable.name];
        if (!grad) continue;
        const buffer = this.bufferFor(variable);
        tf.tidy(() => {
          const decayed = this.weightDecay > 0 ? tf.add(grad, tf.mul(variable, this.weightDecay)) : grad;
          const nextBuffer = tf.add(tf.mul(buffer, this.momentum), decayed);
          buffer.assign(nextBuffer);
          variable.assign(tf.sub(variable, tf.mul(nextBuffer, lr)));
        });
      }
    }
  }

  /** Momentum buffers in the order of `variables`; zeros for those not stepped yet. */
  bufferValues(variables: tf.Variable[]): tf.Tensor[] {
    return variables.map((v) => this.bufferFor(v));
  }

  loadBuffers(variables: tf.Variable[], values: tf.Tensor[]): void {
    if (values.length !== variables.length) {
      throw new Error(`optimizer state has ${values.length} momentum buffers, the model has ${variables.length} parameters`);
    }
    variables.forEach((variable, i) => {
      if (!tf.util.arraysEqual(variable.shape, values[i].shape)) {
        throw new Error(`optimizer state for ${variable.name} has shape [${values[i].shape}], expected [${variable.shape}]`);
      }
      this.bufferFor(variable).assign(values[i]);
    });
  }

  dispose(): void {
    for (const buffer of this.buffers.values()) buffer.dispose();
    this.buffers.clear();
  }

  private bufferFor(variable: tf.Variable): tf.Variable {
    let buffer = this.buffers.get(variable);
    if (!buffer) {
      // A variable takes its own reference to its initial value's data; the zeros tensor itself
      // would otherwise stay registered (and its bytes allocated) for the life of the process.
      const zeros = tf.zerosLike(variable);
      buffer = tf.variable(zeros, false);
      zeros.dispose();
      this.buffers.set(variable, buffer);
    }
    return buffer;
  }
}
