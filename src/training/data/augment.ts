/**
 * SimSiam's two-view augmentation (Chen & He 2021, following MoCo v2), in plain JS on typed arrays
 * so that it runs in a worker thread while the main thread trains.
 *
 * Per view, in torchvision's order: RandomResizedCrop -> ColorJitter (p) -> RandomGrayscale ->
 * GaussianBlur (p) -> HorizontalFlip -> Normalize. Pixels are floats in [0, 1] between the steps
 * and clamped after each colour step, as torchvision does for tensors.
 *
 * All random choices for a view are drawn first (`sampleViewParams`) and then applied
 * (`renderView`): the parameters are testable on their own, and the flip is folded into the
 * resampling (every later step is left-right symmetric, so flipping first changes nothing).
 *
 * A view is built in the memory of a small WebAssembly module (./kernels/augmentKernels.ts), which
 * runs the loops that dominate at large sizes (the resampling taps, the filter sweeps of the
 * resampling and the blur, brightness and contrast) with SIMD; the other steps run here on the
 * same memory.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { DecodedImage } from './imageDecode';
import type { Rng } from './rng';
import { DEFAULT_AUGMENTATION, defaultBlurP, type AugmentationSettings } from '../config';

export type Rgb = [number, number, number];

export interface ColorJitterStrength {
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
}

export interface AugmentConfig {
  /** Output side in pixels; views are size x size. */
  size: number;
  /** Crop area as a fraction of the image area (SimSiam: 0.2 to 1). */
  cropScale: [number, number];
  /** Crop aspect ratio w/h (3/4 to 4/3). */
  cropRatio: [number, number];
  jitter: ColorJitterStrength;
  jitterP: number;
  grayscaleP: number;
  blurP: number;
  blurSigma: [number, number];
  flipP: number;
  mean: Rgb;
  std: Rgb;
}

export const IMAGENET_MEAN: Rgb = [0.485, 0.456, 0.406];
export const IMAGENET_STD: Rgb = [0.229, 0.224, 0.225];

/** A view's augmentation as a run's config sets it (the config's fields are docs/RECIPE.md's knobs). */
export function augmentConfigFor(settings: AugmentationSettings, mean: Rgb = IMAGENET_MEAN, std: Rgb = IMAGENET_STD): AugmentConfig {
  const s = settings.colorJitter;
  return {
    size: settings.imageSize,
    cropScale: [settings.cropScaleMin, settings.cropScaleMax],
    cropRatio: [3 / 4, 4 / 3],
    jitter: { brightness: 0.4 * s, contrast: 0.4 * s, saturation: 0.4 * s, hue: 0.1 * s },
    jitterP: settings.colorJitterP,
    grayscaleP: settings.grayscaleP,
    blurP: settings.blurP,
    blurSigma: [0.1, 2],
    flipP: settings.flipP,
    mean: [...mean],
    std: [...std],
  };
}

/** SimSiam's recipe at this size. Blur is off for small images (the paper's CIFAR setting drops it at 32 px). */
export function defaultAugmentConfig(size: number, mean: Rgb = IMAGENET_MEAN, std: Rgb = IMAGENET_STD): AugmentConfig {
  return augmentConfigFor({ imageSize: size, ...DEFAULT_AUGMENTATION, blurP: defaultBlurP(size) }, mean, std);
}

/**
 * The shorter side to decode images at for this config. The smallest crop (scale s, ratio near 1)
 * spans about sqrt(s) of the shorter side, so a shorter side of size/sqrt(s) keeps even that crop
 * at full output resolution; more pixels would only be averaged away.
 */
export function decodeShortSideFor(cfg: AugmentConfig): number {
  return Math.ceil(cfg.size / Math.sqrt(cfg.cropScale[0]));
}

/** A crop rectangle in source pixels (may be fractional for the eval view). */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

export type JitterOp = 'brightness' | 'contrast' | 'saturation' | 'hue';

export interface ViewParams {
  crop: CropBox;
  /** Colour-jitter steps in the order applied, with their factors; empty when jitter was not drawn. */
  jitter: { op: JitterOp; factor: number }[];
  grayscale: boolean;
  /** Gaussian blur sigma in output pixels, or null for no blur. */
  blurSigma: number | null;
  flip: boolean;
}

