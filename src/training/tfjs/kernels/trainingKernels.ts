// Training kernels for the wasm backend (../wasmGradients.ts registers them), compiled to
// WebAssembly with 128-bit SIMD by AssemblyScript (scripts/buildKernels.mjs):
// - the weight gradient of conv2d (Conv2DBackpropFilter), which XNNPACK lacks: composed from its
//   conv it repacks dy as a filter and transposes x on every call, at about half the forward's
//   rate. Here dW is a direct sum of outer products over x's pixels in its NHWC layout,
//   register-tiled, with no repacking;
// - the input gradient (Conv2DBackpropInput), phase by phase, tiled the same way;
// - batch normalisation's training passes, fused.
//
// AssemblyScript, not TypeScript: tsconfig.json leaves this folder out. Every pointer is a byte
// offset into this module's memory, which wasmGradients.ts lays out and grows; nothing here allocates.

/**
 * Copies x [batch, height, width, channels] into `out` [batch, paddedHeight, paddedWidth,
 * paddedChannels], zero elsewhere: row r, column c of x (r < rowsUsed, c < colsUsed) lands at
 * row r + top, column c + left. The zero border stands for the conv's padding, and the zero
 * channels round the channel count up to a whole SIMD vector.
 */
export function padInput(x: usize, batch: i32, height: i32, width: i32, channels: i32, rowsUsed: i32, colsUsed: i32,
  out: usize, paddedHeight: i32, paddedWidth: i32, paddedChannels: i32, top: i32, left: i32): void {
  memory.fill(out, 0, <usize>batch * <usize>paddedHeight * <usize>paddedWidth * <usize>paddedChannels << 2);
  const pixelBytes = <usize>channels << 2;
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < rowsUsed; r++) {
      let from = x + ((<usize>(b * height + r) * <usize>width * <usize>channels) << 2);
      let to = out + ((<usize>((b * paddedHeight + r + top) * paddedWidth + left) * <usize>paddedChannels) << 2);
      if (channels == paddedChannels) {
        memory.copy(to, from, <usize>colsUsed * pixelBytes);
        continue;
      }
      for (let c = 0; c < colsUsed; c++) {
        memory.copy(to, from, pixelBytes);
        from += pixelBytes;
        to += <usize>paddedChannels << 2;
      }
    }
  }
}

/**
 * dW[kh, kw, ci, co] = Σ_{b, oy, ox} x[b, oy·strideHeight + kh, ox·strideWidth + kw, ci] · dy[b, oy, ox, co]
 * over an already padded x (padInput). x [batch, paddedHeight, paddedWidth, inChannels] and dW
 * [filterHeight, filterWidth, inChannels, outChannels], channel counts multiples of 4 (of 8 for
 * outChannels, rounded up with zeros by the caller: dy's rounding is its own). The batch is swept
 * `imagesPerChunk` images at a time, all tiles of dW over one chunk before the next, so that the
 * chunk's x and dy stay in cache across the tiles.
 */
export function filterGradient(x: usize, dy: usize, dw: usize, batch: i32, paddedHeight: i32, paddedWidth: i32, inChannels: i32,
  outHeight: i32, outWidth: i32, outChannels: i32, filterHeight: i32, filterWidth: i32, strideHeight: i32, strideWidth: i32,
  imagesPerChunk: i32): void {
  memory.fill(dw, 0, <usize>filterHeight * <usize>filterWidth * <usize>inChannels * <usize>outChannels << 2);
  for (let first = 0; first < batch; first += imagesPerChunk) {
    const end = min(batch, first + imagesPerChunk);
    for (let kh = 0; kh < filterHeight; kh++) {
      for (let kw = 0; kw < filterWidth; kw++) {
        for (let ci = 0; ci < inChannels; ci += 4) {
          const wRows = dw + ((<usize>((kh * filterWidth + kw) * inChannels + ci) * <usize>outChannels) << 2);
          const xTap = x + ((<usize>(kh * paddedWidth + kw) * <usize>inChannels + <usize>ci) << 2);
          for (let co = 0; co < outChannels; co += 8) {
            tile4x8(xTap, dy + (<usize>co << 2), wRows + (<usize>co << 2), first, end, paddedHeight, paddedWidth, inChannels,
              outHeight, outWidth, outChannels, strideHeight, strideWidth);
          }
        }
      }
    }
  }
}

