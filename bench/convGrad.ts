/**
 * Micro-benchmark of the wasm convolutions (src/training/tfjs/wasmGradients.ts) on the tiny
 * preset's ResNet-18 ×0.25 shapes: the forward conv2d on XNNPACK and on our SIMD kernel, every
 * Conv2DBackpropFilter formulation, and Conv2DBackpropInput as wasm ships it and as replaced
 * (on XNNPACK and by our SIMD kernel).
 *
 *   npx tsc -p . && node out/bench/convGrad.js [repeats=7]
 *   node out/bench/convGrad.js --step [pairs=7]
 *   node out/bench/convGrad.js --step-new [pairs=7] [forward|sharing|both]
 *
 * Prints the median and the minimum ms of `repeats` timed calls after two warm-up calls (the
 * minimum is the steadier figure on a shared machine). The wasm backend runs synchronously, so
 * wall time around a call is its compute time.
 *
 * --step times whole training steps of the tiny preset on one replica's shard (32 images, both
 * views, forward + backward + SGD) with our SIMD kernels (conv gradients and batch norm) and
 * without them (the XNNPACK compositions, batch norm as tf ops), alternated pair by pair in one
 * process so that other load on the machine hits both alike; it prints each pair's ratio.
 *
 * --step-new times whole steps the same way with and without the later replacements, every other
 * SIMD kernel on in both: our forward conv (Conv2D and FusedConv2D on the shapes
 * preferredForwardConvFormulation picks), the buffer-sharing Identity and Cast, or both (default).
 */
import * as tf from '@tensorflow/tfjs';
// Loaded here, ahead of selectBackend, so that wasm's own Conv2DBackpropInput can be captured.
import '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '../src/training/tfjs/backend';
import { spreadOf, timeRepeats, type Spread } from './timing';
import { resolveConfig } from '../src/training/config';
import { buildSimSiam } from '../src/training/model/simsiam';
import { BATCH_NORM_TRAINING, BATCH_NORM_TRAINING_GRAD } from '../src/training/model/batchNorm';
import { SgdMomentum } from '../src/training/optimizer';
import { parameterGroups, parametersOf, trainStep } from '../src/training/step';
import {
  conv2dFilterGradientOnWasm, conv2dForwardOnWasm, conv2dInputGradientOnWasm, FilterGradFormulation, InputGradFormulation,
  preferredFilterGradFormulation, preferredForwardConvFormulation, preferredInputGradFormulation,
} from '../src/training/tfjs/wasmGradients';

interface ConvShape {
  label: string;
  input: [number, number, number, number];
  filter: [number, number, number, number];
  stride: number;
  /** How many convs of this shape one tiny-preset backbone forward pass runs. */
  perForward: number;
}

const SHAPES: ConvShape[] = [
  { label: 'stem 3x3 3->16', input: [64, 32, 32, 3], filter: [3, 3, 3, 16], stride: 1, perForward: 1 },
  { label: 'stage1 3x3 16->16', input: [64, 32, 32, 16], filter: [3, 3, 16, 16], stride: 1, perForward: 4 },
  { label: 'stage2 down 3x3 s2', input: [64, 32, 32, 16], filter: [3, 3, 16, 32], stride: 2, perForward: 1 },
  { label: 'stage2 shortcut 1x1 s2', input: [64, 32, 32, 16], filter: [1, 1, 16, 32], stride: 2, perForward: 1 },
  { label: 'stage2 3x3 32->32', input: [64, 16, 16, 32], filter: [3, 3, 32, 32], stride: 1, perForward: 3 },
  { label: 'stage3 down 3x3 s2', input: [64, 16, 16, 32], filter: [3, 3, 32, 64], stride: 2, perForward: 1 },
  { label: 'stage3 shortcut 1x1 s2', input: [64, 16, 16, 32], filter: [1, 1, 32, 64], stride: 2, perForward: 1 },
  { label: 'stage3 3x3 64->64', input: [64, 8, 8, 64], filter: [3, 3, 64, 64], stride: 1, perForward: 3 },
  { label: 'stage4 down 3x3 s2', input: [64, 8, 8, 64], filter: [3, 3, 64, 128], stride: 2, perForward: 1 },
  { label: 'stage4 shortcut 1x1 s2', input: [64, 8, 8, 64], filter: [1, 1, 64, 128], stride: 2, perForward: 1 },
  { label: 'stage4 3x3 128->128', input: [64, 4, 4, 128], filter: [3, 3, 128, 128], stride: 1, perForward: 3 },
  { label: 'wide 3x3 64->64 (not tiny)', input: [64, 32, 32, 64], filter: [3, 3, 64, 64], stride: 1, perForward: 0 },
];

