/**
 * Gradient kernels for @tensorflow/tfjs-backend-wasm 4.22, so that a ResNet with dense heads trains
 * on the wasm backend at a usable speed:
 * - Conv2DBackpropFilter (the weight gradient of conv2d) is missing from wasm; every other
 *   gradient that conv + batch norm + relu + max-pool + dense training needs is there.
 * - Conv2DBackpropInput exists but is a plain loop, 8-25x slower than the forward conv;
 *   it is replaced by a formulation that runs on XNNPACK, keeping the original kernel for the
 *   cases that formulation does not cover (NCHW, paddings wider than the filter).
 * - BatchMatMul reaches XNNPACK only without transposes, yet matMul's gradients are transposed
 *   products (10-60x slower on the fallback loop); the wrapper transposes the operand first.
 *
 * The kernels are composed from the wasm backend's own kernel functions, called directly with the
 * backend, rather than from tf ops: inside a kernel the engine would still track every op's tensor
 * and the result must come back as a bare TensorInfo, so direct kernel calls with explicit
 * disposal are the simpler contract.
 */
import * as tf from '@tensorflow/tfjs';

const WASM = 'wasm';
/** Channels of an image input (RGBA at most): the first conv's x. */
const MAX_IMAGE_CHANNELS = 4;

/**
 * Two exact ways of computing dW[kh,kw,ci,co] = sum_{b,oh,ow} xpad[b, oh*s+kh, ow*s+kw, ci] * dy[b,oh,ow,co]:
 * - 'batchContractedConv': a conv2d over x laid out [ci, H, W, b] with dy laid out [oh, ow, b, co]
 *   as the filter (the batch becomes the contracted channel), dilated by the forward stride;
 *   it runs on XNNPACK's convolution.
 * - 'im2colMatMul': the strided patches of x as a [kh*kw*ci, b*oh*ow] matrix times dy as
 *   [b*oh*ow, co]; it runs on XNNPACK's fully-connected operator.
 */
export type FilterGradFormulation = 'batchContractedConv' | 'im2colMatMul';

/**
 * The formulation the registered kernel uses, from bench/convGrad.ts figures. At stride 1 the
 * patch matrix is cheap to build, and when it is small (1x1 filters, RGB input) the matrix
 * product beats the conv, which must first repack all of dy as a filter: 2-4x for 1x1, ~1.5x
 * for the 3-channel stem. Elsewhere the conv wins by 2-30x (strided patch extraction is slow).
 */
export function preferredFilterGradFormulation(
  filterShape: readonly [number, number, number, number], strides: [number, number] | number,
): FilterGradFormulation {
  const [strideHeight, strideWidth] = typeof strides === 'number' ? [strides, strides] : strides;
  const [filterHeight, filterWidth, inChannels] = filterShape;
  const smallPatchMatrix = (filterHeight === 1 && filterWidth === 1) || inChannels <= MAX_IMAGE_CHANNELS;
  return strideHeight === 1 && strideWidth === 1 && smallPatchMatrix ? 'im2colMatMul' : 'batchContractedConv';
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
    const compute = formulation === 'batchContractedConv' ? batchContractedConv : im2colMatMul;
    return scope.keep(compute(scope, x, dy, geometry));
  } finally {
    scope.disposeIntermediates();
  }
}

/**
 * dx of conv2d(x, W) for upstream gradient dy, as a stride-1 conv of dy (zero-interleaved by the
 * forward stride) with W rotated by 180° and its channels swapped. Returns undefined for the
 * configurations that formulation cannot express, which then go to wasm's own kernel.
 */