/**
 * Adds to the 4×8 block of dW at `w` (4 input channels from xTap, 8 output channels from dy,
 * rows outChannels floats apart) the products over images [first, end). 8 accumulators, 2 dy
 * vectors and a splat fit x64's 16 vector registers; a 4×16 block (21) spills in V8.
 */
function tile4x8(xTap: usize, dy: usize, w: usize, first: i32, end: i32, paddedHeight: i32, paddedWidth: i32, inChannels: i32,
  outHeight: i32, outWidth: i32, outChannels: i32, strideHeight: i32, strideWidth: i32): void {
  const rowBytes = <usize>outChannels << 2;
  let a0l = v128.load(w), a0h = v128.load(w, 16);
  let a1l = v128.load(w + rowBytes), a1h = v128.load(w + rowBytes, 16);
  let a2l = v128.load(w + 2 * rowBytes), a2h = v128.load(w + 2 * rowBytes, 16);
  let a3l = v128.load(w + 3 * rowBytes), a3h = v128.load(w + 3 * rowBytes, 16);
  const xStep = <usize>(strideWidth * inChannels) << 2;
  for (let b = first; b < end; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      let xp = xTap + ((<usize>((b * paddedHeight + oy * strideHeight) * paddedWidth) * <usize>inChannels) << 2);
      let dp = dy + ((<usize>((b * outHeight + oy) * outWidth) * <usize>outChannels) << 2);
      for (let ox = 0; ox < outWidth; ox++) {
        const dl = v128.load(dp);
        const dh = v128.load(dp, 16);
        let s = v128.load32_splat(xp);
        a0l = f32x4.add(a0l, f32x4.mul(s, dl));
        a0h = f32x4.add(a0h, f32x4.mul(s, dh));
        s = v128.load32_splat(xp, 4);
        a1l = f32x4.add(a1l, f32x4.mul(s, dl));
        a1h = f32x4.add(a1h, f32x4.mul(s, dh));
        s = v128.load32_splat(xp, 8);
        a2l = f32x4.add(a2l, f32x4.mul(s, dl));
        a2h = f32x4.add(a2h, f32x4.mul(s, dh));
        s = v128.load32_splat(xp, 12);
        a3l = f32x4.add(a3l, f32x4.mul(s, dl));
        a3h = f32x4.add(a3h, f32x4.mul(s, dh));
        xp += xStep;
        dp += rowBytes;
      }
    }
  }
  v128.store(w, a0l); v128.store(w, a0h, 16);
  v128.store(w + rowBytes, a1l); v128.store(w + rowBytes, a1h, 16);
  v128.store(w + 2 * rowBytes, a2l); v128.store(w + 2 * rowBytes, a2h, 16);
  v128.store(w + 3 * rowBytes, a3l); v128.store(w + 3 * rowBytes, a3h, 16);
}

/**
 * out[kh, kw, co, ci] = w[kh, kw, ci, co] for ci < inChannels, zero for the rounding channels up
 * to paddedInChannels: the filter rows inputGradient reads, 8 input channels per SIMD pair.
 */
export function transposeFilter(w: usize, out: usize, taps: i32, inChannels: i32, outChannels: i32, paddedInChannels: i32): void {
  memory.fill(out, 0, <usize>taps * <usize>outChannels * <usize>paddedInChannels << 2);
  for (let tap = 0; tap < taps; tap++) {
    const from = w + ((<usize>tap * <usize>inChannels * <usize>outChannels) << 2);
    const to = out + ((<usize>tap * <usize>outChannels * <usize>paddedInChannels) << 2);
    for (let ci = 0; ci < inChannels; ci++) {
      for (let co = 0; co < outChannels; co++) {
        store<f32>(to + ((<usize>co * <usize>paddedInChannels + <usize>ci) << 2), load<f32>(from + ((<usize>ci * <usize>outChannels + <usize>co) << 2)));
      }
    }
  }
}

