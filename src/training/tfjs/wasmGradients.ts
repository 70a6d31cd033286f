/**
 * Training kernels for @tensorflow/tfjs-backend-wasm 4.22, so that a ResNet with dense heads trains
 * on the wasm backend at a usable speed:
 * - Conv2DBackpropFilter (the weight gradient of conv2d) is missing from wasm; every other
 *   gradient that conv + batch norm + relu + max-pool + dense training needs is there.
 * - Conv2DBackpropInput exists but is a plain loop, 8-25x slower than the forward conv;
 *   it is replaced, keeping the original kernel for the cases the replacement does not cover
 *   (NCHW, paddings wider than the filter).
 * - BatchMatMul reaches XNNPACK only without transposes, yet matMul's gradients are transposed
 *   products (10-60x slower on the fallback loop); the wrapper transposes the operand first.
 * - ../model/batchNorm.ts's fused batch-norm kernels, which replace 5 element-wise ops and
 *   2 reductions in each direction by 2-3 sweeps.
 * - Conv2D and FusedConv2D (linear or relu, optional bias) on the shapes where our kernel beats
 *   XNNPACK, which repacks the filter on every call as training changes it every step.
 * - Identity and same-dtype Cast share their input's buffer instead of copying it (every tensor
 *   a custom gradient saves is cloned).
 *
 * The convolutions and the batch norm run in our own SIMD module
 * (./kernels/trainingKernels.ts) on copies of their inputs: the conv gradients 1.5-2x faster than
 * composing XNNPACK calls, which repack and transpose on every call. Where the runtime lacks wasm
 * SIMD, the conv gradients are compositions of the wasm backend's own kernel functions, called
 * directly with the backend rather than as tf ops (inside a kernel the engine would still track
 * every op's tensor and the result must come back as a bare TensorInfo, so direct kernel calls
 * with explicit disposal are the simpler contract), and batch norm runs as tf ops.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { BATCH_NORM_TRAINING, BATCH_NORM_TRAINING_GRAD } from '../model/batchNorm';

const WASM = 'wasm';
/** Channels of an image input (RGBA at most): the first conv's x. */
const MAX_IMAGE_CHANNELS = 4;

/**
 * Three exact ways of computing dW[kh,kw,ci,co] = sum_{b,oh,ow} xpad[b, oh*s+kh, ow*s+kw, ci] * dy[b,oh,ow,co]:
 * - 'simdKernel': that sum itself, register-tiled in our own SIMD module
 *   (./kernels/trainingKernels.ts) on copies of x (zero-padded, in channel blocks; a strided
 *   filter's patches gathered) and dy (in channel blocks); 2-4x faster than the
 *   others on the tiny preset's shapes (bench/convGrad.ts). Needs wasm SIMD.
 * - 'batchContractedConv': a conv2d over x laid out [ci, H, W, b] with dy laid out [oh, ow, b, co]
 *   as the filter (the batch becomes the contracted channel), dilated by the forward stride;
 *   it runs on XNNPACK's convolution.
 * - 'im2colMatMul': the strided patches of x as a [kh*kw*ci, b*oh*ow] matrix times dy as
 *   [b*oh*ow, co]; it runs on XNNPACK's fully-connected operator.
 */
export type FilterGradFormulation = 'simdKernel' | 'batchContractedConv' | 'im2colMatMul';

/**
 * The formulation the registered kernel uses, from bench/convGrad.ts figures: our SIMD kernel
 * wherever this runtime has wasm SIMD. Without it, at stride 1 the patch matrix is cheap to
 * build, and when it is small (1x1 filters, RGB input) the matrix product beats the conv, which
 * must first repack all of dy as a filter: 2-4x for 1x1, ~1.5x for the 3-channel stem.
 * Elsewhere the conv wins by 2-30x (strided patch extraction is slow).
 */
export function preferredFilterGradFormulation(
  filterShape: readonly [number, number, number, number], strides: [number, number] | number,
  simdKernelAvailable = loadTrainingKernels() !== null,
): FilterGradFormulation {
  if (simdKernelAvailable) {
    return 'simdKernel';
  }
  const [strideHeight, strideWidth] = typeof strides === 'number' ? [strides, strides] : strides;
  const [filterHeight, filterWidth, inChannels] = filterShape;
  const smallPatchMatrix = (filterHeight === 1 && filterWidth === 1) || inChannels <= MAX_IMAGE_CHANNELS;
  return strideHeight === 1 && strideWidth === 1 && smallPatchMatrix ? 'im2colMatMul' : 'batchContractedConv';
}

/** The compiled SIMD kernels, beside this module in out/ and in the extension's dist/. */
export const TRAINING_KERNELS_FILE = 'trainingKernels.wasm';

interface TrainingKernels {
  memory: WebAssembly.Memory;
  padInput(x: number, batch: number, height: number, width: number, channels: number, rowsUsed: number, colsUsed: number,
    out: number, paddedHeight: number, paddedWidth: number, paddedChannels: number, top: number, left: number): void;
  filterGradient(x: number, dy: number, dw: number, batch: number, paddedHeight: number, paddedWidth: number, inChannels: number,
    outHeight: number, outWidth: number, outChannels: number, filterHeight: number, filterWidth: number,
    strideHeight: number, strideWidth: number, imagesPerChunk: number): void;
  gatherPatches(x: number, batch: number, paddedHeight: number, paddedWidth: number, channels: number, outHeight: number,
    outWidth: number, filterHeight: number, filterWidth: number, strideHeight: number, strideWidth: number, dst: number): void;
  blockChannels(src: number, pixels: number, channels: number, block: number, dst: number): void;
  transposeFilter(w: number, out: number, taps: number, inChannels: number, outChannels: number, paddedInChannels: number): void;
  inputGradient(dy: number, filter: number, dx: number, batch: number, dyHeight: number, dyWidth: number, outChannels: number,
    height: number, width: number, inChannels: number, filterHeight: number, filterWidth: number, strideHeight: number,
    strideWidth: number, padTop: number, padLeft: number): void;
  forwardConv(x: number, filter: number, bias: number, out: number, batch: number, paddedHeight: number, paddedWidth: number,
    inChannels: number, outHeight: number, outWidth: number, outChannels: number, filterHeight: number, filterWidth: number,
    strideHeight: number, strideWidth: number, relu: number): void;
  channelSums(x: number, rows: number, channels: number, centre: number, squared: number, sums: number, partial: number): void;
  normalise(x: number, rows: number, channels: number, mean: number, invStd: number, gamma: number, beta: number,
    normalised: number, y: number): void;
  gradientSums(dy: number, normalised: number, rows: number, channels: number, sumDy: number, sumDyNormalised: number,
    partialDy: number, partialDyNormalised: number): void;
  normaliseGradient(dy: number, normalised: number, rows: number, channels: number, meanDy: number, meanDyNormalised: number,
    scale: number, dx: number): void;
}