export function conv2dInputGradientOnWasm(
  dy: tf.TensorInfo, filter: tf.TensorInfo, attrs: tf.Conv2DBackpropInputAttrs, backend: tf.KernelBackend,
): tf.TensorInfo | undefined {
  if (attrs.dataFormat !== 'NHWC') {
    return undefined;
  }
  const conv = tf.backend_util.computeConv2DInfo(
    attrs.inputShape, filter.shape as [number, number, number, number], attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const { batchSize, inHeight, inWidth, outHeight, outWidth, outChannels, inChannels, filterHeight, filterWidth, strideHeight, strideWidth } = conv;
  // Padding of the interleaved dy so that a 'valid' stride-1 conv yields exactly [H, W]; the
  // interleaving leaves stride-1 zeros after the last dy row, so the trailing pad may be negative.
  const padTop = filterHeight - 1 - conv.padInfo.top;
  const padLeft = filterWidth - 1 - conv.padInfo.left;
  const padBottom = inHeight - outHeight * strideHeight + conv.padInfo.top;
  const padRight = inWidth - outWidth * strideWidth + conv.padInfo.left;
  if (padTop < 0 || padLeft < 0 || padBottom <= -strideHeight || padRight <= -strideWidth) {
    return undefined;
  }
  const scope = new WasmKernelScope(backend);
  try {
    let spread = dy;
    if (strideHeight > 1 || strideWidth > 1) {
      const split = scope.run('Reshape', { x: dy }, { shape: [batchSize, outHeight, 1, outWidth, 1, outChannels] });
      const interleaved = scope.run('PadV2', { x: split }, {
        paddings: [[0, 0], [0, 0], [0, strideHeight - 1], [0, 0], [0, strideWidth - 1], [0, 0]],
        constantValue: 0,
      });
      spread = scope.run('Reshape', { x: interleaved }, { shape: [batchSize, outHeight * strideHeight, outWidth * strideWidth, outChannels] });
    }
    if (padBottom < 0 || padRight < 0) {
      spread = scope.run('Slice', { x: spread }, {
        begin: [0, 0, 0, 0],
        size: [batchSize, spread.shape[1] + Math.min(0, padBottom), spread.shape[2] + Math.min(0, padRight), outChannels],
      });
    }
    const rotated = scope.run('Reverse', { x: filter }, { dims: [0, 1] });
    const swapped = scope.run('Transpose', { x: rotated }, { perm: [0, 1, 3, 2] });          // [kh, kw, co, ci]
    const dx = scope.run('Conv2D', { x: spread, filter: swapped }, {
      strides: [1, 1],
      pad: [[0, 0], [padTop, Math.max(0, padBottom)], [padLeft, Math.max(0, padRight)], [0, 0]],
      dilations: [1, 1],
      dataFormat: 'NHWC',
    });
    if (!tf.util.arraysEqual(dx.shape, [batchSize, inHeight, inWidth, inChannels])) {
      throw new Error(`wasm Conv2DBackpropInput produced [${dx.shape}] instead of [${attrs.inputShape}]`);
    }
    return scope.keep(dx);
  } finally {
    scope.disposeIntermediates();
  }
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

let registered = false;

/**
 * Registers the wasm gradient kernels (the missing one and the faster replacements); safe to
 * call more than once. Call it before the wasm backend initialises so the fallback kernel's setup runs.
 */
export function registerWasmGradientKernels(): void {
  if (registered) {
    return;
  }
  const wasmOwnInputGradient = tf.getKernel(tf.Conv2DBackpropInput, WASM);
  const wasmOwnBatchMatMul = tf.getKernel(tf.BatchMatMul, WASM);
  if (wasmOwnInputGradient === undefined || wasmOwnBatchMatMul === undefined) {
    throw new Error('@tensorflow/tfjs-backend-wasm must be loaded before registering its gradient kernels');
  }
  tf.unregisterKernel(tf.Conv2DBackpropInput, WASM);
  tf.registerKernel(conv2DBackpropInputConfig(wasmOwnInputGradient));
  tf.unregisterKernel(tf.BatchMatMul, WASM);
  tf.registerKernel(batchMatMulConfig(wasmOwnBatchMatMul));
  tf.registerKernel(conv2DBackpropFilterConfig);
  registered = true;
}