/**
 * --wide: the photo-size models' shapes, where channel counts are 4-32x the tiny preset's: ResNet-18
 * ×1 at 96 px (imagenet stem) on an 8-image shard (batch 16 over two threads; perForward counts
 * its backbone) and ResNet-50 at 224 px on a 4-image micro-batch (a sample of its shapes, perForward 0).
 */
const WIDE_SHAPES: ConvShape[] = [
  { label: 'r18@96 stem 7x7 s2 3->64', input: [8, 96, 96, 3], filter: [7, 7, 3, 64], stride: 2, perForward: 1 },
  { label: 'r18@96 stage1 3x3 64', input: [8, 24, 24, 64], filter: [3, 3, 64, 64], stride: 1, perForward: 4 },
  { label: 'r18@96 stage2 down 3x3 s2', input: [8, 24, 24, 64], filter: [3, 3, 64, 128], stride: 2, perForward: 1 },
  { label: 'r18@96 stage2 shortcut 1x1 s2', input: [8, 24, 24, 64], filter: [1, 1, 64, 128], stride: 2, perForward: 1 },
  { label: 'r18@96 stage2 3x3 128', input: [8, 12, 12, 128], filter: [3, 3, 128, 128], stride: 1, perForward: 3 },
  { label: 'r18@96 stage3 down 3x3 s2', input: [8, 12, 12, 128], filter: [3, 3, 128, 256], stride: 2, perForward: 1 },
  { label: 'r18@96 stage3 shortcut 1x1 s2', input: [8, 12, 12, 128], filter: [1, 1, 128, 256], stride: 2, perForward: 1 },
  { label: 'r18@96 stage3 3x3 256', input: [8, 6, 6, 256], filter: [3, 3, 256, 256], stride: 1, perForward: 3 },
  { label: 'r18@96 stage4 down 3x3 s2', input: [8, 6, 6, 256], filter: [3, 3, 256, 512], stride: 2, perForward: 1 },
  { label: 'r18@96 stage4 shortcut 1x1 s2', input: [8, 6, 6, 256], filter: [1, 1, 256, 512], stride: 2, perForward: 1 },
  { label: 'r18@96 stage4 3x3 512', input: [8, 3, 3, 512], filter: [3, 3, 512, 512], stride: 1, perForward: 3 },
  { label: 'r50@224 stage1 1x1 256->64', input: [4, 56, 56, 256], filter: [1, 1, 256, 64], stride: 1, perForward: 0 },
  { label: 'r50@224 stage1 3x3 64', input: [4, 56, 56, 64], filter: [3, 3, 64, 64], stride: 1, perForward: 0 },
  { label: 'r50@224 stage2 3x3 128', input: [4, 28, 28, 128], filter: [3, 3, 128, 128], stride: 1, perForward: 0 },
  { label: 'r50@224 stage3 3x3 256', input: [4, 14, 14, 256], filter: [3, 3, 256, 256], stride: 1, perForward: 0 },
  { label: 'r50@224 stage3 1x1 256->1024', input: [4, 14, 14, 256], filter: [1, 1, 256, 1024], stride: 1, perForward: 0 },
  { label: 'r50@224 stage4 3x3 512', input: [4, 7, 7, 512], filter: [3, 3, 512, 512], stride: 1, perForward: 0 },
];