/** undefined until first needed; null where this runtime cannot compile wasm SIMD. */
let trainingKernels: TrainingKernels | null | undefined;

function loadTrainingKernels(): TrainingKernels | null {
  if (trainingKernels === undefined) {
    const file = path.join(__dirname, TRAINING_KERNELS_FILE);
    if (!fs.existsSync(file)) {
      throw new Error(`the wasm training kernels ${file} are missing: run npm run compile (or npm run build for dist/)`);
    }
    let compiled: WebAssembly.Module | null = null;
    try {
      compiled = new WebAssembly.Module(fs.readFileSync(file));
    } catch (error) {
      // A runtime without wasm SIMD rejects the module; the XNNPACK formulations need none.
      if (!(error instanceof WebAssembly.CompileError)) {
        throw error;
      }
    }
    trainingKernels = compiled === null ? null : new WebAssembly.Instance(compiled, {}).exports as unknown as TrainingKernels;
  }
  return trainingKernels;
}

/** Runs wasm kernels on raw TensorInfos and frees every intermediate it made. */
class WasmKernelScope {
  private readonly intermediates: tf.TensorInfo[] = [];

  constructor(private readonly backend: tf.KernelBackend) {}

  run(kernelName: string, inputs: tf.NamedTensorInfoMap | tf.TensorInfo[], attrs: tf.NamedAttrMap = {}): tf.TensorInfo {
    const kernel = tf.getKernel(kernelName, WASM);
    if (kernel === undefined) {
      throw new Error(`wasm gradient kernels need the wasm kernel '${kernelName}', which is not registered`);
    }
    // Pack and Concat take their inputs as an array; the kernel signature only names the map form.
    const output = kernel.kernelFunc({ inputs: inputs as tf.NamedTensorInfoMap, backend: this.backend, attrs });
    if (Array.isArray(output)) {
      throw new Error(`wasm kernel '${kernelName}' returned several outputs where one was expected`);
    }
    this.intermediates.push(output);
    return output;
  }

  /** The result must survive the scope: the engine takes ownership of it. */
  keep(result: tf.TensorInfo): tf.TensorInfo {
    const index = this.intermediates.indexOf(result);
    if (index >= 0) {
      this.intermediates.splice(index, 1);
    }
    return result;
  }

  disposeIntermediates(): void {
    for (const info of this.intermediates) {
      this.backend.disposeData(info.dataId);
    }
    this.intermediates.length = 0;
  }
}

interface FilterGradGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
  /** Bottom/right padding actually read by the forward conv; the rest of the forward padding is never touched. */
  padBottomUsed: number;
  padRightUsed: number;
  /** Rows/columns of x the forward conv reads; trailing ones beyond a stride are skipped by it. */
  inHeightUsed: number;
  inWidthUsed: number;
}

function filterGradGeometry(x: tf.TensorInfo, dy: tf.TensorInfo, attrs: tf.Conv2DBackpropFilterAttrs): FilterGradGeometry {
  if (attrs.dataFormat !== 'NHWC') {
    throw new Error(
      `wasm Conv2DBackpropFilter supports dataFormat 'NHWC' only, got '${attrs.dataFormat}': use channels-last tensors on the wasm backend`);
  }
  if (x.shape.length !== 4 || dy.shape.length !== 4) {
    throw new Error(`wasm Conv2DBackpropFilter expects rank-4 x and dy, got shapes [${x.shape}] and [${dy.shape}]`);
  }
  const conv = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  if (!tf.util.arraysEqual(conv.outShape, dy.shape)) {
    throw new Error(`wasm Conv2DBackpropFilter: dy has shape [${dy.shape}] but the forward conv yields [${conv.outShape}]`);
  }
  const rowsRead = (conv.outHeight - 1) * conv.strideHeight + conv.filterHeight;
  const colsRead = (conv.outWidth - 1) * conv.strideWidth + conv.filterWidth;
  const inHeightUsed = Math.min(conv.inHeight, rowsRead - conv.padInfo.top);
  const inWidthUsed = Math.min(conv.inWidth, colsRead - conv.padInfo.left);
  return {
    batch: conv.batchSize,
    inHeight: conv.inHeight,
    inWidth: conv.inWidth,
    inChannels: conv.inChannels,
    outHeight: conv.outHeight,
    outWidth: conv.outWidth,
    outChannels: conv.outChannels,
    filterHeight: conv.filterHeight,
    filterWidth: conv.filterWidth,
    strideHeight: conv.strideHeight,
    strideWidth: conv.strideWidth,
    padTop: conv.padInfo.top,
    padLeft: conv.padInfo.left,
    padBottomUsed: rowsRead - conv.padInfo.top - inHeightUsed,
    padRightUsed: colsRead - conv.padInfo.left - inWidthUsed,
    inHeightUsed,
    inWidthUsed,
  };
}

function batchContractedConv(scope: WasmKernelScope, x: tf.TensorInfo, dy: tf.TensorInfo, g: FilterGradGeometry): tf.TensorInfo {
  // Rows/columns of x past the last one the forward conv read would make this conv compute
  // filter taps beyond kh/kw. A 1x1 filter (the stride-2 shortcut on an even input) needs only
  // tap 0, so a stride that skips every later tap avoids them for free; otherwise crop x.
  const cropHeight = g.inHeightUsed < g.inHeight && g.filterHeight > 1;
  const cropWidth = g.inWidthUsed < g.inWidth && g.filterWidth > 1;
  const tapStrideHeight = g.filterHeight === 1 ? g.inHeight + g.padTop + g.padBottomUsed : 1;
  const tapStrideWidth = g.filterWidth === 1 ? g.inWidth + g.padLeft + g.padRightUsed : 1;
  let xUsed = x;
  if (cropHeight || cropWidth) {
    xUsed = scope.run('Slice', { x }, {
      begin: [0, 0, 0, 0],
      size: [g.batch, cropHeight ? g.inHeightUsed : g.inHeight, cropWidth ? g.inWidthUsed : g.inWidth, g.inChannels],
    });
  }
  const xChannelsFirst = scope.run('Transpose', { x: xUsed }, { perm: [3, 1, 2, 0] });   // [ci, H, W, b]
  const dyAsFilter = scope.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });          // [oh, ow, b, co]
  const gradChannelsFirst = scope.run('Conv2D', { x: xChannelsFirst, filter: dyAsFilter }, {
    strides: [tapStrideHeight, tapStrideWidth],
    pad: [[0, 0], [g.padTop, g.padBottomUsed], [g.padLeft, g.padRightUsed], [0, 0]],
    dilations: [g.strideHeight, g.strideWidth],
    dataFormat: 'NHWC',
  });                                                                                     // [ci, kh, kw, co]
  return scope.run('Transpose', { x: gradChannelsFirst }, { perm: [1, 2, 0, 3] });
}