/**
 * dx[b, iy, ix, ci] = Σ dy[b, oy, ox, co] · w[kh, kw, ci, co] over oy·strideHeight + kh = iy + padTop
 * (and likewise for columns), computed per phase (iy + padTop, ix + padLeft) mod the stride: with
 * iy + padTop = s·a + r, the taps kh = r + s·j read dy row a − j, a stride-1 correlation.
 * dy comes padded (padInput) with tapsHeight − 1 zero rows in front and zero rows after up to
 * dyHeight (tapsWidth − 1 / dyWidth for columns), so that every a − j reads a row;
 * filter is transposeFilter's [kh, kw, co, ci]. dx is [batch, height, width, inChannels],
 * inChannels a multiple of 8.
 */
export function inputGradient(dy: usize, filter: usize, dx: usize, batch: i32, dyHeight: i32, dyWidth: i32, outChannels: i32,
  height: i32, width: i32, inChannels: i32, filterHeight: i32, filterWidth: i32, strideHeight: i32, strideWidth: i32,
  padTop: i32, padLeft: i32): void {
  memory.fill(dx, 0, <usize>batch * <usize>height * <usize>width * <usize>inChannels << 2);
  const tapsHeight = (filterHeight + strideHeight - 1) / strideHeight;
  const tapsWidth = (filterWidth + strideWidth - 1) / strideWidth;
  const dyPixelBytes = <usize>outChannels << 2;
  const dxStep = <usize>(strideWidth * inChannels) << 2;
  for (let ry = 0; ry < strideHeight; ry++) {
    // Phase rows a with 0 <= s·a + ry − padTop < height.
    const firstRow = max(0, (padTop - ry + strideHeight - 1) / strideHeight);
    const endRow = phaseEnd(height - 1 + padTop - ry, strideHeight);
    for (let rx = 0; rx < strideWidth; rx++) {
      const firstCol = max(0, (padLeft - rx + strideWidth - 1) / strideWidth);
      const endCol = phaseEnd(width - 1 + padLeft - rx, strideWidth);
      if (ry >= filterHeight || rx >= filterWidth || endRow <= firstRow || endCol <= firstCol) {
        continue;
      }
      const phaseTapsHeight = (filterHeight - ry + strideHeight - 1) / strideHeight;
      const phaseTapsWidth = (filterWidth - rx + strideWidth - 1) / strideWidth;
      for (let b = 0; b < batch; b++) {
        for (let a = firstRow; a < endRow; a++) {
          const dxRow = dx + ((<usize>((b * height + strideHeight * a + ry - padTop) * width) * <usize>inChannels) << 2);
          // dy row a − j sits at padded row a − j + tapsHeight − 1; the phase's j = 0 tap (kh = ry) reads its last.
          const dyRow = dy + ((<usize>((b * dyHeight + a + tapsHeight - 1) * dyWidth) * <usize>outChannels) << 2);
          let col = firstCol;
          for (; col + 4 <= endCol; col += 4) {
            const dxAt = dxRow + ((<usize>(strideWidth * col + rx - padLeft) * <usize>inChannels) << 2);
            const dyAt = dyRow + ((<usize>(col + tapsWidth - 1) * <usize>outChannels) << 2);
            for (let ci = 0; ci < inChannels; ci += 8) {
              inputTile4x8(dyAt, filter + (<usize>ci << 2), dxAt + (<usize>ci << 2), dxStep, phaseTapsHeight, phaseTapsWidth,
                ry, rx, strideHeight, strideWidth, filterWidth, dyWidth, outChannels, inChannels, dyPixelBytes);
            }
          }
          for (; col < endCol; col++) {
            const dxAt = dxRow + ((<usize>(strideWidth * col + rx - padLeft) * <usize>inChannels) << 2);
            const dyAt = dyRow + ((<usize>(col + tapsWidth - 1) * <usize>outChannels) << 2);
            for (let ci = 0; ci < inChannels; ci += 8) {
              inputTile1x8(dyAt, filter + (<usize>ci << 2), dxAt + (<usize>ci << 2), phaseTapsHeight, phaseTapsWidth,
                ry, rx, strideHeight, strideWidth, filterWidth, dyWidth, outChannels, inChannels);
            }
          }
        }
      }
    }
  }
}

