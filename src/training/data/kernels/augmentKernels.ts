// The hot loops of the two-view augmentation (../augment.ts), compiled to WebAssembly with 128-bit
// SIMD by AssemblyScript (scripts/buildKernels.mjs). In V8, plain JS runs these loops at about one
// element per nanosecond with bounds checks on every typed-array access; here the row sweeps run
// four floats per instruction (5x faster) and the tap loop without checks (2x).
//
// AssemblyScript, not TypeScript: tsconfig.json leaves this folder out. Every pointer is a byte
// offset into this module's memory, which augment.ts lays out and grows; nothing here allocates.

/**
 * Horizontal resampling pass over source rows [firstRow, endRow) of a packed RGB u8 image: output
 * pixel o of each row (mirrored when `flip`) = Σ_t weights[o·maxTaps + t] · pixel(first[o] + t),
 * for t < count[o]. Writes (endRow − firstRow) rows of size·3 floats to `rows`.
 */
export function resampleRows(image: usize, width: i32, firstRow: i32, endRow: i32, size: i32,
  first: usize, count: usize, weights: usize, maxTaps: i32, flip: bool, rows: usize): void {
  const rowBytes = <usize>size * 12;
  for (let y = firstRow; y < endRow; y++) {
    const sourceRow = image + <usize>y * <usize>width * 3;
    const outRow = rows + <usize>(y - firstRow) * rowBytes;
    for (let o = 0; o < size; o++) {
      let pixel = sourceRow + <usize>load<i32>(first + (<usize>o << 2)) * 3;
      let weight = weights + <usize>o * <usize>maxTaps * 4;
      const taps = load<i32>(count + (<usize>o << 2));
      let r: f32 = 0;
      let g: f32 = 0;
      let b: f32 = 0;
      for (let t = 0; t < taps; t++) {
        const w = load<f32>(weight);
        r += <f32>load<u8>(pixel) * w;
        g += <f32>load<u8>(pixel, 1) * w;
        b += <f32>load<u8>(pixel, 2) * w;
        pixel += 3;
        weight += 4;
      }
      const out = outRow + <usize>(flip ? size - 1 - o : o) * 12;
      store<f32>(out, r);
      store<f32>(out, g, 4);
      store<f32>(out, b, 8);
    }
  }
}

/** dst[i] = Σ_t weights[t] · src[starts[t] + i] for i < length; floats, `starts` counted in floats. */
export function weightedRowSum(dst: usize, length: i32, src: usize, starts: usize, weights: usize, taps: i32): void {
  const vectorEnd = length & ~3;
  for (let t = 0; t < taps; t++) {
    const w = load<f32>(weights + (<usize>t << 2));
    const wv = f32x4.splat(w);
    const from = src + (<usize>load<i32>(starts + (<usize>t << 2)) << 2);
    if (t == 0) {
      for (let i = 0; i < vectorEnd; i += 4) {
        const offset = <usize>i << 2;
        v128.store(dst + offset, f32x4.mul(v128.load(from + offset), wv));
      }
      for (let i = vectorEnd; i < length; i++) {
        const offset = <usize>i << 2;
        store<f32>(dst + offset, load<f32>(from + offset) * w);
      }
    } else {
      for (let i = 0; i < vectorEnd; i += 4) {
        const offset = <usize>i << 2;
        v128.store(dst + offset, f32x4.add(v128.load(dst + offset), f32x4.mul(v128.load(from + offset), wv)));
      }
      for (let i = vectorEnd; i < length; i++) {
        const offset = <usize>i << 2;
        store<f32>(dst + offset, load<f32>(dst + offset) + load<f32>(from + offset) * w);
      }
    }
  }
}

/** v = clamp(v · factor + offset, 0, 1) over `length` floats: brightness (offset 0) and contrast. */
export function scaleClamped(pixels: usize, length: i32, factor: f32, offset: f32): void {
  const factors = f32x4.splat(factor);
  const offsets = f32x4.splat(offset);
  const zeros = f32x4.splat(0);
  const ones = f32x4.splat(1);
  const vectorEnd = length & ~3;
  for (let i = 0; i < vectorEnd; i += 4) {
    const at = pixels + (<usize>i << 2);
    v128.store(at, f32x4.min(ones, f32x4.max(zeros, f32x4.add(f32x4.mul(v128.load(at), factors), offsets))));
  }
  for (let i = vectorEnd; i < length; i++) {
    const at = pixels + (<usize>i << 2);
    store<f32>(at, min<f32>(1, max<f32>(0, load<f32>(at) * factor + offset)));
  }
}

// Per-pixel colour steps on `count` RGB float pixels: scalar, in f64 like the JS they replaced.

const LUMA_R: f64 = 0.299;
const LUMA_G: f64 = 0.587;
const LUMA_B: f64 = 0.114;