function im2colMatMul(scope: WasmKernelScope, x: tf.TensorInfo, dy: tf.TensorInfo, g: FilterGradGeometry): tf.TensorInfo {
  let xChannelsFirst = scope.run('Transpose', { x }, { perm: [3, 0, 1, 2] });             // [ci, b, H, W]
  if (g.padTop + g.padBottomUsed + g.padLeft + g.padRightUsed > 0) {
    xChannelsFirst = scope.run('PadV2', { x: xChannelsFirst }, {
      paddings: [[0, 0], [0, 0], [g.padTop, g.padBottomUsed], [g.padLeft, g.padRightUsed]],
      constantValue: 0,
    });
  }
  const patches: tf.TensorInfo[] = [];
  for (let kh = 0; kh < g.filterHeight; kh++) {
    for (let kw = 0; kw < g.filterWidth; kw++) {
      patches.push(scope.run('StridedSlice', { x: xChannelsFirst }, {
        begin: [0, 0, kh, kw],
        end: [g.inChannels, g.batch, kh + (g.outHeight - 1) * g.strideHeight + 1, kw + (g.outWidth - 1) * g.strideWidth + 1],
        strides: [1, 1, g.strideHeight, g.strideWidth],
        beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0,
      }));                                                                                // [ci, b, oh, ow]
    }
  }
  const contracted = g.batch * g.outHeight * g.outWidth;
  const stacked = scope.run('Pack', patches, { axis: 0 });                                // [kh*kw, ci, b, oh, ow]
  const patchRows = scope.run('Reshape', { x: stacked }, { shape: [1, g.filterHeight * g.filterWidth * g.inChannels, contracted] });
  const dyRows = scope.run('Reshape', { x: dy }, { shape: [1, contracted, g.outChannels] });
  // Untransposed operands with batch 1 are what routes wasm BatchMatMul to XNNPACK (else a naive loop).
  const grad = scope.run('BatchMatMul', { a: patchRows, b: dyRows }, { transposeA: false, transposeB: false });
  return scope.run('Reshape', { x: grad }, { shape: [g.filterHeight, g.filterWidth, g.inChannels, g.outChannels] });
}

/** x's channels, which the dW kernel reads 4 at a time. */
const SIMD_FLOATS = 4;
/** Both kernels' tiles are 8 channels of their result wide: dW's output channels, dx's input channels. */
const TILE_CHANNELS = 8;
/** x and dy bytes (one channel block of each) of one chunk of images the dW kernel sweeps while they stay in L2. */
const CHUNK_BYTES = 256 * 1024;
/** The most bytes of gathered patches (taps × x) the dW kernel makes rather than striding through x. */
const MAX_GATHERED_BYTES = 32 * 1024 * 1024;
const WASM_PAGE_BYTES = 65536;

const roundUp = (value: number, multiple: number) => Math.ceil(value / multiple) * multiple;

/** Byte offsets of consecutive 16-byte-aligned regions of the given sizes, and their end. */
function layOut(sizes: number[]): { offsets: number[]; end: number } {
  const offsets: number[] = [];
  let end = 0;
  for (const bytes of sizes) {
    offsets.push(end);
    end += roundUp(bytes, 16);
  }
  return { offsets, end };
}

/** The kernels' memory as floats, grown to at least `bytes` first. */
function kernelMemory(k: TrainingKernels, bytes: number): Float32Array {
  const missing = bytes - k.memory.buffer.byteLength;
  if (missing > 0) {
    k.memory.grow(Math.ceil(missing / WASM_PAGE_BYTES));
  }
  return new Float32Array(k.memory.buffer);
}

function simdKernel(k: TrainingKernels, backend: tf.KernelBackend, x: tf.TensorInfo, dy: tf.TensorInfo, g: FilterGradGeometry): tf.TensorInfo {
  const wasm = backend as unknown as WasmHeapAccess;
  const inChannels = roundUp(g.inChannels, SIMD_FLOATS);
  const outChannels = roundUp(g.outChannels, TILE_CHANNELS);
  const padX = inChannels !== g.inChannels || g.padTop + g.padBottomUsed + g.padLeft + g.padRightUsed > 0;
  const padDy = outChannels !== g.outChannels;
  // Unpadded, x keeps its own row pitch: the kernel never reads the rows/columns past those used.
  const paddedHeight = padX ? g.padTop + g.inHeightUsed + g.padBottomUsed : g.inHeight;
  const paddedWidth = padX ? g.padLeft + g.inWidthUsed + g.padRightUsed : g.inWidth;
  const pixels = g.batch * g.outHeight * g.outWidth;
  const xPixels = g.batch * paddedHeight * paddedWidth;
  const taps = g.filterHeight * g.filterWidth;
  // Strided filters read x at a stride the tile's loads cannot use whole: their patches, gathered
  // once, make dW the 1x1 gradient of taps × ci channels over one long row (1.1-1.2x, bench/convGrad.ts).
  // At stride 1 gathering costs more than it saves.
  const gather = taps > 1 && (g.strideHeight > 1 || g.strideWidth > 1) && taps * pixels * inChannels * 4 <= MAX_GATHERED_BYTES;
  const { offsets: [xAt, xPaddedAt, xBlockedAt, dyAt, dyPaddedAt, dyBlockedAt, dwAt], end } = layOut([
    tf.util.sizeFromShape(x.shape) * 4,
    padX ? xPixels * inChannels * 4 : 0,
    (gather ? taps * pixels : xPixels) * inChannels * 4,
    tf.util.sizeFromShape(dy.shape) * 4,
    padDy ? pixels * outChannels * 4 : 0,
    pixels * outChannels * 4,
    taps * inChannels * outChannels * 4,
  ]);
  const memory = kernelMemory(k, end);
  memory.set(wasm.typedArrayFromHeap(x) as Float32Array, xAt / 4);
  memory.set(wasm.typedArrayFromHeap(dy) as Float32Array, dyAt / 4);
  if (padX) {
    k.padInput(xAt, g.batch, g.inHeight, g.inWidth, g.inChannels, g.inHeightUsed, g.inWidthUsed,
      xPaddedAt, paddedHeight, paddedWidth, inChannels, g.padTop, g.padLeft);
  }
  if (padDy) {
    k.padInput(dyAt, g.batch, g.outHeight, g.outWidth, g.outChannels, g.outHeight, g.outWidth,
      dyPaddedAt, g.outHeight, g.outWidth, outChannels, 0, 0);
  }
  // Channel blocks with their pixels contiguous: each tile then reads whole cache lines of x and dy.
  k.blockChannels(padDy ? dyPaddedAt : dyAt, pixels, outChannels, TILE_CHANNELS, dyBlockedAt);
  if (gather) {
    k.gatherPatches(padX ? xPaddedAt : xAt, g.batch, paddedHeight, paddedWidth, inChannels, g.outHeight, g.outWidth,
      g.filterHeight, g.filterWidth, g.strideHeight, g.strideWidth, xBlockedAt);
    k.filterGradient(xBlockedAt, dyBlockedAt, dwAt, 1, 1, pixels, taps * inChannels, 1, pixels, outChannels, 1, 1, 1, 1, 1);
  } else {
    k.blockChannels(padX ? xPaddedAt : xAt, xPixels, inChannels, SIMD_FLOATS, xBlockedAt);
    const imageBytes = (paddedHeight * paddedWidth * SIMD_FLOATS + g.outHeight * g.outWidth * TILE_CHANNELS) * 4;
    k.filterGradient(xBlockedAt, dyBlockedAt, dwAt, g.batch, paddedHeight, paddedWidth, inChannels,
      g.outHeight, g.outWidth, outChannels, g.filterHeight, g.filterWidth, g.strideHeight, g.strideWidth,
      Math.max(1, Math.floor(CHUNK_BYTES / imageBytes)));
  }

  const result = wasm.makeOutput([g.filterHeight, g.filterWidth, g.inChannels, g.outChannels], 'float32');
  const dw = wasm.typedArrayFromHeap(result) as Float32Array;
  const computed = new Float32Array(k.memory.buffer, dwAt, g.filterHeight * g.filterWidth * inChannels * outChannels);
  if (inChannels === g.inChannels && outChannels === g.outChannels) {
    dw.set(computed);
  } else {
    // Drop the rounding channels: a row of dW per (kh, kw, ci).
    for (let row = 0; row < g.filterHeight * g.filterWidth * g.inChannels; row++) {
      const from = (Math.floor(row / g.inChannels) * inChannels + row % g.inChannels) * outChannels;
      dw.set(computed.subarray(from, from + g.outChannels), row * g.outChannels);
    }
  }
  return result;
}

