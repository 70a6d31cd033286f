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
 */
import type { DecodedImage } from './imageDecode';
import type { Rng } from './rng';

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

/** SimSiam's recipe. Blur is off for small images (the paper's CIFAR setting drops it at 32 px). */
export function defaultAugmentConfig(size: number, mean: Rgb = IMAGENET_MEAN, std: Rgb = IMAGENET_STD): AugmentConfig {
  return {
    size,
    cropScale: [0.2, 1],
    cropRatio: [3 / 4, 4 / 3],
    jitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 },
    jitterP: 0.8,
    grayscaleP: 0.2,
    blurP: size <= 64 ? 0 : 0.5,
    blurSigma: [0.1, 2],
    flipP: 0.5,
    mean: [...mean],
    std: [...std],
  };
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

/** One random view of `image`: writes size*size*3 normalised floats (HWC) to `out` at `offset`. */
export function augmentView(image: DecodedImage, cfg: AugmentConfig, rng: Rng, out: Float32Array, offset: number): void {
  renderView(image, sampleViewParams(image.width, image.height, cfg, rng), cfg, out, offset);
}

export function renderView(image: DecodedImage, params: ViewParams, cfg: AugmentConfig, out: Float32Array, offset: number): void {
  const { size } = cfg;
  checkArguments(image, size, out, offset);
  const { crop } = params;
  // torchvision crops, then resizes: resampling taps stay inside the crop.
  const pixels = resample(image, crop, [crop.left, crop.left + crop.width], [crop.top, crop.top + crop.height], size, params.flip);
  for (const { op, factor } of params.jitter) {
    JITTER_STEPS[op](pixels, factor);
  }
  if (params.grayscale) {
    toGrayscale(pixels);
  }
  if (params.blurSigma !== null) {
    gaussianBlur(pixels, size, params.blurSigma);
  }
  normalise(pixels, cfg.mean, cfg.std, out, offset);
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
  const pixels = resample(image, box, [0, width], [0, height], size, false);
  normalise(pixels, mean, std, out, offset);
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
// Resampling: separable bilinear (triangle) filter widened by the downscale factor, like PIL's
// and torchvision's antialiased resize, so downscaled crops do not alias.

interface AxisTaps {
  first: Int32Array;
  count: Int32Array;
  /** `maxTaps` weights per output pixel, normalised to sum to `gain`. */
  weights: Float64Array;
  maxTaps: number;
}

function axisTaps(boxStart: number, boxLength: number, outSize: number, clampLo: number, clampHi: number, gain: number): AxisTaps {
  const scale = boxLength / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;
  const maxTaps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * maxTaps);
  for (let o = 0; o < outSize; o++) {
    const center = boxStart + (o + 0.5) * scale;
    const lo = Math.max(clampLo, Math.floor(center - support + 0.5));
    const hi = Math.min(clampHi, Math.floor(center + support + 0.5));
    let total = 0;
    for (let i = lo; i < hi; i++) {
      const w = Math.max(0, 1 - Math.abs((i - center + 0.5) / filterScale));
      weights[o * maxTaps + (i - lo)] = w;
      total += w;
    }
    for (let t = 0; t < hi - lo; t++) {
      weights[o * maxTaps + t] *= gain / total;
    }
    first[o] = lo;
    count[o] = hi - lo;
  }
  return { first, count, weights, maxTaps };
}

/** Reused between calls (views are rendered one at a time), so a view costs no allocation or garbage. */
const scratch = {
  rows: new Float32Array(0),
  view: new Float32Array(0),
  blur: new Float32Array(0),
  blurRow: new Float32Array(0),
};

function scratchBuffer(name: keyof typeof scratch, length: number): Float32Array {
  if (scratch[name].length < length) {
    scratch[name] = new Float32Array(length);
  }
  return scratch[name].subarray(0, length);
}