/** floor(last / stride) + 1: the end of a phase whose last padded position is `last` (none when negative). */
function phaseEnd(last: i32, stride: i32): i32 {
  return last < 0 ? 0 : last / stride + 1;
}

/**
 * Writes 4 dx pixels (dxStep bytes apart) × 8 input channels: the taps (ry + s·jh, rx + s·jw)
 * over all output channels, dy pixel (a − jh, col + t − jw) for pixel t.
 */
function inputTile4x8(dyAt: usize, filter: usize, dx: usize, dxStep: usize, phaseTapsHeight: i32, phaseTapsWidth: i32,
  ry: i32, rx: i32, strideHeight: i32, strideWidth: i32, filterWidth: i32, dyWidth: i32, outChannels: i32, inChannels: i32,
  dyPixelBytes: usize): void {
  let a0l = f32x4.splat(0), a0h = f32x4.splat(0), a1l = f32x4.splat(0), a1h = f32x4.splat(0);
  let a2l = f32x4.splat(0), a2h = f32x4.splat(0), a3l = f32x4.splat(0), a3h = f32x4.splat(0);
  const filterRowBytes = <usize>inChannels << 2;
  for (let jh = 0; jh < phaseTapsHeight; jh++) {
    for (let jw = 0; jw < phaseTapsWidth; jw++) {
      let dp = dyAt - ((<usize>(jh * dyWidth + jw) * <usize>outChannels) << 2);
      let wp = filter + ((<usize>(((ry + strideHeight * jh) * filterWidth + rx + strideWidth * jw) * outChannels) * <usize>inChannels) << 2);
      for (let co = 0; co < outChannels; co++) {
        const wl = v128.load(wp);
        const wh = v128.load(wp, 16);
        let s = v128.load32_splat(dp);
        a0l = f32x4.add(a0l, f32x4.mul(s, wl));
        a0h = f32x4.add(a0h, f32x4.mul(s, wh));
        s = v128.load32_splat(dp + dyPixelBytes);
        a1l = f32x4.add(a1l, f32x4.mul(s, wl));
        a1h = f32x4.add(a1h, f32x4.mul(s, wh));
        s = v128.load32_splat(dp + 2 * dyPixelBytes);
        a2l = f32x4.add(a2l, f32x4.mul(s, wl));
        a2h = f32x4.add(a2h, f32x4.mul(s, wh));
        s = v128.load32_splat(dp + 3 * dyPixelBytes);
        a3l = f32x4.add(a3l, f32x4.mul(s, wl));
        a3h = f32x4.add(a3h, f32x4.mul(s, wh));
        dp += 4;
        wp += filterRowBytes;
      }
    }
  }
  v128.store(dx, a0l); v128.store(dx, a0h, 16);
  v128.store(dx + dxStep, a1l); v128.store(dx + dxStep, a1h, 16);
  v128.store(dx + 2 * dxStep, a2l); v128.store(dx + 2 * dxStep, a2h, 16);
  v128.store(dx + 3 * dxStep, a3l); v128.store(dx + 3 * dxStep, a3h, 16);
}