/** The wasm backend's own access to its heap (BackendWasm), which KernelBackend does not declare. */
interface WasmHeapAccess {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
}

/**
 * dW of conv2d(x, W) on the wasm backend for upstream gradient dy; exported so the benchmark can
 * time each formulation. Returns a TensorInfo owned by the caller (the engine, inside a kernel).
 */
export function conv2dFilterGradientOnWasm(
  x: tf.TensorInfo, dy: tf.TensorInfo, attrs: tf.Conv2DBackpropFilterAttrs, backend: tf.KernelBackend,
  formulation: FilterGradFormulation = preferredFilterGradFormulation(attrs.filterShape, attrs.strides),
): tf.TensorInfo {
  const geometry = filterGradGeometry(x, dy, attrs);
  const scope = new WasmKernelScope(backend);
  try {
    if (geometry.inHeightUsed <= 0 || geometry.inWidthUsed <= 0) {
      // Explicit padding so wide that no output reads x: the weights do not affect the loss.
      return scope.keep(scope.run('Fill', {}, { shape: attrs.filterShape, value: 0, dtype: 'float32' }));
    }
    if (formulation === 'simdKernel') {
      const kernels = loadTrainingKernels();
      if (kernels === null) {
        throw new Error('the simdKernel dW formulation needs WebAssembly SIMD, which this runtime lacks');
      }
      return simdKernel(kernels, backend, x, dy, geometry);
    }
    const compute = formulation === 'batchContractedConv' ? batchContractedConv : im2colMatMul;
    return scope.keep(compute(scope, x, dy, geometry));
  } finally {
    scope.disposeIntermediates();
  }
}

/**
 * Two exact ways of computing dx of conv2d(x, W) (below):
 * - 'simdKernel': per phase, the stride-1 correlation itself in our own SIMD module
 *   (./kernels/trainingKernels.ts) on a zero-padded copy of dy; needs wasm SIMD.
 * - 'xnnpackConv': all phases as one XNNPACK conv with the sub-filters side by side.
 */
export type InputGradFormulation = 'simdKernel' | 'xnnpackConv';

/**
 * Our SIMD kernel wherever this runtime has wasm SIMD (bench/convGrad.ts: faster on every
 * tiny-preset shape), except into an image's few channels (`inChannels`, when given), which its
 * tile rounds up to 8: there XNNPACK is 1.5x faster. Only the stem's conv has such an x, and tfjs
 * computes its dx although nothing needs it.
 */
export function preferredInputGradFormulation(inChannels?: number): InputGradFormulation {
  if (loadTrainingKernels() === null) {
    return 'xnnpackConv';
  }
  return inChannels !== undefined && inChannels <= MAX_IMAGE_CHANNELS ? 'xnnpackConv' : 'simdKernel';
}

/**
 * dx of conv2d(x, W) for upstream gradient dy. At stride 1 it is a conv of dy with W rotated by
 * 180° and its channels swapped. At stride s, each of the s×s phases of dx (its positions modulo
 * s) is such a conv with its own sub-filter (the taps of W that reach that phase): for a 3x3
 * stride-2 conv 2.25x fewer multiply-adds than spreading dy with zeros to dx's size first. On
 * XNNPACK all phases are one stride-1 conv of dy with the sub-filters side by side as output
 * channels, and a transpose interleaves them. Returns undefined for the configurations these
 * formulations cannot express, which then go to wasm's own kernel.
 */