/** Resamples `box` of the image to size x size floats in [0, 1] (HWC), optionally mirrored. */
function resample(image: DecodedImage, box: CropBox, clampX: [number, number], clampY: [number, number], size: number, flip: boolean): Float32Array {
  const { data, width } = image;
  const xTaps = axisTaps(box.left, box.width, size, clampX[0], clampX[1], 1);
  const yTaps = axisTaps(box.top, box.height, size, clampY[0], clampY[1], 1 / 255);
  const firstRow = yTaps.first[0];
  const endRow = yTaps.first[size - 1] + yTaps.count[size - 1];
  const rowStride = size * 3;

  // Horizontal pass over every source row the vertical taps touch, three channels at once.
  const rows = scratchBuffer('rows', (endRow - firstRow) * rowStride);
  const { first: xFirst, count: xCount, weights: xWeights, maxTaps: xMaxTaps } = xTaps;
  for (let y = firstRow; y < endRow; y++) {
    const srcRow = y * width * 3;
    const dstRow = (y - firstRow) * rowStride;
    for (let o = 0; o < size; o++) {
      const start = srcRow + xFirst[o] * 3;
      const n = xCount[o];
      const k = o * xMaxTaps;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let t = 0; t < n; t++) {
        const w = xWeights[k + t];
        const p = start + t * 3;
        r += data[p] * w;
        g += data[p + 1] * w;
        b += data[p + 2] * w;
      }
      const d = dstRow + (flip ? size - 1 - o : o) * 3;
      rows[d] = r;
      rows[d + 1] = g;
      rows[d + 2] = b;
    }
  }

  // Vertical pass as whole-row multiply-adds over sequential memory.
  const view = scratchBuffer('view', size * rowStride);
  const { first: yFirst, count: yCount, weights: yWeights, maxTaps: yMaxTaps } = yTaps;
  const tapRows: number[] = [];
  const tapWeights: number[] = [];
  for (let o = 0; o < size; o++) {
    tapRows.length = 0;
    tapWeights.length = 0;
    for (let t = 0; t < yCount[o]; t++) {
      tapRows.push((yFirst[o] - firstRow + t) * rowStride);
      tapWeights.push(yWeights[o * yMaxTaps + t]);
    }
    weightedRowSum(view, o * rowStride, rowStride, rows, tapRows, tapWeights);
  }
  return view;
}

/**
 * dst[dstStart + i] = sum over taps t of weights[t] * src[srcStarts[t] + i], for i < length.
 * Four taps per sweep, the first sweep assigning rather than adding (no separate clear): a generic
 * per-element tap loop runs at a third of this speed in V8.
 */