/** inputTile4x8 for one dx pixel: the rows whose phase width is not a multiple of 4. */
function inputTile1x8(dyAt: usize, filter: usize, dx: usize, phaseTapsHeight: i32, phaseTapsWidth: i32,
  ry: i32, rx: i32, strideHeight: i32, strideWidth: i32, filterWidth: i32, dyWidth: i32, outChannels: i32, inChannels: i32): void {
  let al = f32x4.splat(0), ah = f32x4.splat(0);
  const filterRowBytes = <usize>inChannels << 2;
  for (let jh = 0; jh < phaseTapsHeight; jh++) {
    for (let jw = 0; jw < phaseTapsWidth; jw++) {
      let dp = dyAt - ((<usize>(jh * dyWidth + jw) * <usize>outChannels) << 2);
      let wp = filter + ((<usize>(((ry + strideHeight * jh) * filterWidth + rx + strideWidth * jw) * outChannels) * <usize>inChannels) << 2);
      for (let co = 0; co < outChannels; co++) {
        const s = v128.load32_splat(dp);
        al = f32x4.add(al, f32x4.mul(s, v128.load(wp)));
        ah = f32x4.add(ah, f32x4.mul(s, v128.load(wp, 16)));
        dp += 4;
        wp += filterRowBytes;
      }
    }
  }
  v128.store(dx, al);
  v128.store(dx, ah, 16);
}

// Batch normalisation in training mode (../../model/batchNorm.ts) over x viewed as [rows, channels]:
// the per-channel statistics and the element-wise passes, each a single sweep of 4 channels per
// instruction, where tfjs runs 5 separate element-wise ops forward and 5 backward.

/** Rows summed into a partial sum before it joins the total: f32 sums over 32k rows keep ~1e-6 relative error. */
const SUM_BLOCK_ROWS = 64;

/**
 * sums[c] = Σ_r x[r, c] (or Σ_r (x[r, c] − centre[c])² when `squared`), blockwise through `partial`;
 * sums and partial are `channels` floats each.
 */
export function channelSums(x: usize, rows: i32, channels: i32, centre: usize, squared: bool, sums: usize, partial: usize): void {
  memory.fill(sums, 0, <usize>channels << 2);
  const vectorEnd = channels & ~3;
  const rowBytes = <usize>channels << 2;
  for (let first = 0; first < rows; first += SUM_BLOCK_ROWS) {
    memory.fill(partial, 0, <usize>channels << 2);
    const end = min(rows, first + SUM_BLOCK_ROWS);
    for (let r = first; r < end; r++) {
      const row = x + <usize>r * rowBytes;
      for (let c = 0; c < vectorEnd; c += 4) {
        const at = <usize>c << 2;
        let v = v128.load(row + at);
        if (squared) {
          v = f32x4.sub(v, v128.load(centre + at));
          v = f32x4.mul(v, v);
        }
        v128.store(partial + at, f32x4.add(v128.load(partial + at), v));
      }
      for (let c = vectorEnd; c < channels; c++) {
        const at = <usize>c << 2;
        let v = load<f32>(row + at);
        if (squared) {
          v -= load<f32>(centre + at);
          v *= v;
        }
        store<f32>(partial + at, load<f32>(partial + at) + v);
      }
    }
    addInto(sums, partial, channels);
  }
}

/** total[c] += partial[c] for c < channels. */
function addInto(total: usize, partial: usize, channels: i32): void {
  for (let c = 0; c < channels; c++) {
    const at = <usize>c << 2;
    store<f32>(total + at, load<f32>(total + at) + load<f32>(partial + at));
  }
}

/**
 * normalised = (x − mean)·invStd and y = normalised·gamma + beta, per channel; any of x, normalised
 * and y may be the same buffer.
 */