export function conv2dInputGradientOnWasm(
  dy: tf.TensorInfo, filter: tf.TensorInfo, attrs: tf.Conv2DBackpropInputAttrs, backend: tf.KernelBackend,
  formulation: InputGradFormulation = preferredInputGradFormulation(filter.shape[2]),
): tf.TensorInfo | undefined {
  if (attrs.dataFormat !== 'NHWC') {
    return undefined;
  }
  const conv = tf.backend_util.computeConv2DInfo(
    attrs.inputShape, filter.shape as [number, number, number, number], attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const stride1 = conv.strideHeight === 1 && conv.strideWidth === 1;
  const { top, left, bottom, right } = conv.padInfo;
  // Paddings as wide as the filter: windows that read padding only (the stride-1 formulation's
  // bottom/right padding would turn negative).
  if (top >= conv.filterHeight || left >= conv.filterWidth || (stride1 && (bottom >= conv.filterHeight || right >= conv.filterWidth))) {
    return undefined;
  }
  if (formulation === 'simdKernel') {
    const kernels = loadTrainingKernels();
    if (kernels === null) {
      throw new Error('the simdKernel dx formulation needs WebAssembly SIMD, which this runtime lacks');
    }
    return simdInputGradient(kernels, backend, dy, filter, conv);
  }
  const scope = new WasmKernelScope(backend);
  try {
    const dx = stride1 ? stride1InputGradient(scope, dy, filter, conv) : phaseSplitInputGradient(scope, dy, filter, conv);
    if (!tf.util.arraysEqual(dx.shape, [conv.batchSize, conv.inHeight, conv.inWidth, conv.inChannels])) {
      throw new Error(`wasm Conv2DBackpropInput produced [${dx.shape}] instead of [${attrs.inputShape}]`);
    }
    return scope.keep(dx);
  } finally {
    scope.disposeIntermediates();
  }
}

function simdInputGradient(k: TrainingKernels, backend: tf.KernelBackend, dy: tf.TensorInfo, filter: tf.TensorInfo,
  conv: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const wasm = backend as unknown as WasmHeapAccess;
  const { batchSize, inHeight, inWidth, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = conv;
  const { top, left } = conv.padInfo;
  const inChannels = roundUp(conv.inChannels, TILE_CHANNELS);
  const tapsHeight = Math.ceil(filterHeight / strideHeight);
  const tapsWidth = Math.ceil(filterWidth / strideWidth);
  // Phase rows reach a = floor((H − 1 + top) / s); each reads dy rows a − j for j < taps.
  const dyHeight = tapsHeight - 1 + Math.max(outHeight, Math.floor((inHeight - 1 + top) / strideHeight) + 1);
  const dyWidth = tapsWidth - 1 + Math.max(outWidth, Math.floor((inWidth - 1 + left) / strideWidth) + 1);
  const taps = filterHeight * filterWidth;
  const { offsets: [dyAt, dyPaddedAt, filterAt, transposedAt, blockedAt, dxAt], end } = layOut([
    batchSize * outHeight * outWidth * outChannels * 4,
    batchSize * dyHeight * dyWidth * outChannels * 4,
    taps * conv.inChannels * outChannels * 4,
    taps * outChannels * inChannels * 4,
    taps * outChannels * inChannels * 4,
    batchSize * inHeight * inWidth * inChannels * 4,
  ]);
  const memory = kernelMemory(k, end);
  memory.set(wasm.typedArrayFromHeap(dy) as Float32Array, dyAt / 4);
  memory.set(wasm.typedArrayFromHeap(filter) as Float32Array, filterAt / 4);
  k.padInput(dyAt, batchSize, outHeight, outWidth, outChannels, outHeight, outWidth,
    dyPaddedAt, dyHeight, dyWidth, outChannels, tapsHeight - 1, tapsWidth - 1);
  k.transposeFilter(filterAt, transposedAt, taps, conv.inChannels, outChannels, inChannels);
  // Each tile's 8 input channels of every filter row side by side: whole cache lines.
  k.blockChannels(transposedAt, taps * outChannels, inChannels, TILE_CHANNELS, blockedAt);
  k.inputGradient(dyPaddedAt, blockedAt, dxAt, batchSize, dyHeight, dyWidth, outChannels,
    inHeight, inWidth, inChannels, filterHeight, filterWidth, strideHeight, strideWidth, top, left);

  const result = wasm.makeOutput([batchSize, inHeight, inWidth, conv.inChannels], 'float32');
  const dx = wasm.typedArrayFromHeap(result) as Float32Array;
  const computed = new Float32Array(k.memory.buffer, dxAt, batchSize * inHeight * inWidth * inChannels);
  if (inChannels === conv.inChannels) {
    dx.set(computed);
  } else {
    // Drop the rounding channels, pixel by pixel.
    for (let pixel = 0; pixel < batchSize * inHeight * inWidth; pixel++) {
      dx.set(computed.subarray(pixel * inChannels, pixel * inChannels + conv.inChannels), pixel * conv.inChannels);
    }
  }
  return result;
}

function stride1InputGradient(scope: WasmKernelScope, dy: tf.TensorInfo, filter: tf.TensorInfo, conv: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  // The 'full' correlation, padded so that it yields exactly [H, W].
  const padBottom = conv.inHeight - conv.outHeight + conv.padInfo.top;
  const padRight = conv.inWidth - conv.outWidth + conv.padInfo.left;
  const rotated = scope.run('Reverse', { x: filter }, { dims: [0, 1] });
  const swapped = scope.run('Transpose', { x: rotated }, { perm: [0, 1, 3, 2] }); // [kh, kw, co, ci]
  return scope.run('Conv2D', { x: dy, filter: swapped }, {
    strides: [1, 1],
    pad: [[0, 0], [conv.filterHeight - 1 - conv.padInfo.top, padBottom], [conv.filterWidth - 1 - conv.padInfo.left, padRight], [0, 0]],
    dilations: [1, 1],
    dataFormat: 'NHWC',
  });
}

/**
 * Along one axis, with q = m + pad the position of dx[m] in the padded input, q = s·a + r:
 *   dx[q − pad] = Σ_{j < J} dy[a − j] · W[r + s·j]   (J = ceil(k / s) taps, W = 0 past k)
 * a stride-1 correlation of dy padded by J − 1 in front with the sub-filter F_r[t] = W[r + s(J−1−t)].
 */
function phaseSplitInputGradient(scope: WasmKernelScope, dy: tf.TensorInfo, filter: tf.TensorInfo, conv: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = conv;
  const tapsHeight = Math.ceil(filterHeight / strideHeight);
  const tapsWidth = Math.ceil(filterWidth / strideWidth);
  // Phase rows a = 0 .. A−1 cover padded positions up to the last row of x.
  const phaseRows = Math.floor((conv.padInfo.top + inHeight - 1) / strideHeight) + 1;
  const phaseCols = Math.floor((conv.padInfo.left + inWidth - 1) / strideWidth) + 1;

  // [kh, kw, ci, co] → zero-padded to [J·s, ...] → [J, s, J, s, ci, co] (k = j·s + r) → j reversed
  // → [t_h, t_w, co, r_h, r_w, ci] → [J_h, J_w, co, s_h·s_w·ci]: output channel (r_h·s_w + r_w)·ci + c.
  const padded = scope.run('PadV2', { x: filter }, {
    paddings: [[0, tapsHeight * strideHeight - filterHeight], [0, tapsWidth * strideWidth - filterWidth], [0, 0], [0, 0]],
    constantValue: 0,
  });
  const phased = scope.run('Reshape', { x: padded }, { shape: [tapsHeight, strideHeight, tapsWidth, strideWidth, inChannels, outChannels] });
  const reversed = scope.run('Reverse', { x: phased }, { dims: [0, 2] });
  const arranged = scope.run('Transpose', { x: reversed }, { perm: [0, 2, 5, 1, 3, 4] });
  const phaseFilters = scope.run('Reshape', { x: arranged }, { shape: [tapsHeight, tapsWidth, outChannels, strideHeight * strideWidth * inChannels] });

  const phases = scope.run('Conv2D', { x: dy, filter: phaseFilters }, {
    strides: [1, 1],
    pad: [[0, 0], [tapsHeight - 1, Math.max(0, phaseRows - outHeight)], [tapsWidth - 1, Math.max(0, phaseCols - outWidth)], [0, 0]],
    dilations: [1, 1],
    dataFormat: 'NHWC',
  });
  // [b, A', B', s_h·s_w·ci] → [b, A'·s_h, B'·s_w, ci] (a transpose: wasm's DepthToSpace is a
  // per-element loop, 10x slower), then the rows and columns of x.
  const [, rows, cols] = phases.shape;
  const split = scope.run('Reshape', { x: phases }, { shape: [batchSize, rows, cols, strideHeight, strideWidth, inChannels] });
  const moved = scope.run('Transpose', { x: split }, { perm: [0, 1, 3, 2, 4, 5] });
  const interleaved = scope.run('Reshape', { x: moved }, { shape: [batchSize, rows * strideHeight, cols * strideWidth, inChannels] });
  if (conv.padInfo.top === 0 && conv.padInfo.left === 0 && rows * strideHeight === inHeight && cols * strideWidth === inWidth) {
    return interleaved;
  }
  return scope.run('Slice', { x: interleaved }, {
    begin: [0, conv.padInfo.top, conv.padInfo.left, 0],
    size: [batchSize, inHeight, inWidth, inChannels],
  });
}

/**
 * Two ways of running the forward conv2d (and FusedConv2D with an optional bias and relu):
 * - 'simdKernel': the sum itself, register-tiled in our own SIMD module on a zero-padded copy of
 *   x and the filter regrouped in blocks of 8 output channels (one pass over the small filter,
 *   where XNNPACK packs it on every call of a training step, as each step brings new weights).
 * - 'xnnpack': the wasm backend's own kernel.
 */
export type ForwardConvFormulation = 'simdKernel' | 'xnnpack';

/** Input channels below which XNNPACK wins: our tile's inner loop runs over them (bench/convGrad.ts, the RGB stem). */
const MIN_SIMD_FORWARD_IN_CHANNELS = 16;

/**
 * Our SIMD kernel for filters wider than 1x1 over at least MIN_SIMD_FORWARD_IN_CHANNELS input
 * channels, output channels in whole tiles (bench/convGrad.ts, tiny preset: 1.05-1.3x faster
 * than XNNPACK there; 0.85-1.15x for the 1x1 shortcuts, 0.9x for the RGB stem), XNNPACK
 * elsewhere and without wasm SIMD.
 */
export function preferredForwardConvFormulation(filterShape: readonly number[],
  simdKernelAvailable = loadTrainingKernels() !== null): ForwardConvFormulation {
  const [filterHeight, filterWidth, inChannels, outChannels] = filterShape;
  return simdKernelAvailable && filterHeight * filterWidth > 1 && inChannels >= MIN_SIMD_FORWARD_IN_CHANNELS
    && outChannels % TILE_CHANNELS === 0 ? 'simdKernel' : 'xnnpack';
}

/** The FusedConv2D attributes our kernel reads; plain Conv2D has no activation. */
interface ForwardConvAttrs {
  strides: [number, number] | number;
  pad: tf.Conv2DAttrs['pad'];
  dataFormat: 'NHWC' | 'NCHW';
  dilations: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  activation?: string;
}

/**
 * conv2d(x, filter) (+ bias, then relu where `activation` says so) on the wasm backend with our
 * SIMD kernel; exported so that the benchmark and tests can call it. Returns undefined where the
 * kernel does not apply (NCHW, dilations, activations other than linear/relu, a bias that is not
 * one value per output channel, output channels not in whole tiles, non-float32 operands), for
 * the caller to run wasm's own kernel.
 */
export function conv2dForwardOnWasm(x: tf.TensorInfo, filter: tf.TensorInfo, bias: tf.TensorInfo | undefined,
  attrs: ForwardConvAttrs, backend: tf.KernelBackend): tf.TensorInfo | undefined {
  const activation = attrs.activation ?? 'linear';
  const dilations = typeof attrs.dilations === 'number' ? [attrs.dilations, attrs.dilations] : attrs.dilations;
  if (attrs.dataFormat !== 'NHWC' || dilations.some((d) => d !== 1) || (activation !== 'linear' && activation !== 'relu')
    || x.shape.length !== 4 || filter.shape.length !== 4 || x.dtype !== 'float32' || filter.dtype !== 'float32') {
    return undefined;
  }
  const conv = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number], attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const rowsRead = (conv.outHeight - 1) * conv.strideHeight + conv.filterHeight;
  const colsRead = (conv.outWidth - 1) * conv.strideWidth + conv.filterWidth;
  const rowsUsed = Math.min(conv.inHeight, rowsRead - conv.padInfo.top);
  const colsUsed = Math.min(conv.inWidth, colsRead - conv.padInfo.left);
  const kernels = loadTrainingKernels();
  if (kernels === null || conv.outChannels % TILE_CHANNELS !== 0 || rowsUsed <= 0 || colsUsed <= 0 || conv.outHeight <= 0 || conv.outWidth <= 0
    || (bias !== undefined && (bias.dtype !== 'float32' || tf.util.sizeFromShape(bias.shape) !== conv.outChannels))) {
    return undefined;
  }
  return simdForwardConv(kernels, backend, x, filter, bias, conv, rowsRead, colsRead, rowsUsed, colsUsed, activation === 'relu');
}

function simdForwardConv(k: TrainingKernels, backend: tf.KernelBackend, x: tf.TensorInfo, filter: tf.TensorInfo,
  bias: tf.TensorInfo | undefined, conv: tf.backend_util.Conv2DInfo, rowsRead: number, colsRead: number, rowsUsed: number,
  colsUsed: number, relu: boolean): tf.TensorInfo {
  const wasm = backend as unknown as WasmHeapAccess;
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = conv;
  const { top, left } = conv.padInfo;
  const padX = top > 0 || left > 0 || rowsRead > top + rowsUsed || colsRead > left + colsUsed;
  // Unpadded, x keeps its own row pitch: the kernel never reads the rows/columns past those used.
  const paddedHeight = padX ? rowsRead : inHeight;
  const paddedWidth = padX ? colsRead : inWidth;
  const outSize = batchSize * outHeight * outWidth * outChannels;
  const { offsets: [xAt, xPaddedAt, filterAt, blockedAt, biasAt, outAt], end } = layOut([
    batchSize * inHeight * inWidth * inChannels * 4,
    padX ? batchSize * paddedHeight * paddedWidth * inChannels * 4 : 0,
    filterHeight * filterWidth * inChannels * outChannels * 4,
    filterHeight * filterWidth * inChannels * outChannels * 4,
    outChannels * 4,
    outSize * 4,
  ]);
  const memory = kernelMemory(k, end);
  copyIn(memory, wasm, x, xAt);
  copyIn(memory, wasm, filter, filterAt);
  if (bias !== undefined) {
    copyIn(memory, wasm, bias, biasAt);
  }
  if (padX) {
    k.padInput(xAt, batchSize, inHeight, inWidth, inChannels, rowsUsed, colsUsed, xPaddedAt, paddedHeight, paddedWidth, inChannels, top, left);
  }
  // Each tile's 8 output channels of every filter row side by side: whole cache lines.
  k.blockChannels(filterAt, filterHeight * filterWidth * inChannels, outChannels, TILE_CHANNELS, blockedAt);
  k.forwardConv(padX ? xPaddedAt : xAt, blockedAt, bias === undefined ? 0 : biasAt, outAt, batchSize, paddedHeight, paddedWidth,
    inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth, relu ? 1 : 0);
  return copyOut(k, wasm, [batchSize, outHeight, outWidth, outChannels], outAt);
}

/** Copies `info`'s values (from the wasm backend's heap) into the kernels' memory at byte offset `at`. */
function copyIn(memory: Float32Array, wasm: WasmHeapAccess, info: tf.TensorInfo, at: number): void {
  memory.set(wasm.typedArrayFromHeap(info) as Float32Array, at / 4);
}

/** A new output of the wasm backend holding the kernels' floats at byte offset `at`. */
function copyOut(k: TrainingKernels, wasm: WasmHeapAccess, shape: number[], at: number): tf.TensorInfo {
  const result = wasm.makeOutput(shape, 'float32');
  (wasm.typedArrayFromHeap(result) as Float32Array).set(new Float32Array(k.memory.buffer, at, tf.util.sizeFromShape(shape)));
  return result;
}

/**
 * ../model/batchNorm.ts's training-mode forward on the SIMD kernels: x [..., channels] →
 * [y, normalised, mean, variance, invStd] in 4 sweeps of x (two-pass statistics, then one that
 * writes both outputs).
 */
function batchNormTraining(k: TrainingKernels, backend: tf.KernelBackend, x: tf.TensorInfo, gamma: tf.TensorInfo,
  beta: tf.TensorInfo, epsilon: number): tf.TensorInfo[] {
  const wasm = backend as unknown as WasmHeapAccess;
  const channels = x.shape[x.shape.length - 1];
  const rows = tf.util.sizeFromShape(x.shape) / channels;
  const channelBytes = channels * 4;
  const { offsets: [dataAt, yAt, meanAt, varianceAt, invStdAt, gammaAt, betaAt, partialAt], end } = layOut([
    rows * channelBytes, rows * channelBytes, ...Array<number>(6).fill(channelBytes),
  ]);
  const memory = kernelMemory(k, end);
  copyIn(memory, wasm, x, dataAt);
  copyIn(memory, wasm, gamma, gammaAt);
  copyIn(memory, wasm, beta, betaAt);
  const perChannel = (at: number) => memory.subarray(at / 4, at / 4 + channels);
  const [mean, variance, invStd] = [meanAt, varianceAt, invStdAt].map(perChannel);
  k.channelSums(dataAt, rows, channels, 0, 0, meanAt, partialAt);
  mean.forEach((sum, c) => { mean[c] = sum / rows; });
  k.channelSums(dataAt, rows, channels, meanAt, 1, varianceAt, partialAt);
  variance.forEach((sum, c) => {
    variance[c] = sum / rows;
    invStd[c] = 1 / Math.sqrt(variance[c] + epsilon);
  });
  // normalised overwrites x's copy, which nothing reads after.
  k.normalise(dataAt, rows, channels, meanAt, invStdAt, gammaAt, betaAt, dataAt, yAt);
  return [
    copyOut(k, wasm, x.shape, yAt), copyOut(k, wasm, x.shape, dataAt),
    copyOut(k, wasm, [channels], meanAt), copyOut(k, wasm, [channels], varianceAt), copyOut(k, wasm, [channels], invStdAt),
  ];
}

/** Its gradient: [dx, dGamma, dBeta] from dy and the saved normalised, invStd and gamma, in 2 sweeps. */
function batchNormTrainingGrad(k: TrainingKernels, backend: tf.KernelBackend, dy: tf.TensorInfo, normalised: tf.TensorInfo,
  invStd: tf.TensorInfo, gamma: tf.TensorInfo): tf.TensorInfo[] {
  const wasm = backend as unknown as WasmHeapAccess;
  const channels = dy.shape[dy.shape.length - 1];
  const rows = tf.util.sizeFromShape(dy.shape) / channels;
  const channelBytes = channels * 4;
  const { offsets: [dyAt, normalisedAt, sumDyAt, sumDyNormalisedAt, meanDyAt, meanDyNormalisedAt, scaleAt, partialAt, partial2At], end } =
    layOut([rows * channelBytes, rows * channelBytes, ...Array<number>(7).fill(channelBytes)]);
  const memory = kernelMemory(k, end);
  copyIn(memory, wasm, dy, dyAt);
  copyIn(memory, wasm, normalised, normalisedAt);
  k.gradientSums(dyAt, normalisedAt, rows, channels, sumDyAt, sumDyNormalisedAt, partialAt, partial2At);
  const perChannel = (at: number) => memory.subarray(at / 4, at / 4 + channels);
  const [sumDy, sumDyNormalised, meanDy, meanDyNormalised, scale] =
    [sumDyAt, sumDyNormalisedAt, meanDyAt, meanDyNormalisedAt, scaleAt].map(perChannel);
  const gammaValues = wasm.typedArrayFromHeap(gamma) as Float32Array;
  const invStdValues = wasm.typedArrayFromHeap(invStd) as Float32Array;
  for (let c = 0; c < channels; c++) {
    meanDy[c] = sumDy[c] / rows;
    meanDyNormalised[c] = sumDyNormalised[c] / rows;
    scale[c] = gammaValues[c] * invStdValues[c];
  }
  k.normaliseGradient(dyAt, normalisedAt, rows, channels, meanDyAt, meanDyNormalisedAt, scaleAt, dyAt);
  return [copyOut(k, wasm, dy.shape, dyAt), copyOut(k, wasm, [channels], sumDyNormalisedAt), copyOut(k, wasm, [channels], sumDyAt)];
}

function batchNormConfigs(k: TrainingKernels): tf.KernelConfig[] {
  return [{
    kernelName: BATCH_NORM_TRAINING,
    backendName: WASM,
    kernelFunc: ({ inputs, backend, attrs }) => batchNormTraining(k, backend as tf.KernelBackend,
      inputs.x as tf.TensorInfo, inputs.gamma as tf.TensorInfo, inputs.beta as tf.TensorInfo, (attrs as { epsilon: number }).epsilon),
  }, {
    kernelName: BATCH_NORM_TRAINING_GRAD,
    backendName: WASM,
    kernelFunc: ({ inputs, backend }) => batchNormTrainingGrad(k, backend as tf.KernelBackend,
      inputs.dy as tf.TensorInfo, inputs.normalised as tf.TensorInfo, inputs.invStd as tf.TensorInfo, inputs.gamma as tf.TensorInfo),
  }];
}

const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: WASM,
  kernelFunc: ({ inputs, backend, attrs }) => conv2dFilterGradientOnWasm(
    inputs.x as tf.TensorInfo, inputs.dy as tf.TensorInfo,
    attrs as unknown as tf.Conv2DBackpropFilterAttrs, backend as tf.KernelBackend),
};

