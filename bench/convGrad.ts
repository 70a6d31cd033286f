/**
 * Micro-benchmark of the wasm convolution gradients (src/training/wasmGradients.ts) next to the
 * forward conv2d of the same shape, on the tiny preset's ResNet-18 ×0.25 shapes: both
 * Conv2DBackpropFilter formulations, and Conv2DBackpropInput as wasm ships it and as replaced.
 *
 *   npx tsc -p . && node out/bench/convGrad.js [repeats=7]
 *
 * Prints the median and the minimum ms of `repeats` timed calls after two warm-up calls (the
 * minimum is the steadier figure on a shared machine). The wasm backend runs synchronously, so
 * wall time around a call is its compute time.
 */
import * as tf from '@tensorflow/tfjs';
// Loaded here, ahead of selectBackend, so that wasm's own Conv2DBackpropInput can be captured.
import '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '../src/training/tfjs/backend';
import { spreadOf, timeRepeats, type Spread } from './timing';
import {
  conv2dFilterGradientOnWasm, conv2dInputGradientOnWasm, FilterGradFormulation, preferredFilterGradFormulation,
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

const FORMULATIONS: FilterGradFormulation[] = ['batchContractedConv', 'im2colMatMul'];
const WARM_UP = 2;

/** Median and min of `repeats` timed calls after WARM_UP untimed ones (bench/timing). */
async function timeMs(repeats: number, run: () => void): Promise<Spread> {
  return spreadOf(await timeRepeats(WARM_UP, repeats, run));
}

interface ShapeTimings {
  forward: Spread;
  filterGrad: Record<FilterGradFormulation, Spread>;
  inputGradWasmOwn: Spread;
  inputGrad: Spread;
}

async function benchShape(shape: ConvShape, repeats: number, wasmOwnInputGradient: tf.KernelConfig): Promise<ShapeTimings> {
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
  const filterGrad = {} as Record<FilterGradFormulation, Spread>;
  for (const formulation of FORMULATIONS) {
    filterGrad[formulation] = await timeMs(repeats, () => disposeInfo(conv2dFilterGradientOnWasm(x, dy, filterAttrs, backend, formulation)));
  }
  const inputGradWasmOwn = await timeMs(repeats, withFreshFilter((fresh) => disposeInfo(wasmOwnInputGradient.kernelFunc({
    inputs: { dy, filter: fresh }, backend, attrs: inputAttrs as unknown as tf.NamedAttrMap,
  }))));
  const inputGrad = await timeMs(repeats, withFreshFilter((fresh) => disposeInfo(
    conv2dInputGradientOnWasm(dy, fresh, inputAttrs, backend) ?? [])));
  tf.dispose([x, filter, dy]);
  return { forward, filterGrad, inputGradWasmOwn, inputGrad };
}

const show = (t: Spread) => `${t.median.toFixed(1)} (${t.min.toFixed(1)})`;

async function main(): Promise<void> {
  const repeats = Number(process.argv[2] ?? 7);
  // Taken before selectBackend replaces it, to time the replacement against it.
  const wasmOwnInputGradient = tf.getKernel(tf.Conv2DBackpropInput, 'wasm');
  if (wasmOwnInputGradient === undefined) {
    throw new Error('tfjs-backend-wasm registered no Conv2DBackpropInput');
  }
  const backend = await selectBackend('wasm');
  console.log(`${backend.detail}, tfjs ${tf.version_core}; ms per call, median (min) of ${repeats} after ${WARM_UP} warm-up calls`);
  // Lets V8 tier the wasm code up before anything is timed.
  await benchShape(SHAPES[1], 1, wasmOwnInputGradient);

  console.log(['shape', 'input', 'filter', 'stride', 'forward', ...FORMULATIONS.map((f) => `dW ${f}`),
    'dW chosen', 'dx wasm own', 'dx replacement'].join('\t'));
  const perStep = { forward: 0, filterGrad: 0, inputGradWasmOwn: 0, inputGrad: 0 };
  for (const [index, shape] of SHAPES.entries()) {
    const timings = await benchShape(shape, repeats, wasmOwnInputGradient);
    const chosen = preferredFilterGradFormulation(shape.filter, shape.stride);
    console.log([shape.label, `[${shape.input}]`, `[${shape.filter}]`, shape.stride, show(timings.forward),
      ...FORMULATIONS.map((f) => show(timings.filterGrad[f])), chosen,
      show(timings.inputGradWasmOwn), show(timings.inputGrad)].join('\t'));
    perStep.forward += timings.forward.median * shape.perForward;
    perStep.filterGrad += timings.filterGrad[chosen].median * shape.perForward;
    // Nothing needs the gradient of the input images, so the stem conv computes no dx.
    const needsInputGrad = index === 0 ? 0 : shape.perForward;
    perStep.inputGradWasmOwn += timings.inputGradWasmOwn.median * needsInputGrad;
    perStep.inputGrad += timings.inputGrad.median * needsInputGrad;
  }
  // SimSiam runs the backbone on two views per step.
  const ms = (value: number) => `${(2 * value).toFixed(0)} ms`;
  console.log(`backbone convs per training step (2 views, medians): forward ${ms(perStep.forward)}, ` +
    `dW ${ms(perStep.filterGrad)}, dx ${ms(perStep.inputGrad)} (wasm's own dx kernel: ${ms(perStep.inputGradWasmOwn)})`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