const FORMULATIONS: FilterGradFormulation[] = ['simdKernel', 'batchContractedConv', 'im2colMatMul'];
const INPUT_FORMULATIONS: InputGradFormulation[] = ['simdKernel', 'xnnpackConv'];
const WARM_UP = 2;

/** Median and min of `repeats` timed calls after WARM_UP untimed ones (bench/timing). */
async function timeMs(repeats: number, run: () => void): Promise<Spread> {
  return spreadOf(await timeRepeats(WARM_UP, repeats, run));
}

interface ShapeTimings {
  /** The registered conv2d, whichever of the two below it picks. */
  forward: Spread;
  forwardWasmOwn: Spread;
  forwardSimd: Spread | undefined;
  filterGrad: Record<FilterGradFormulation, Spread>;
  inputGradWasmOwn: Spread;
  inputGrad: Record<InputGradFormulation, Spread>;
}

async function benchShape(shape: ConvShape, repeats: number, wasmOwnInputGradient: tf.KernelConfig,
  wasmOwnForward: tf.KernelConfig): Promise<ShapeTimings> {
  const backend = tf.backend();
  const x = tf.randomNormal(shape.input) as tf.Tensor4D;
  const filter = tf.randomNormal(shape.filter) as tf.Tensor4D;
  const outShape = tf.backend_util.computeConv2DInfo(shape.input, shape.filter, shape.stride, 1, 'same').outShape;
  const dy = tf.randomNormal(outShape) as tf.Tensor4D;
  const filterAttrs: tf.Conv2DBackpropFilterAttrs = { strides: shape.stride, pad: 'same', dataFormat: 'NHWC', filterShape: shape.filter };
  const inputAttrs: tf.Conv2DBackpropInputAttrs = { strides: shape.stride, pad: 'same', dataFormat: 'NHWC', inputShape: shape.input };
  const disposeInfo = (info: tf.TensorInfo | tf.TensorInfo[]) => backend.disposeData((info as tf.TensorInfo).dataId);

  // Training changes the weights every step and XNNPACK packs a filter once per tensor, so each
  // call gets a fresh filter to time what a training step pays.
  const withFreshFilter = (run: (fresh: tf.Tensor4D) => void) => () => {
    const fresh = filter.clone();
    run(fresh);
    fresh.dispose();
  };
  const forward = await timeMs(repeats, withFreshFilter((fresh) => tf.conv2d(x, fresh, shape.stride, 'same').dispose()));
  const forwardAttrs = { strides: shape.stride, pad: 'same' as const, dataFormat: 'NHWC' as const, dilations: 1, activation: 'linear' };
  const forwardWasmOwn = await timeMs(repeats, withFreshFilter((fresh) => disposeInfo(wasmOwnForward.kernelFunc({
    inputs: { x, filter: fresh }, backend, attrs: forwardAttrs as unknown as tf.NamedAttrMap,
  }))));
  // Our kernel needs whole tiles of 8 output channels.
  const forwardSimd = shape.filter[3] % 8 !== 0 ? undefined : await timeMs(repeats, withFreshFilter((fresh) => disposeInfo(
    conv2dForwardOnWasm(x, fresh, undefined, forwardAttrs, backend) ?? [])));
  const filterGrad = {} as Record<FilterGradFormulation, Spread>;
  for (const formulation of FORMULATIONS) {
    filterGrad[formulation] = await timeMs(repeats, () => disposeInfo(conv2dFilterGradientOnWasm(x, dy, filterAttrs, backend, formulation)));
  }
  const inputGradWasmOwn = await timeMs(repeats, withFreshFilter((fresh) => disposeInfo(wasmOwnInputGradient.kernelFunc({
    inputs: { dy, filter: fresh }, backend, attrs: inputAttrs as unknown as tf.NamedAttrMap,
  }))));
  const inputGrad = {} as Record<InputGradFormulation, Spread>;
  for (const formulation of INPUT_FORMULATIONS) {
    inputGrad[formulation] = await timeMs(repeats, withFreshFilter((fresh) => disposeInfo(
      conv2dInputGradientOnWasm(dy, fresh, inputAttrs, backend, formulation) ?? [])));
  }
  tf.dispose([x, filter, dy]);
  return { forward, forwardWasmOwn, forwardSimd, filterGrad, inputGradWasmOwn, inputGrad };
}