/** torchvision's RandomResizedCrop.get_params: 10 tries at a random area and ratio, then a centre crop. */
export function randomResizedCropParams(width: number, height: number, scale: [number, number], ratio: [number, number], rng: Rng): CropBox {
  const area = width * height;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logRatio[0], logRatio[1]));
    const w = Math.round(Math.sqrt(targetArea * aspect));
    const h = Math.round(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return { top: rng.int(height - h + 1), left: rng.int(width - w + 1), height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(...ratio)) {
    h = Math.round(w / Math.min(...ratio));
  } else if (inRatio > Math.max(...ratio)) {
    w = Math.round(h * Math.max(...ratio));
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

export function sampleViewParams(width: number, height: number, cfg: AugmentConfig, rng: Rng): ViewParams {
  const crop = randomResizedCropParams(width, height, cfg.cropScale, cfg.cropRatio, rng);
  const jitter: ViewParams['jitter'] = [];
  if (rng.next() < cfg.jitterP) {
    // torchvision draws a random order, then every factor.
    const order = rng.shuffle<JitterOp>(['brightness', 'contrast', 'saturation', 'hue']);
    const factors: Record<JitterOp, number> = {
      brightness: rng.uniform(Math.max(0, 1 - cfg.jitter.brightness), 1 + cfg.jitter.brightness),
      contrast: rng.uniform(Math.max(0, 1 - cfg.jitter.contrast), 1 + cfg.jitter.contrast),
      saturation: rng.uniform(Math.max(0, 1 - cfg.jitter.saturation), 1 + cfg.jitter.saturation),
      hue: rng.uniform(-cfg.jitter.hue, cfg.jitter.hue),
    };
    for (const op of order) {
      if (cfg.jitter[op] > 0) {
        jitter.push({ op, factor: factors[op] });
      }
    }
  }
  const grayscale = rng.next() < cfg.grayscaleP;
  const blurSigma = rng.next() < cfg.blurP ? rng.uniform(cfg.blurSigma[0], cfg.blurSigma[1]) : null;
  const flip = rng.next() < cfg.flipP;
  return { crop, jitter, grayscale, blurSigma, flip };
}

/**
 * One random view of `image`: writes size*size*3 normalised floats (HWC) to `out` at `offset`.
 * The image's pixels must not change afterwards (see loadedImage).
 */
export function augmentView(image: DecodedImage, cfg: AugmentConfig, rng: Rng, out: Float32Array, offset: number): void {
  renderView(image, sampleViewParams(image.width, image.height, cfg, rng), cfg, out, offset);
}

export function renderView(image: DecodedImage, params: ViewParams, cfg: AugmentConfig, out: Float32Array, offset: number): void {
  const { size } = cfg;
  checkArguments(image, size, out, offset);
  const { crop } = params;
  // The kernels read without bounds checks: a crop past the image would read other buffers.
  if (!(crop.width > 0 && crop.height > 0 && crop.left >= 0 && crop.top >= 0 &&
    crop.left + crop.width <= image.width && crop.top + crop.height <= image.height)) {
    throw new Error(`crop ${JSON.stringify(crop)} is not inside the ${image.width}x${image.height} image`);
  }
  const blur = params.blurSigma === null ? null : gaussianKernel(params.blurSigma);
  // torchvision crops, then resizes: resampling taps stay inside the crop.
  const view = resample(image, crop, [crop.left, crop.left + crop.width], [crop.top, crop.top + crop.height], size, params.flip, blur);
  for (const { op, factor } of params.jitter) {
    JITTER_STEPS[op](view, factor);
  }
  if (params.grayscale) {
    view.kernels.grayscale(view.pixelsAt, size * size);
  }
  if (blur !== null) {
    gaussianBlur(view, blur);
  }
  normalise(view, cfg.mean, cfg.std, out, offset);
}

/**
 * The deterministic evaluation view, as torchvision's Resize(size) + CenterCrop(size): the shorter
 * side is scaled to `size`, the longer to floor(size * long / short), and the centre square is cut
 * at an offset rounded in resized pixels (so an image decoded at exactly `size` is not resampled).
 */
export function centerView(image: DecodedImage, size: number, mean: Rgb, std: Rgb, out: Float32Array, offset: number): void {
  checkArguments(image, size, out, offset);
  const { width, height } = image;
  const short = Math.min(width, height);
  const resizedWidth = width === short ? size : Math.floor((size * width) / short);
  const resizedHeight = height === short ? size : Math.floor((size * height) / short);
  const xScale = width / resizedWidth;
  const yScale = height / resizedHeight;
  const box = {
    left: roundHalfToEven((resizedWidth - size) / 2) * xScale,
    top: roundHalfToEven((resizedHeight - size) / 2) * yScale,
    width: size * xScale,
    height: size * yScale,
  };
  // Resize-then-crop: taps may reach outside the square, up to the image border.
  const view = resample(image, box, [0, width], [0, height], size, false, null);
  normalise(view, mean, std, out, offset);
}

/** Python's round(), which torchvision's CenterCrop uses. */
function roundHalfToEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  return fraction > 0.5 || (fraction === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
}

function checkArguments(image: DecodedImage, size: number, out: Float32Array, offset: number): void {
  if (!(Number.isInteger(size) && size > 0)) {
    throw new Error(`view size must be a positive integer, got ${size}`);
  }
  if (image.width <= 0 || image.height <= 0 || image.data.length !== image.width * image.height * 3) {
    throw new Error(`image buffer does not match ${image.width}x${image.height} RGB`);
  }
  if (!(Number.isInteger(offset) && offset >= 0 && offset + size * size * 3 <= out.length)) {
    throw new Error(`output buffer of ${out.length} floats cannot hold a ${size}x${size}x3 view at offset ${offset}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The kernels' memory: one view at a time (a thread renders views one after another), laid out
// afresh for each, with the source image kept while consecutive views come from the same one.

/** The compiled kernels, beside this module in out/ and in the extension's dist/. */
export const KERNELS_FILE = 'augmentKernels.wasm';

interface Kernels {
  memory: WebAssembly.Memory;
  resampleRows(image: number, width: number, firstRow: number, endRow: number, size: number,
    first: number, count: number, weights: number, maxTaps: number, flip: number, rows: number): void;
  weightedRowSum(dst: number, length: number, src: number, starts: number, weights: number, taps: number): void;
  scaleClamped(pixels: number, length: number, factor: number, offset: number): void;
  lumaSum(pixels: number, count: number): number;
  saturate(pixels: number, count: number, factor: number): void;
  grayscale(pixels: number, count: number): void;
  shiftHue(pixels: number, count: number, shift: number): void;
  normalise(pixels: number, count: number, out: number, mean0: number, mean1: number, mean2: number,
    inverseStd0: number, inverseStd1: number, inverseStd2: number): void;
  gatherPixels(dst: number, src: number, indices: number, count: number): void;
}

let kernels: Kernels | undefined;

function loadKernels(): Kernels {
  if (kernels === undefined) {
    const file = path.join(__dirname, KERNELS_FILE);
    if (!fs.existsSync(file)) {
      throw new Error(`the augmentation kernels ${file} are missing: run npm run compile (or npm run build for dist/)`);
    }
    kernels = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(file)), {}).exports as unknown as Kernels;
  }
  return kernels;
}

/**
 * The image whose pixels sit at offset 0 of the kernels' memory, so that its second view does not
 * copy them again. Decoded images are never modified; one that was would keep its old pixels here.
 */
let loadedImage: Uint8Array | null = null;

/** A view being rendered: where its buffers are in the kernels' memory (byte offsets). */
interface ViewBuffers {
  kernels: Kernels;
  size: number;
  /** size*size*3 floats, HWC, in [0, 1]. */
  pixelsAt: number;
  /** The normalised view, copied out at the end. */
  outAt: number;
  blurAt: number;
  blurRowAt: number;
  reflectedAt: number;
  startsAt: number;
  weightsAt: number;
}

/** Byte offsets of `sizes` consecutive 16-byte-aligned regions from 0, and their end. */
function layout(sizes: number[]): { offsets: number[]; end: number } {
  const offsets: number[] = [];
  let end = 0;
  for (const bytes of sizes) {
    offsets.push(end);
    end += Math.ceil(bytes / 16) * 16;
  }
  return { offsets, end };
}

/** Grows the kernels' memory to at least `bytes`; any typed array over it must be made after. */
function ensureMemory(k: Kernels, bytes: number): void {
  const missing = bytes - k.memory.buffer.byteLength;
  if (missing > 0) {
    k.memory.grow(Math.ceil(missing / 65536));
  }
}

// ---------------------------------------------------------------------------------------------
// Resampling: separable bilinear (triangle) filter widened by the downscale factor, like PIL's
// and torchvision's antialiased resize, so downscaled crops do not alias.

interface AxisTaps {
  first: Int32Array;
  count: Int32Array;
  /** `maxTaps` weights per output pixel, normalised to sum to `gain`. */
  weights: Float32Array;
  maxTaps: number;
}

function axisTaps(boxStart: number, boxLength: number, outSize: number, clampLo: number, clampHi: number, gain: number): AxisTaps {
  const scale = boxLength / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;
  const maxTaps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * maxTaps);
  const raw = new Float64Array(maxTaps);
  for (let o = 0; o < outSize; o++) {
    const center = boxStart + (o + 0.5) * scale;
    const lo = Math.max(clampLo, Math.floor(center - support + 0.5));
    const hi = Math.min(clampHi, Math.floor(center + support + 0.5));
    let total = 0;
    for (let i = lo; i < hi; i++) {
      raw[i - lo] = Math.max(0, 1 - Math.abs((i - center + 0.5) / filterScale));
      total += raw[i - lo];
    }
    for (let t = 0; t < hi - lo; t++) {
      weights[o * maxTaps + t] = (raw[t] * gain) / total;
    }
    first[o] = lo;
    count[o] = hi - lo;
  }
  return { first, count, weights, maxTaps };
}

/**
 * Resamples `box` of the image to size x size floats in [0, 1] (HWC), optionally mirrored, in
 * the kernels' memory, which it lays out for the whole view: with room for the blur when given.
 */
function resample(image: DecodedImage, box: CropBox, clampX: [number, number], clampY: [number, number], size: number,
  flip: boolean, blur: GaussianKernel | null): ViewBuffers {
  const k = loadKernels();
  const xTaps = axisTaps(box.left, box.width, size, clampX[0], clampX[1], 1);
  const yTaps = axisTaps(box.top, box.height, size, clampY[0], clampY[1], 1 / 255);
  const firstRow = yTaps.first[0];
  const endRow = yTaps.first[size - 1] + yTaps.count[size - 1];
  const rowStride = size * 3;
  const maxTaps = Math.max(yTaps.maxTaps, blur?.weights.length ?? 0);
  const viewBytes = size * rowStride * 4;
  const paddedWidth = blur ? size + 2 * blur.radius : 0;
  const { offsets, end } = layout([
    image.data.length, size * 4, size * 4, xTaps.weights.length * 4, (endRow - firstRow) * rowStride * 4,
    viewBytes, viewBytes, blur ? viewBytes : 0, paddedWidth * 12, paddedWidth * 4, maxTaps * 4, maxTaps * 4,
  ]);
  const [imageAt, firstAt, countAt, xWeightsAt, rowsAt, pixelsAt, outAt, blurAt, blurRowAt, reflectedAt, startsAt, weightsAt] = offsets;
  ensureMemory(k, end);
  const memory = k.memory.buffer;
  if (loadedImage !== image.data) {
    new Uint8Array(memory, imageAt, image.data.length).set(image.data);
    loadedImage = image.data;
  }
  new Int32Array(memory, firstAt, size).set(xTaps.first);
  new Int32Array(memory, countAt, size).set(xTaps.count);
  new Float32Array(memory, xWeightsAt, xTaps.weights.length).set(xTaps.weights);
  // Horizontal pass over every source row the vertical taps touch, three channels at once.
  k.resampleRows(imageAt, image.width, firstRow, endRow, size, firstAt, countAt, xWeightsAt, xTaps.maxTaps, flip ? 1 : 0, rowsAt);

  // Vertical pass: each output row a weighted sum of whole source rows.
  const starts = new Int32Array(memory, startsAt, maxTaps);
  const weights = new Float32Array(memory, weightsAt, maxTaps);
  for (let o = 0; o < size; o++) {
    const taps = yTaps.count[o];
    for (let t = 0; t < taps; t++) {
      starts[t] = (yTaps.first[o] - firstRow + t) * rowStride;
      weights[t] = yTaps.weights[o * yTaps.maxTaps + t];
    }
    k.weightedRowSum(pixelsAt + o * rowStride * 4, rowStride, rowsAt, startsAt, weightsAt, taps);
  }
  return { kernels: k, size, pixelsAt, outAt, blurAt, blurRowAt, reflectedAt, startsAt, weightsAt };
}

// ---------------------------------------------------------------------------------------------
// Colour steps, in place on the view's [0, 1] HWC floats: torchvision's tensor formulas, each
// clamped to [0, 1] (the kernels hold the per-pixel loops).

const JITTER_STEPS: Record<JitterOp, (view: ViewBuffers, factor: number) => void> = {
  brightness: ({ kernels: k, pixelsAt, size }, factor) => k.scaleClamped(pixelsAt, size * size * 3, factor, 0),
  contrast({ kernels: k, pixelsAt, size }, factor) {
    const meanGrey = k.lumaSum(pixelsAt, size * size) / (size * size);
    k.scaleClamped(pixelsAt, size * size * 3, factor, (1 - factor) * meanGrey);
  },
  saturation: ({ kernels: k, pixelsAt, size }, factor) => k.saturate(pixelsAt, size * size, factor),
  hue: ({ kernels: k, pixelsAt, size }, shift) => k.shiftHue(pixelsAt, size * size, shift),
};

interface GaussianKernel {
  radius: number;
  /** 2 * radius + 1 taps, summing to 1. */
  weights: Float32Array;
}

/** torchvision's GaussianBlur kernel: radius ceil(3 sigma). */
function gaussianKernel(sigma: number): GaussianKernel {
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const raw = Array.from({ length: 2 * radius + 1 }, (_, t) => Math.exp(-((t - radius) ** 2) / (2 * sigma * sigma)));
  const total = raw.reduce((sum, w) => sum + w, 0);
  return { radius, weights: Float32Array.from(raw, (w) => w / total) };
}

/** Separable Gaussian blur with reflect padding (torchvision's GaussianBlur), in place. */
function gaussianBlur(view: ViewBuffers, kernel: GaussianKernel): void {
  const { kernels: k, size, pixelsAt, blurAt, blurRowAt, reflectedAt, startsAt, weightsAt } = view;
  const { radius } = kernel;
  const taps = kernel.weights.length;
  const rowStride = size * 3;
  const memory = k.memory.buffer;
  const starts = new Int32Array(memory, startsAt, taps);
  new Float32Array(memory, weightsAt, taps).set(kernel.weights);

  // Horizontal: each row copied with reflected margins, then the taps are shifted copies of it.
  starts.set(Array.from({ length: taps }, (_, t) => t * 3));
  const paddedWidth = size + 2 * radius;
  new Int32Array(memory, reflectedAt, paddedWidth).set(Array.from({ length: paddedWidth }, (_, i) => reflectIndex(i - radius, size)));
  for (let y = 0; y < size; y++) {
    const row = y * rowStride;
    k.gatherPixels(blurRowAt, pixelsAt + row * 4, reflectedAt, paddedWidth);
    k.weightedRowSum(blurAt + row * 4, rowStride, blurRowAt, startsAt, weightsAt, taps);
  }
  // Vertical: whole rows at reflected row indices.
  for (let y = 0; y < size; y++) {
    for (let t = 0; t < taps; t++) {
      starts[t] = reflectIndex(y + t - radius, size) * rowStride;
    }
    k.weightedRowSum(pixelsAt + y * rowStride * 4, rowStride, blurAt, startsAt, weightsAt, taps);
  }
}

/** Mirror index without repeating the edge pixel (numpy/torch 'reflect'), valid for any offset. */
function reflectIndex(i: number, n: number): number {
  if (n === 1) {
    return 0;
  }
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}

function normalise({ kernels: k, size, pixelsAt, outAt }: ViewBuffers, mean: Rgb, std: Rgb, out: Float32Array, offset: number): void {
  const floats = size * size * 3;
  k.normalise(pixelsAt, size * size, outAt, mean[0], mean[1], mean[2], 1 / std[0], 1 / std[1], 1 / std[2]);
  out.set(new Float32Array(k.memory.buffer, outAt, floats), offset);
}