export function normalise(x: usize, rows: i32, channels: i32, mean: usize, invStd: usize, gamma: usize, beta: usize,
  normalised: usize, y: usize): void {
  const vectorEnd = channels & ~3;
  const rowBytes = <usize>channels << 2;
  for (let r = 0; r < rows; r++) {
    const offset = <usize>r * rowBytes;
    for (let c = 0; c < vectorEnd; c += 4) {
      const at = <usize>c << 2;
      const n = f32x4.mul(f32x4.sub(v128.load(x + offset + at), v128.load(mean + at)), v128.load(invStd + at));
      v128.store(normalised + offset + at, n);
      v128.store(y + offset + at, f32x4.add(f32x4.mul(n, v128.load(gamma + at)), v128.load(beta + at)));
    }
    for (let c = vectorEnd; c < channels; c++) {
      const at = <usize>c << 2;
      const n = (load<f32>(x + offset + at) - load<f32>(mean + at)) * load<f32>(invStd + at);
      store<f32>(normalised + offset + at, n);
      store<f32>(y + offset + at, n * load<f32>(gamma + at) + load<f32>(beta + at));
    }
  }
}

/**
 * sumDy[c] = Σ_r dy[r, c] and sumDyNormalised[c] = Σ_r dy[r, c]·normalised[r, c], in one sweep,
 * blockwise as channelSums through partialDy and partialDyNormalised.
 */
export function gradientSums(dy: usize, normalised: usize, rows: i32, channels: i32, sumDy: usize, sumDyNormalised: usize,
  partialDy: usize, partialDyNormalised: usize): void {
  memory.fill(sumDy, 0, <usize>channels << 2);
  memory.fill(sumDyNormalised, 0, <usize>channels << 2);
  const vectorEnd = channels & ~3;
  const rowBytes = <usize>channels << 2;
  for (let first = 0; first < rows; first += SUM_BLOCK_ROWS) {
    memory.fill(partialDy, 0, <usize>channels << 2);
    memory.fill(partialDyNormalised, 0, <usize>channels << 2);
    const end = min(rows, first + SUM_BLOCK_ROWS);
    for (let r = first; r < end; r++) {
      const offset = <usize>r * rowBytes;
      for (let c = 0; c < vectorEnd; c += 4) {
        const at = <usize>c << 2;
        const d = v128.load(dy + offset + at);
        v128.store(partialDy + at, f32x4.add(v128.load(partialDy + at), d));
        v128.store(partialDyNormalised + at,
          f32x4.add(v128.load(partialDyNormalised + at), f32x4.mul(d, v128.load(normalised + offset + at))));
      }
      for (let c = vectorEnd; c < channels; c++) {
        const at = <usize>c << 2;
        const d = load<f32>(dy + offset + at);
        store<f32>(partialDy + at, load<f32>(partialDy + at) + d);
        store<f32>(partialDyNormalised + at, load<f32>(partialDyNormalised + at) + d * load<f32>(normalised + offset + at));
      }
    }
    addInto(sumDy, partialDy, channels);
    addInto(sumDyNormalised, partialDyNormalised, channels);
  }
}

/** dx = (dy − meanDy − normalised·meanDyNormalised)·scale, per channel (scale = gamma·invStd); dx may be dy. */
export function normaliseGradient(dy: usize, normalised: usize, rows: i32, channels: i32, meanDy: usize, meanDyNormalised: usize,
  scale: usize, dx: usize): void {
  const vectorEnd = channels & ~3;
  const rowBytes = <usize>channels << 2;
  for (let r = 0; r < rows; r++) {
    const offset = <usize>r * rowBytes;
    for (let c = 0; c < vectorEnd; c += 4) {
      const at = <usize>c << 2;
      const centred = f32x4.sub(f32x4.sub(v128.load(dy + offset + at), v128.load(meanDy + at)),
        f32x4.mul(v128.load(normalised + offset + at), v128.load(meanDyNormalised + at)));
      v128.store(dx + offset + at, f32x4.mul(centred, v128.load(scale + at)));
    }
    for (let c = vectorEnd; c < channels; c++) {
      const at = <usize>c << 2;
      const centred = load<f32>(dy + offset + at) - load<f32>(meanDy + at)
        - load<f32>(normalised + offset + at) * load<f32>(meanDyNormalised + at);
      store<f32>(dx + offset + at, centred * load<f32>(scale + at));
    }
  }
}