function conv2DBackpropInputConfig(wasmOwn: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: tf.Conv2DBackpropInput,
    backendName: WASM,
    // The wasm kernel's setup binds its C++ entry point; it must still run for the fallback.
    setupFunc: wasmOwn.setupFunc,
    kernelFunc: (args) => conv2dInputGradientOnWasm(
      args.inputs.dy as tf.TensorInfo, args.inputs.filter as tf.TensorInfo,
      args.attrs as unknown as tf.Conv2DBackpropInputAttrs, args.backend as tf.KernelBackend,
    ) ?? wasmOwn.kernelFunc(args),
  };
}

/** Rank-3 (or lower) operands whose leading dimensions hold one matrix. */
function isSingleMatrix(info: tf.TensorInfo): boolean {
  return tf.util.sizeFromShape(info.shape.slice(0, -2)) === 1;
}

function batchMatMulConfig(wasmOwn: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: tf.BatchMatMul,
    backendName: WASM,
    setupFunc: wasmOwn.setupFunc,
    kernelFunc: (args) => {
      const a = args.inputs.a as tf.TensorInfo;
      const b = args.inputs.b as tf.TensorInfo;
      const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
      if (!(transposeA || transposeB) || !isSingleMatrix(a) || !isSingleMatrix(b)) {
        return wasmOwn.kernelFunc(args);
      }
      const scope = new WasmKernelScope(args.backend as tf.KernelBackend);
      const swapLastTwo = (info: tf.TensorInfo) => {
        const perm = info.shape.map((_, axis) => axis);
        perm.splice(-2, 2, perm.length - 1, perm.length - 2);
        return scope.run('Transpose', { x: info }, { perm });
      };
      try {
        return wasmOwn.kernelFunc({
          inputs: { a: transposeA ? swapLastTwo(a) : a, b: transposeB ? swapLastTwo(b) : b },
          backend: args.backend,
          attrs: { ...args.attrs, transposeA: false, transposeB: false },
        });
      } finally {
        scope.disposeIntermediates();
      }
    },
  };
}