@inline function clamp01(v: f64): f64 {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

@inline function lumaAt(p: usize): f64 {
  return LUMA_R * <f64>load<f32>(p) + LUMA_G * <f64>load<f32>(p, 4) + LUMA_B * <f64>load<f32>(p, 8);
}

/** Σ of the ITU-R 601-2 luma over the pixels (contrast blends towards its mean). */
export function lumaSum(pixels: usize, count: i32): f64 {
  let sum: f64 = 0;
  for (let i = 0; i < count; i++) {
    sum += lumaAt(pixels + <usize>i * 12);
  }
  return sum;
}

/** Saturation: each channel blended with the pixel's luma, v = clamp(f·v + (1 − f)·luma). */
export function saturate(pixels: usize, count: i32, factor: f64): void {
  for (let i = 0; i < count; i++) {
    const p = pixels + <usize>i * 12;
    const grey = (1 - factor) * lumaAt(p);
    store<f32>(p, <f32>clamp01(factor * <f64>load<f32>(p) + grey));
    store<f32>(p, <f32>clamp01(factor * <f64>load<f32>(p, 4) + grey), 4);
    store<f32>(p, <f32>clamp01(factor * <f64>load<f32>(p, 8) + grey), 8);
  }
}

/** Luma replicated to all three channels. */
export function grayscale(pixels: usize, count: i32): void {
  for (let i = 0; i < count; i++) {
    const p = pixels + <usize>i * 12;
    const luma = <f32>lumaAt(p);
    store<f32>(p, luma);
    store<f32>(p, luma, 4);
    store<f32>(p, luma, 8);
  }
}

/**
 * Rotates hue by `shift` turns in HSV (torchvision's _rgb2hsv / _hsv2rgb). Value (max) and chroma
 * (max − min) stay, and HSV → RGB has a closed form, channel = max − chroma · ramp(its position
 * on the hue circle), so the whole step runs without data-dependent branches (selects, min, max).
 */
export function shiftHue(pixels: usize, count: i32, shift: f64): void {
  const turn = shift * 6;
  for (let i = 0; i < count; i++) {
    const p = pixels + <usize>i * 12;
    const r = <f64>load<f32>(p);
    const g = <f64>load<f32>(p, 4);
    const b = <f64>load<f32>(p, 8);
    const maximum = max(r, max(g, b));
    const chroma = maximum - min(r, min(g, b));
    // Hue in sextants; grey (chroma 0) keeps its channels as they are: ramp·0.
    const inverseChroma = 1 / select<f64>(chroma, 1, chroma > 0);
    let hue = select<f64>((g - b) * inverseChroma, select<f64>(2 + (b - r) * inverseChroma, 4 + (r - g) * inverseChroma, maximum == g), maximum == r);
    hue += turn;
    hue -= 6 * Math.floor(hue * (1.0 / 6));
    store<f32>(p, <f32>(maximum - chroma * hueRamp(hue + 5)));
    store<f32>(p, <f32>(maximum - chroma * hueRamp(hue + 3)), 4);
    store<f32>(p, <f32>(maximum - chroma * hueRamp(hue + 1)), 8);
  }
}

/** How far below the value a channel at hue position `k` (sextants, [0, 12)) lies: min(k mod 6, 4 − k mod 6) in [0, 1]. */
@inline function hueRamp(k: f64): f64 {
  const position = select<f64>(k - 6, k, k >= 6);
  return min<f64>(1, max<f64>(0, min<f64>(position, 4 - position)));
}

/** (v − mean) / std per channel, from `pixels` to `out`. */
export function normalise(pixels: usize, count: i32, out: usize, mean0: f32, mean1: f32, mean2: f32,
  inverseStd0: f32, inverseStd1: f32, inverseStd2: f32): void {
  for (let i = 0; i < count; i++) {
    const offset = <usize>i * 12;
    store<f32>(out + offset, (load<f32>(pixels + offset) - mean0) * inverseStd0);
    store<f32>(out + offset, (load<f32>(pixels + offset, 4) - mean1) * inverseStd1, 4);
    store<f32>(out + offset, (load<f32>(pixels + offset, 8) - mean2) * inverseStd2, 8);
  }
}

/** dst pixel i = src pixel indices[i] (RGB floats): a row with reflected margins, for the blur. */
export function gatherPixels(dst: usize, src: usize, indices: usize, count: i32): void {
  for (let i = 0; i < count; i++) {
    const from = src + <usize>load<i32>(indices + (<usize>i << 2)) * 12;
    const to = dst + <usize>i * 12;
    store<f32>(to, load<f32>(from));
    store<f32>(to, load<f32>(from, 4), 4);
    store<f32>(to, load<f32>(from, 8), 8);
  }
}