const show = (t: Spread) => `${t.median.toFixed(1)} (${t.min.toFixed(1)})`;

/** One replica's shard of the tiny preset's batch of 64 (bench/train's data-parallel wasm run). */
const SHARD_IMAGES = 32;

/** Registers the wasm kernels a training step uses with (simd) or without our SIMD module. */
function useSimdKernels(simd: boolean, wasmOwnInputGradient: tf.KernelConfig, batchNorm: tf.KernelConfig[]): void {
  const replace = (config: tf.KernelConfig) => {
    if (tf.getKernel(config.kernelName, 'wasm') !== undefined) {
      tf.unregisterKernel(config.kernelName, 'wasm');
    }
    tf.registerKernel(config);
  };
  replace({
    kernelName: tf.Conv2DBackpropFilter, backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const filterAttrs = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
      return conv2dFilterGradientOnWasm(inputs.x as tf.TensorInfo, inputs.dy as tf.TensorInfo, filterAttrs, backend as tf.KernelBackend,
        preferredFilterGradFormulation(filterAttrs.filterShape, filterAttrs.strides, simd));
    },
  });
  replace({
    kernelName: tf.Conv2DBackpropInput, backendName: 'wasm',
    kernelFunc: (args) => conv2dInputGradientOnWasm(args.inputs.dy as tf.TensorInfo, args.inputs.filter as tf.TensorInfo,
      args.attrs as unknown as tf.Conv2DBackpropInputAttrs, args.backend as tf.KernelBackend,
      simd ? preferredInputGradFormulation((args.inputs.filter as tf.TensorInfo).shape[2]) : 'xnnpackConv')
      ?? wasmOwnInputGradient.kernelFunc(args),
  });
  for (const config of batchNorm) {
    if (simd) {
      replace(config);
    } else if (tf.getKernel(config.kernelName, 'wasm') !== undefined) {
      tf.unregisterKernel(config.kernelName, 'wasm');
    }
  }
}

/** The tiny preset's model, SGD and two random views of one shard: `train()` runs one whole step. */
function tinyShardStep(): { train: () => void; dispose: () => void } {
  const model = buildSimSiam(resolveConfig('tiny'));
  const parameters = parametersOf(model);
  const optimizer = new SgdMomentum(0.9, 5e-4);
  const groups = parameterGroups(parameters, { encoder: 0.01, predictor: 0.01 });
  const views = [1, 2].map((seed) => tf.randomNormal([SHARD_IMAGES, 32, 32, 3], 0, 1, 'float32', seed) as tf.Tensor4D);
  return {
    train: () => trainStep(model, views[0], views[1], parameters.variables, optimizer, groups),
    dispose: () => {
      tf.dispose(views);
      optimizer.dispose();
      model.dispose();
    },
  };
}

/**
 * `measure(false)` and `measure(true)` in `pairs` alternated pairs after two warm-up pairs; which
 * goes first alternates, so that neither always follows the other.
 */
function alternatedPairs<T>(pairs: number, measure: (on: boolean) => T): { off: T[]; on: T[] } {
  for (const on of [false, true, false, true]) {
    measure(on);
  }
  const off: T[] = [];
  const on: T[] = [];
  for (let pair = 0; pair < pairs; pair++) {
    if (pair % 2 === 0) {
      off.push(measure(false));
      on.push(measure(true));
    } else {
      on.push(measure(true));
      off.push(measure(false));
    }
  }
  return { off, on };
}