/**
 * wasm's own Conv2D or FusedConv2D, with the shapes preferredForwardConvFormulation picks sent to
 * our SIMD kernel instead.
 */
function forwardConvConfig(wasmOwn: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: wasmOwn.kernelName,
    backendName: WASM,
    // The wasm kernel's setup binds its C++ entry point, which the other shapes still use.
    setupFunc: wasmOwn.setupFunc,
    kernelFunc: (args) => {
      const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
      if (x === undefined || filter === undefined || preluActivationWeights !== undefined
        || preferredForwardConvFormulation(filter.shape) !== 'simdKernel') {
        return wasmOwn.kernelFunc(args);
      }
      return conv2dForwardOnWasm(x, filter, bias, args.attrs as unknown as ForwardConvAttrs, args.backend as tf.KernelBackend)
        ?? wasmOwn.kernelFunc(args);
    },
  };
}

/**
 * Identity, and Cast to the dtype x already has, as the cpu and webgl backends run them: the
 * result shares x's buffer (reference-counted, as wasm's own Reshape does) where wasm copies it.
 * Tensors are immutable and no wasm kernel writes into its inputs, so a shared buffer is never
 * seen to change. A training step clones every tensor a custom gradient saves (each conv's x and
 * y, each batch norm's normalised x) and casts every gradient through such a clone: ~1100 copies,
 * ~4 % of a tiny-preset step.
 */
