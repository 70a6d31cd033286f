/**
 * Frees each op's gradient inputs during the backward pass instead of after it.
 *
 * tfjs's backward pass (tf.variableGrads) keeps every op's incoming gradient `dy` and every tensor
 * its gradient saved (on wasm, saved tensors are copies) until the whole pass ends, so a training
 * step peaks at the forward activations plus a gradient for each of them. On wasm, whose heap
 * never shrinks, that peak is the process's memory for the rest of the run: 612 MiB per
 * 32-image shard of the tiny preset, most of the 1.5 GB a run takes. Yet an op's dy and saved
 * tensors serve that op's gradient only: once it has produced the gradients of all its inputs,
 * they can go.
 *
 * So every gradient is wrapped: the registered ones (tf.getGradient / tf.registerGradient, for
 * the ops tfjs differentiates itself) and those of tf.customGrad ops (tfjs's fused conv2d, and
 * this project's batch norm). A wrapped gradient disposes its dy and saved tensors when the last
 * of its input gradients has been computed, except a tensor it returns (some gradients pass dy
 * straight through) and a dy the caller passed to tf.grad(s) (the caller owns it). If the tape
 * asks for fewer input gradients than the op has (an input no variable depends on, such as the
 * image batch), nothing is freed early and the engine frees it all at the end, as without this
 * module. A use after disposal would fail loudly (tfjs never reuses a freed tensor's data id),
 * never compute wrong values; the gradients are the same as without it
 * (test/unit/gradientMemory.test.ts).
 */
import * as tf from '@tensorflow/tfjs';

type GradientClosures = Record<string, () => tf.Tensor>;
/** What tf.customGrad takes (tfjs names the type but does not export it). */
type CustomGradientFunc<T extends tf.Tensor> = Parameters<typeof tf.customGrad<T>>[0];

let installed = false;
/** The dy of each tf.grad(s) call in progress, which belongs to its caller. */
const callerGradients = new Set<tf.Tensor>();

/**
 * Wraps every gradient tfjs knows now and every tf.customGrad op made from now on; idempotent.
 * (tf.engine()'s customGrad and gradients are replaced by wrappers: tfjs has no hook for either.)
 */
export function releaseGradientInputsEarly(): void {
  if (installed) {
    return;
  }
  for (const kernelName of registeredGradientNames()) {
    const original = tf.getGradient(kernelName)!;
    tf.registerGradient({
      ...original,
      gradFunc: (dy, saved, attrs) => releasingWhenAllComputed(original.gradFunc(dy, saved, attrs), [dy, saved]),
    });
  }
  const engine = tf.engine();
  const gradients = engine.gradients.bind(engine);
  engine.gradients = <T extends tf.Tensor>(f: () => T, xs: tf.Tensor[], dy?: T, allowNoGradients?: boolean) => {
    if (dy == null) {
      return gradients(f, xs, dy, allowNoGradients);
    }
    callerGradients.add(dy);
    try {
      return gradients(f, xs, dy, allowNoGradients);
    } finally {
      callerGradients.delete(dy);
    }
  };
  const customGrad = engine.customGrad.bind(engine);
  engine.customGrad = <T extends tf.Tensor>(f: CustomGradientFunc<T>) =>
    customGrad<T>((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const { value, gradFunc } = f(...args);
      return {
        value,
        gradFunc: (dy: T, saved: tf.Tensor[]) => {
          const inputGradients = gradFunc(dy, saved);
          if (!Array.isArray(inputGradients)) {
            release([dy, saved], new Set([inputGradients]));
            return inputGradients;
          }
          // One tensor returned for two inputs would be stored twice and freed by whichever of
          // their producers' gradients runs first: give each input its own tensor.
          const distinct = inputGradients.map((g, i) => (inputGradients.indexOf(g) < i ? g.clone() : g));
          release([dy, saved], new Set(distinct));
          return distinct;
        },
      };
    });
  installed = true;
}

/** Kernel names with a registered gradient: tfjs exports every kernel name as a string constant. */
function registeredGradientNames(): string[] {
  const exported: unknown[] = Object.values(tf);
  const names = new Set(exported.filter((value): value is string => typeof value === 'string'));
  return [...names].filter((name) => tf.getGradient(name) !== undefined);
}

/** Closures that, once all have run, free `inputs` except what they returned. */
function releasingWhenAllComputed(closures: GradientClosures, inputs: (tf.Tensor | tf.Tensor[])[]): GradientClosures {
  const names = Object.keys(closures);
  const produced = new Set<tf.Tensor>();
  let pending = names.length;
  const wrapped: GradientClosures = {};
  for (const name of names) {
    wrapped[name] = () => {
      const computed = closures[name]();
      // The same tensor for two inputs: see the customGrad wrapper.
      const gradient = produced.has(computed) ? computed.clone() : computed;
      produced.add(gradient);
      if (--pending === 0) {
        release(inputs, produced);
      }
      return gradient;
    };
  }
  return wrapped;
}

function release(inputs: (tf.Tensor | tf.Tensor[] | null | undefined)[], keep: Set<tf.Tensor>): void {
  for (const tensor of inputs.flat()) {
    if (tensor != null && !keep.has(tensor) && !callerGradients.has(tensor) && !tensor.isDisposed) {
      tensor.dispose();
    }
  }
}