async function benchStep(pairs: number, wasmOwnInputGradient: tf.KernelConfig): Promise<void> {
  const batchNorm = [BATCH_NORM_TRAINING, BATCH_NORM_TRAINING_GRAD].map((name) => tf.getKernel(name, 'wasm'));
  if (batchNorm.some((config) => config === undefined) || preferredInputGradFormulation() !== 'simdKernel') {
    throw new Error('the SIMD training kernels did not load (no wasm SIMD here?): nothing to compare');
  }
  const step = tinyShardStep();
  const { off: without, on: withSimd } = alternatedPairs(pairs, (simd) => {
    useSimdKernels(simd, wasmOwnInputGradient, batchNorm as tf.KernelConfig[]);
    const started = performance.now();
    step.train();
    return performance.now() - started;
  });
  const ratios = without.map((ms, i) => ms / withSimd[i]).sort((a, b) => a - b);
  console.log(`tiny preset, ${SHARD_IMAGES}-image shard, both views, forward + backward + SGD; ms per step, median (min) of ${pairs}:`);
  console.log(`without the SIMD kernels ${show(spreadOf(without))}, with them ${show(spreadOf(withSimd))}; ` +
    `speed-up per alternated pair (sorted): ${ratios.map((r) => r.toFixed(2)).join(' ')}`);
  step.dispose();
}

/** The kernels --step-new swaps, by the argument that names them. */
const NEW_KERNELS: Record<string, string[]> = {
  forward: [tf.Conv2D, tf.FusedConv2D],
  sharing: [tf.Identity, tf.Cast],
  both: [tf.Conv2D, tf.FusedConv2D, tf.Identity, tf.Cast],
};

/** Alternated whole steps with the registered `names` kernels and with wasm's own (`wasmOwn`). */
async function benchNewKernels(pairs: number, names: string[], wasmOwn: tf.KernelConfig[]): Promise<void> {
  const ours = names.map((name) => tf.getKernel(name, 'wasm') as tf.KernelConfig);
  const use = (configs: tf.KernelConfig[]) => configs.forEach((config) => {
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  });
  const step = tinyShardStep();
  // CPU time as well as wall time: the wasm backend computes on this thread alone, so its CPU time
  // leaves out the time other processes on a shared machine take the core away.
  const { off: before, on: after } = alternatedPairs(pairs, (withNew) => {
    use(withNew ? ours : wasmOwn);
    const started = performance.now();
    const cpuStarted = process.cpuUsage();
    step.train();
    const cpu = process.cpuUsage(cpuStarted);
    return { wall: performance.now() - started, cpu: (cpu.user + cpu.system) / 1000 };
  });
  use(ours);
  console.log(`tiny preset, ${SHARD_IMAGES}-image shard, both views, forward + backward + SGD; ms per step, median (min) of ${pairs}:`);
  for (const measure of ['wall', 'cpu'] as const) {
    const ratios = before.map((times, i) => times[measure] / after[i][measure]).sort((a, b) => a - b);
    console.log(`${measure}: wasm's own ${names.join('/')} ${show(spreadOf(before.map((t) => t[measure])))}, ` +
      `ours ${show(spreadOf(after.map((t) => t[measure])))}; speed-up per alternated pair (sorted): ${ratios.map((r) => r.toFixed(2)).join(' ')}`);
  }
  step.dispose();
}