function weightedRowSum(dst: Float32Array, dstStart: number, length: number, src: Float32Array, srcStarts: ArrayLike<number>, weights: ArrayLike<number>): void {
  const dstEnd = dstStart + length;
  const taps = weights.length;
  for (let t = 0; t < taps; t += 4) {
    // A last group of fewer than four taps repeats its first source row at weight 0.
    const w0 = weights[t];
    const w1 = t + 1 < taps ? weights[t + 1] : 0;
    const w2 = t + 2 < taps ? weights[t + 2] : 0;
    const w3 = t + 3 < taps ? weights[t + 3] : 0;
    const s0 = srcStarts[t] - dstStart;
    const s1 = (t + 1 < taps ? srcStarts[t + 1] : srcStarts[t]) - dstStart;
    const s2 = (t + 2 < taps ? srcStarts[t + 2] : srcStarts[t]) - dstStart;
    const s3 = (t + 3 < taps ? srcStarts[t + 3] : srcStarts[t]) - dstStart;
    if (t === 0) {
      for (let i = dstStart; i < dstEnd; i++) {
        dst[i] = src[s0 + i] * w0 + src[s1 + i] * w1 + src[s2 + i] * w2 + src[s3 + i] * w3;
      }
    } else {
      for (let i = dstStart; i < dstEnd; i++) {
        dst[i] += src[s0 + i] * w0 + src[s1 + i] * w1 + src[s2 + i] * w2 + src[s3 + i] * w3;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Colour steps, in place on [0, 1] HWC floats (torchvision's tensor formulas).

const LUMA_R = 0.299;
const LUMA_G = 0.587;
const LUMA_B = 0.114;

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

const JITTER_STEPS: Record<JitterOp, (pixels: Float32Array, factor: number) => void> = {
  brightness(pixels, factor) {
    for (let i = 0; i < pixels.length; i++) {
      pixels[i] = clamp01(pixels[i] * factor);
    }
  },
  contrast(pixels, factor) {
    let lumaSum = 0;
    for (let i = 0; i < pixels.length; i += 3) {
      lumaSum += LUMA_R * pixels[i] + LUMA_G * pixels[i + 1] + LUMA_B * pixels[i + 2];
    }
    const meanGrey = (lumaSum * 3) / pixels.length;
    const offset = (1 - factor) * meanGrey;
    for (let i = 0; i < pixels.length; i++) {
      pixels[i] = clamp01(factor * pixels[i] + offset);
    }
  },
  saturation(pixels, factor) {
    for (let i = 0; i < pixels.length; i += 3) {
      const grey = (1 - factor) * (LUMA_R * pixels[i] + LUMA_G * pixels[i + 1] + LUMA_B * pixels[i + 2]);
      pixels[i] = clamp01(factor * pixels[i] + grey);
      pixels[i + 1] = clamp01(factor * pixels[i + 1] + grey);
      pixels[i + 2] = clamp01(factor * pixels[i + 2] + grey);
    }
  },
  hue: shiftHue,
};

/** Rotates hue by `shift` turns in HSV (torchvision's _rgb2hsv / _hsv2rgb). */
function shiftHue(pixels: Float32Array, shift: number): void {
  for (let i = 0; i < pixels.length; i += 3) {
    const r = pixels[i];
    const g = pixels[i + 1];
    const b = pixels[i + 2];
    const max = Math.max(r, g, b);
    const min = Math.min(r, g, b);
    const chroma = max - min;
    if (chroma === 0) {
      continue; // grey has no hue to rotate
    }
    let hue: number;
    if (max === r) {
      hue = (g - b) / chroma;
    } else if (max === g) {
      hue = 2 + (b - r) / chroma;
    } else {
      hue = 4 + (r - g) / chroma;
    }
    hue = hue / 6 + shift;
    hue -= Math.floor(hue);
    const saturation = chroma / max;
    const sector = hue * 6;
    const whole = Math.floor(sector);
    const frac = sector - whole;
    const p = clamp01(max * (1 - saturation));
    const q = clamp01(max * (1 - saturation * frac));
    const t = clamp01(max * (1 - saturation * (1 - frac)));
    const sextant = whole % 6;
    pixels[i] = sextant === 0 || sextant === 5 ? max : sextant === 1 ? q : sextant === 4 ? t : p;
    pixels[i + 1] = sextant === 1 || sextant === 2 ? max : sextant === 0 ? t : sextant === 3 ? q : p;
    pixels[i + 2] = sextant === 3 || sextant === 4 ? max : sextant === 2 ? t : sextant === 5 ? q : p;
  }
}

/** ITU-R 601-2 luma, replicated to all three channels. */
function toGrayscale(pixels: Float32Array): void {
  for (let i = 0; i < pixels.length; i += 3) {
    const luma = LUMA_R * pixels[i] + LUMA_G * pixels[i + 1] + LUMA_B * pixels[i + 2];
    pixels[i] = luma;
    pixels[i + 1] = luma;
    pixels[i + 2] = luma;
  }
}

/** Separable Gaussian blur, kernel radius ceil(3 sigma), reflect padding (torchvision's GaussianBlur). */
function gaussianBlur(pixels: Float32Array, size: number, sigma: number): void {
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const taps = 2 * radius + 1;
  const kernel = new Array<number>(taps);
  let total = 0;
  for (let t = 0; t < taps; t++) {
    kernel[t] = Math.exp(-((t - radius) ** 2) / (2 * sigma * sigma));
    total += kernel[t];
  }
  for (let t = 0; t < taps; t++) {
    kernel[t] /= total;
  }
  const rowStride = size * 3;
  const padded = scratchBuffer('blurRow', (size + 2 * radius) * 3);
  const blurred = scratchBuffer('blur', pixels.length);

  // Horizontal: each row copied with reflected margins, then the taps are shifted copies of it.
  const shifts = Array.from({ length: taps }, (_, t) => t * 3);
  const reflected = Int32Array.from({ length: size + 2 * radius }, (_, i) => reflectIndex(i - radius, size) * 3);
  for (let y = 0; y < size; y++) {
    const row = y * rowStride;
    for (let i = 0; i < reflected.length; i++) {
      const src = row + reflected[i];
      padded[i * 3] = pixels[src];
      padded[i * 3 + 1] = pixels[src + 1];
      padded[i * 3 + 2] = pixels[src + 2];
    }
    weightedRowSum(blurred, row, rowStride, padded, shifts, kernel);
  }
  // Vertical: whole rows at reflected row indices.
  const tapRows = new Array<number>(taps);
  for (let y = 0; y < size; y++) {
    for (let t = 0; t < taps; t++) {
      tapRows[t] = reflectIndex(y + t - radius, size) * rowStride;
    }
    weightedRowSum(pixels, y * rowStride, rowStride, blurred, tapRows, kernel);
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

function normalise(pixels: Float32Array, mean: Rgb, std: Rgb, out: Float32Array, offset: number): void {
  const [m0, m1, m2] = mean;
  const s0 = 1 / std[0];
  const s1 = 1 / std[1];
  const s2 = 1 / std[2];
  for (let i = 0; i < pixels.length; i += 3) {
    out[offset + i] = (pixels[i] - m0) * s0;
    out[offset + i + 1] = (pixels[i + 1] - m1) * s1;
    out[offset + i + 2] = (pixels[i + 2] - m2) * s2;
  }
}
