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