function sharingConfig(wasmOwn: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: wasmOwn.kernelName,
    backendName: WASM,
    setupFunc: wasmOwn.setupFunc,
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const dtype = wasmOwn.kernelName === tf.Cast ? (args.attrs as unknown as tf.CastAttrs).dtype : x.dtype;
      if (x.dtype === 'string' || dtype !== x.dtype) {
        return wasmOwn.kernelFunc(args);
      }
      (args.backend as tf.KernelBackend).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  };
}

/** Replaces wasm's own `name` kernel by `wrap` of it. */
function wrapWasmKernel(name: string, wrap: (wasmOwn: tf.KernelConfig) => tf.KernelConfig): void {
  const wasmOwn = tf.getKernel(name, WASM);
  if (wasmOwn === undefined) {
    throw new Error(`@tensorflow/tfjs-backend-wasm registered no ${name} kernel: load it before registering the training kernels`);
  }
  tf.unregisterKernel(name, WASM);
  tf.registerKernel(wrap(wasmOwn));
}

let registered = false;

/**
 * Registers the wasm gradient kernels (the missing one and the faster replacements), the
 * buffer-sharing Identity and Cast and, with wasm SIMD, the fused batch-norm kernels and the
 * forward conv; safe to call more than once. Call it before the wasm backend initialises so the fallback kernel's setup runs.
 */
export function registerWasmGradientKernels(): void {
  if (registered) {
    return;
  }
  wrapWasmKernel(tf.Conv2DBackpropInput, conv2DBackpropInputConfig);
  wrapWasmKernel(tf.BatchMatMul, batchMatMulConfig);
  tf.registerKernel(conv2DBackpropFilterConfig);
  const kernels = loadTrainingKernels();
  if (kernels !== null) {
    batchNormConfigs(kernels).forEach((config) => tf.registerKernel(config));
    wrapWasmKernel(tf.Conv2D, forwardConvConfig);
    wrapWasmKernel(tf.FusedConv2D, forwardConvConfig);
  }
  wrapWasmKernel(tf.Identity, sharingConfig);
  wrapWasmKernel(tf.Cast, sharingConfig);
  registered = true;
}