async function main(): Promise<void> {
  const wide = process.argv[2] === '--wide';
  if (wide) process.argv.splice(2, 1);
  const shapes = wide ? WIDE_SHAPES : SHAPES;
  const stepMode = process.argv[2] === '--step';
  const newMode = process.argv[2] === '--step-new';
  const repeats = Number(process.argv[stepMode || newMode ? 3 : 2] ?? 7);
  const newKernels = NEW_KERNELS[process.argv[4] ?? 'both'];
  if (newMode && newKernels === undefined) {
    throw new Error(`--step-new compares ${Object.keys(NEW_KERNELS).join(', ')}; got '${process.argv[4]}'`);
  }
  const wasmOwnNew = (newKernels ?? []).map((name) => tf.getKernel(name, 'wasm'));
  // Taken before selectBackend replaces them, to time the replacements against them.
  const wasmOwnInputGradient = tf.getKernel(tf.Conv2DBackpropInput, 'wasm');
  const wasmOwnForward = tf.getKernel(tf.FusedConv2D, 'wasm');
  if (wasmOwnInputGradient === undefined || wasmOwnForward === undefined) {
    throw new Error('tfjs-backend-wasm registered no Conv2DBackpropInput or FusedConv2D');
  }
  if (wasmOwnNew.some((config) => config === undefined)) {
    throw new Error(`tfjs-backend-wasm registered none of ${newKernels.join(', ')}`);
  }
  const backend = await selectBackend('wasm');
  if (newMode) {
    console.log(`${backend.detail}, tfjs ${tf.version_core}`);
    await benchNewKernels(repeats, newKernels, wasmOwnNew as tf.KernelConfig[]);
    return;
  }
  if (stepMode) {
    console.log(`${backend.detail}, tfjs ${tf.version_core}`);
    await benchStep(repeats, wasmOwnInputGradient);
    return;
  }
  console.log(`${backend.detail}, tfjs ${tf.version_core}; ms per call, median (min) of ${repeats} after ${WARM_UP} warm-up calls`);
  // Lets V8 tier the wasm code up before anything is timed.
  await benchShape(SHAPES[1], 1, wasmOwnInputGradient, wasmOwnForward);

  console.log(['shape', 'input', 'filter', 'stride', 'forward xnnpack', 'forward simdKernel', 'forward chosen',
    ...FORMULATIONS.map((f) => `dW ${f}`), 'dW chosen', 'dx wasm own', ...INPUT_FORMULATIONS.map((f) => `dx ${f}`), 'dx chosen'].join('\t'));
  const perStep = { forward: 0, forwardWasmOwn: 0, filterGrad: 0, inputGradWasmOwn: 0, inputGrad: 0 };
  for (const shape of shapes) {
    const timings = await benchShape(shape, repeats, wasmOwnInputGradient, wasmOwnForward);
    const chosen = preferredFilterGradFormulation(shape.filter, shape.stride);
    const chosenInput = preferredInputGradFormulation(shape.filter[2]);
    console.log([shape.label, `[${shape.input}]`, `[${shape.filter}]`, shape.stride, show(timings.forwardWasmOwn),
      timings.forwardSimd === undefined ? '-' : show(timings.forwardSimd), preferredForwardConvFormulation(shape.filter),
      ...FORMULATIONS.map((f) => show(timings.filterGrad[f])), chosen,
      show(timings.inputGradWasmOwn), ...INPUT_FORMULATIONS.map((f) => show(timings.inputGrad[f])), chosenInput].join('\t'));
    perStep.forward += timings.forward.median * shape.perForward;
    perStep.forwardWasmOwn += timings.forwardWasmOwn.median * shape.perForward;
    perStep.filterGrad += timings.filterGrad[chosen].median * shape.perForward;
    // tfjs's fused conv2d computes dx even for the stem, whose input (the images) needs none.
    perStep.inputGradWasmOwn += timings.inputGradWasmOwn.median * shape.perForward;
    perStep.inputGrad += timings.inputGrad[chosenInput].median * shape.perForward;
  }
  // SimSiam runs the backbone on two views per step.
  const ms = (value: number) => `${(2 * value).toFixed(0)} ms`;
  console.log(`backbone convs per training step (2 views, medians, chosen kernels): forward ${ms(perStep.forward)} ` +
    `(XNNPACK alone: ${ms(perStep.forwardWasmOwn)}), dW ${ms(perStep.filterGrad)}, dx ${ms(perStep.inputGrad)} ` +
    `(wasm's own dx kernel: ${ms(perStep.inputGradWasmOwn)})`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
