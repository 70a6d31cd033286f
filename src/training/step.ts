// One SimSiam optimisation step, shared by the trainer and its data-parallel replicas.
import * as tf from '@tensorflow/tfjs';
import { forward } from './model/simsiam';
import { simsiamLoss } from './loss';
import { collapseStd } from './monitor';
import type { SgdMomentum, ParameterGroup } from './optimizer';
import { PREDICTOR_PREFIX } from './model/heads';

export interface Parameters {
  /** Trainable variables in model order, with the layer/weight names checkpoints use. */
  all: { name: string; variable: tf.Variable }[];
  variables: tf.Variable[];
  encoder: tf.Variable[];
  /** Kept apart because the predictor's lr stays fixed (paper §4.2, Table 1). */
  predictor: tf.Variable[];
}

export function parametersOf(model: tf.LayersModel): Parameters {
  const all = model.trainableWeights.map((w) => ({ name: w.originalName, variable: w.read() as tf.Variable }));
  const isPredictor = (p: { name: string }) => p.name.startsWith(PREDICTOR_PREFIX);
  return {
    all,
    variables: all.map((p) => p.variable),
    encoder: all.filter((p) => !isPredictor(p)).map((p) => p.variable),
    predictor: all.filter(isPredictor).map((p) => p.variable),
  };
}

/** The two SGD parameter groups for one epoch's learning rates. */
export function parameterGroups(parameters: Parameters, lrs: { encoder: number; predictor: number }): ParameterGroup[] {
  return [{ variables: parameters.encoder, lr: lrs.encoder }, { variables: parameters.predictor, lr: lrs.predictor }];
}

export interface Gradients {
  loss: tf.Scalar;
  /** Collapse monitor of this batch's z (view 1). */
  zStd: tf.Scalar;
  /** Variable name → gradient, as tf.variableGrads returns it. */
  grads: Record<string, tf.Tensor>;
}

/** Forward both views in training mode (batch statistics) and backpropagate the symmetric loss. */
export function computeGradients(model: tf.LayersModel, view1: tf.Tensor4D, view2: tf.Tensor4D, variables: tf.Variable[]): Gradients {
  let zStd: tf.Scalar | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const a = forward(model, view1, true);
    const b = forward(model, view2, true);
    zStd = tf.keep(collapseStd(a.z));
    return simsiamLoss(a.p, b.p, a.z, b.z);
  }, variables);
  return { loss: value, zStd: zStd!, grads };
}

/** The two scalars in one tensor, to be read in one transfer; frees the rest of the step's tensors. */
function scalarsAndDispose(gradients: Gradients): tf.Tensor1D {
  const both = tf.stack([gradients.loss, gradients.zStd]) as tf.Tensor1D;
  tf.dispose([gradients.loss, gradients.zStd, ...Object.values(gradients.grads)]);
  return both;
}

/** Reads the two scalars in one sync and frees the step's tensors. Not on WebGPU: use readAndDisposeAsync. */
export function readAndDispose(gradients: Gradients): { loss: number; zStd: number } {
  const both = scalarsAndDispose(gradients);
  const [loss, zStd] = both.dataSync();
  both.dispose();
  return { loss, zStd };
}

/** readAndDispose for every backend: WebGPU in Node cannot read a tensor synchronously. */
export async function readAndDisposeAsync(gradients: Gradients): Promise<{ loss: number; zStd: number }> {
  const both = scalarsAndDispose(gradients);
  try {
    const [loss, zStd] = await both.data();
    return { loss, zStd };
  } finally {
    both.dispose();
  }
}

function sgdStep(model: tf.LayersModel, view1: tf.Tensor4D, view2: tf.Tensor4D, variables: tf.Variable[],
  optimizer: SgdMomentum, groups: ParameterGroup[]): Gradients {
  const gradients = computeGradients(model, view1, view2, variables);
  optimizer.step(groups, gradients.grads);
  return gradients;
}

/** One SGD step on a pair of views; returns the loss and the collapse monitor of this batch. Not on WebGPU: use trainStepAsync. */
export function trainStep(model: tf.LayersModel, view1: tf.Tensor4D, view2: tf.Tensor4D, variables: tf.Variable[],
  optimizer: SgdMomentum, groups: ParameterGroup[]): { loss: number; zStd: number } {
  return readAndDispose(sgdStep(model, view1, view2, variables, optimizer, groups));
}

/** trainStep for every backend (the trainer's): reads the loss back without blocking. */
export function trainStepAsync(model: tf.LayersModel, view1: tf.Tensor4D, view2: tf.Tensor4D, variables: tf.Variable[],
  optimizer: SgdMomentum, groups: ParameterGroup[]): Promise<{ loss: number; zStd: number }> {
  return readAndDisposeAsync(sgdStep(model, view1, view2, variables, optimizer, groups));
}
