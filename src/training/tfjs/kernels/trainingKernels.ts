// Training kernels for the wasm backend (../wasmGradients.ts registers them), compiled to
// WebAssembly with 128-bit SIMD by AssemblyScript (scripts/buildKernels.mjs):
// - the weight gradient of conv2d (Conv2DBackpropFilter), which XNNPACK lacks: composed from its
//   conv it repacks dy as a filter and transposes x on every call, at about half the forward's
//   rate. Here dW is a direct sum of outer products over x's pixels, register-tiled, on x and dy
//   regrouped in channel blocks (whole cache lines per tile) and, for strided filters, on x's
//   gathered patches;
// - the input gradient (Conv2DBackpropInput), phase by phase, tiled the same way;
// - the forward conv2d on the shapes where it beats XNNPACK (3x3 over 16+ channels): the
//   inputGradient tile read the other way round (x's pixels against filter rows of output
//   channels), which skips XNNPACK's per-call packing of a filter that changes every step;
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
 * dst[cb, p, j] = src[p, cb·block + j]: [pixels, channels] regrouped into channel blocks of
 * `block` floats (4 or 8), each block's pixels contiguous, so that a kernel reading one block of
 * every pixel uses whole cache lines. channels is a multiple of block.
 */
export function blockChannels(src: usize, pixels: i32, channels: i32, block: i32, dst: usize): void {
  const pixelBytes = <usize>channels << 2;
  const blockBytes = <usize>block << 2;
  for (let first = 0; first < channels; first += block) {
    let from = src + (<usize>first << 2);
    let to = dst + <usize>first * <usize>pixels * 4;
    for (let p = 0; p < pixels; p++) {
      v128.store(to, v128.load(from));
      if (block == 8) {
        v128.store(to, v128.load(from, 16), 16);
      }
      from += pixelBytes;
      to += blockBytes;
    }
  }
}

/**
 * The conv's patches of an already padded x [batch, paddedHeight, paddedWidth, channels]
 * (channels a multiple of 4), regrouped as blockChannels would the matrix [pixels, (kh, kw, ci)]:
 * dst[(kh·filterWidth + kw)·channels/4 + ci/4, p, ci mod 4] = x[b, oy·strideHeight + kh, ox·strideWidth + kw, ci]
 * for output pixel p = (b, oy, ox). dW is then a 1x1 filter gradient over one long row of pixels.
 */
export function gatherPatches(x: usize, batch: i32, paddedHeight: i32, paddedWidth: i32, channels: i32, outHeight: i32, outWidth: i32,
  filterHeight: i32, filterWidth: i32, strideHeight: i32, strideWidth: i32, dst: usize): void {
  const pixelBytes = <usize>channels << 2;
  const xStep = <usize>strideWidth * pixelBytes;
  let to = dst;
  for (let kh = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      for (let ci = 0; ci < channels; ci += 4) {
        for (let b = 0; b < batch; b++) {
          for (let oy = 0; oy < outHeight; oy++) {
            let from = x + (<usize>((b * paddedHeight + oy * strideHeight + kh) * paddedWidth + kw) * pixelBytes) + (<usize>ci << 2);
            for (let ox = 0; ox < outWidth; ox++) {
              v128.store(to, v128.load(from));
              from += xStep;
              to += 16;
            }
          }
        }
      }
    }
  }
}

/**
 * dW[kh, kw, ci, co] = Σ_{b, oy, ox} x[b, oy·strideHeight + kh, ox·strideWidth + kw, ci] · dy[b, oy, ox, co]
 * over an already padded x (padInput), both regrouped by blockChannels: x [inChannels / 4, batch,
 * paddedHeight, paddedWidth, 4] and dy [outChannels / 8, batch, outHeight, outWidth, 8]. dW is
 * [filterHeight, filterWidth, inChannels, outChannels], channel counts multiples of 4 and 8
 * (rounded up with zeros by the caller). The batch is swept `imagesPerChunk` images at a time,
 * all tiles of dW over one chunk before the next, so that the chunk's x and dy stay in cache
 * across the tiles.
 */
export function filterGradient(x: usize, dy: usize, dw: usize, batch: i32, paddedHeight: i32, paddedWidth: i32, inChannels: i32,
  outHeight: i32, outWidth: i32, outChannels: i32, filterHeight: i32, filterWidth: i32, strideHeight: i32, strideWidth: i32,
  imagesPerChunk: i32): void {
  memory.fill(dw, 0, <usize>filterHeight * <usize>filterWidth * <usize>inChannels * <usize>outChannels << 2);
  const xBlockBytes = (<usize>batch * <usize>paddedHeight * <usize>paddedWidth) << 4;
  const dyBlockBytes = (<usize>batch * <usize>outHeight * <usize>outWidth) << 5;
  for (let first = 0; first < batch; first += imagesPerChunk) {
    const end = min(batch, first + imagesPerChunk);
    for (let ci = 0; ci < inChannels; ci += 4) {
      const xBlock = x + <usize>(ci >> 2) * xBlockBytes;
      for (let co = 0; co < outChannels; co += 8) {
        const dyBlock = dy + <usize>(co >> 3) * dyBlockBytes;
        for (let kh = 0; kh < filterHeight; kh++) {
          for (let kw = 0; kw < filterWidth; kw++) {
            const wRows = dw + ((<usize>((kh * filterWidth + kw) * inChannels + ci) * <usize>outChannels + <usize>co) << 2);
            tile4x8(xBlock + (<usize>(kh * paddedWidth + kw) << 4), dyBlock, wRows, first, end, paddedHeight, paddedWidth,
              outHeight, outWidth, outChannels, strideHeight, strideWidth);
          }
        }
      }
    }
  }
}

/**
 * Adds to the 4×8 block of dW at `w` (4 input channels from x's block, 8 output channels from
 * dy's, rows outChannels floats apart) the products over images [first, end). 8 accumulators,
 * 2 dy vectors and a splat fit x64's 16 vector registers; a 4×16 block (21) spills in V8.
 */
function tile4x8(xTap: usize, dy: usize, w: usize, first: i32, end: i32, paddedHeight: i32, paddedWidth: i32,
  outHeight: i32, outWidth: i32, outChannels: i32, strideHeight: i32, strideWidth: i32): void {
  const rowBytes = <usize>outChannels << 2;
  let a0l = v128.load(w), a0h = v128.load(w, 16);
  let a1l = v128.load(w + rowBytes), a1h = v128.load(w + rowBytes, 16);
  let a2l = v128.load(w + 2 * rowBytes), a2h = v128.load(w + 2 * rowBytes, 16);
  let a3l = v128.load(w + 3 * rowBytes), a3h = v128.load(w + 3 * rowBytes, 16);
  const xStep = <usize>strideWidth << 4;
  const xRowStep = <usize>(strideHeight * paddedWidth) << 4;
  const xImageBytes = <usize>(paddedHeight * paddedWidth) << 4;
  let xImage = xTap + <usize>first * xImageBytes;
  let dp = dy + (<usize>(first * outHeight * outWidth) << 5);
  for (let b = first; b < end; b++) {
    let xRow = xImage;
    for (let oy = 0; oy < outHeight; oy++) {
      let xp = xRow;
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
        dp += 32;
      }
      xRow += xRowStep;
    }
    xImage += xImageBytes;
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
 * filter is transposeFilter's [kh, kw, co, ci] in blocks of 8 input channels (blockChannels):
 * [ci / 8, kh, kw, co, 8]. dx is [batch, height, width, inChannels], inChannels a multiple of 8.
 */
export function inputGradient(dy: usize, filter: usize, dx: usize, batch: i32, dyHeight: i32, dyWidth: i32, outChannels: i32,
  height: i32, width: i32, inChannels: i32, filterHeight: i32, filterWidth: i32, strideHeight: i32, strideWidth: i32,
  padTop: i32, padLeft: i32): void {
  memory.fill(dx, 0, <usize>batch * <usize>height * <usize>width * <usize>inChannels << 2);
  const tapsHeight = (filterHeight + strideHeight - 1) / strideHeight;
  const tapsWidth = (filterWidth + strideWidth - 1) / strideWidth;
  const dyPixelBytes = <usize>outChannels << 2;
  const dxStep = <usize>(strideWidth * inChannels) << 2;
  const filterBlockBytes = (<usize>(filterHeight * filterWidth) * <usize>outChannels) << 5;
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
              inputTile4x8(dyAt, filter + <usize>(ci >> 3) * filterBlockBytes, dxAt + (<usize>ci << 2), dxStep, phaseTapsHeight,
                phaseTapsWidth, ry, rx, strideHeight, strideWidth, filterWidth, dyWidth, outChannels, 8, dyPixelBytes);
            }
          }
          for (; col < endCol; col++) {
            const dxAt = dxRow + ((<usize>(strideWidth * col + rx - padLeft) * <usize>inChannels) << 2);
            const dyAt = dyRow + ((<usize>(col + tapsWidth - 1) * <usize>outChannels) << 2);
            for (let ci = 0; ci < inChannels; ci += 8) {
              inputTile1x8(dyAt, filter + <usize>(ci >> 3) * filterBlockBytes, dxAt + (<usize>ci << 2), phaseTapsHeight,
                phaseTapsWidth, ry, rx, strideHeight, strideWidth, filterWidth, dyWidth, outChannels, 8);
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

/**
 * out[b, oy, ox, co] = act(bias[co] + Σ_{kh, kw, ci} x[b, oy·strideHeight + kh, ox·strideWidth + kw, ci] · w[kh, kw, ci, co])
 * over an already padded x (padInput) [batch, paddedHeight, paddedWidth, inChannels] and the
 * filter w [filterHeight, filterWidth, inChannels, outChannels] in blocks of 8 output channels
 * (blockChannels: [co / 8, kh, kw, ci, 8]), outChannels a multiple of 8. bias is 0 for none (else outChannels floats); relu clamps the result at 0.
 */
export function forwardConv(x: usize, filter: usize, bias: usize, out: usize, batch: i32, paddedHeight: i32, paddedWidth: i32,
  inChannels: i32, outHeight: i32, outWidth: i32, outChannels: i32, filterHeight: i32, filterWidth: i32,
  strideHeight: i32, strideWidth: i32, relu: bool): void {
  const xStep = <usize>(strideWidth * inChannels) << 2;
  const outStep = <usize>outChannels << 2;
  const filterBlockBytes = (<usize>(filterHeight * filterWidth) * <usize>inChannels) << 5;
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const xRow = x + ((<usize>((b * paddedHeight + oy * strideHeight) * paddedWidth) * <usize>inChannels) << 2);
      const outRow = out + ((<usize>((b * outHeight + oy) * outWidth) * <usize>outChannels) << 2);
      let ox = 0;
      for (; ox + 4 <= outWidth; ox += 4) {
        const xAt = xRow + <usize>ox * xStep;
        const outAt = outRow + <usize>ox * outStep;
        for (let co = 0; co < outChannels; co += 8) {
          const coBytes = <usize>co << 2;
          forwardTile4x8(xAt, filter + <usize>(co >> 3) * filterBlockBytes, bias == 0 ? 0 : bias + coBytes, outAt + coBytes, xStep,
            outStep, paddedWidth, inChannels, 8, filterHeight, filterWidth, relu);
        }
      }
      for (; ox < outWidth; ox++) {
        const xAt = xRow + <usize>ox * xStep;
        const outAt = outRow + <usize>ox * outStep;
        for (let co = 0; co < outChannels; co += 8) {
          const coBytes = <usize>co << 2;
          forwardTile1x8(xAt, filter + <usize>(co >> 3) * filterBlockBytes, bias == 0 ? 0 : bias + coBytes, outAt + coBytes,
            paddedWidth, inChannels, 8, filterHeight, filterWidth, relu);
        }
      }
    }
  }
}

/**
 * Writes 4 output pixels (outStep bytes apart, their windows xStep bytes apart in x) × 8 output
 * channels: every tap and input channel of the window, a splat of x against a filter row.
 */
function forwardTile4x8(x: usize, filter: usize, bias: usize, out: usize, xStep: usize, outStep: usize, paddedWidth: i32,
  inChannels: i32, outChannels: i32, filterHeight: i32, filterWidth: i32, relu: bool): void {
  let a0l = f32x4.splat(0), a0h = f32x4.splat(0);
  if (bias != 0) {
    a0l = v128.load(bias);
    a0h = v128.load(bias, 16);
  }
  let a1l = a0l, a1h = a0h, a2l = a0l, a2h = a0h, a3l = a0l, a3h = a0h;
  const filterRowBytes = <usize>outChannels << 2;
  for (let kh = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      let xp = x + ((<usize>(kh * paddedWidth + kw) * <usize>inChannels) << 2);
      let wp = filter + ((<usize>((kh * filterWidth + kw) * inChannels) * <usize>outChannels) << 2);
      for (let ci = 0; ci < inChannels; ci++) {
        const wl = v128.load(wp);
        const wh = v128.load(wp, 16);
        let s = v128.load32_splat(xp);
        a0l = f32x4.add(a0l, f32x4.mul(s, wl));
        a0h = f32x4.add(a0h, f32x4.mul(s, wh));
        s = v128.load32_splat(xp + xStep);
        a1l = f32x4.add(a1l, f32x4.mul(s, wl));
        a1h = f32x4.add(a1h, f32x4.mul(s, wh));
        s = v128.load32_splat(xp + 2 * xStep);
        a2l = f32x4.add(a2l, f32x4.mul(s, wl));
        a2h = f32x4.add(a2h, f32x4.mul(s, wh));
        s = v128.load32_splat(xp + 3 * xStep);
        a3l = f32x4.add(a3l, f32x4.mul(s, wl));
        a3h = f32x4.add(a3h, f32x4.mul(s, wh));
        xp += 4;
        wp += filterRowBytes;
      }
    }
  }
  if (relu) {
    const zero = f32x4.splat(0);
    a0l = f32x4.max(a0l, zero); a0h = f32x4.max(a0h, zero); a1l = f32x4.max(a1l, zero); a1h = f32x4.max(a1h, zero);
    a2l = f32x4.max(a2l, zero); a2h = f32x4.max(a2h, zero); a3l = f32x4.max(a3l, zero); a3h = f32x4.max(a3h, zero);
  }
  v128.store(out, a0l); v128.store(out, a0h, 16);
  v128.store(out + outStep, a1l); v128.store(out + outStep, a1h, 16);
  v128.store(out + 2 * outStep, a2l); v128.store(out + 2 * outStep, a2h, 16);
  v128.store(out + 3 * outStep, a3l); v128.store(out + 3 * outStep, a3h, 16);
}

/** forwardTile4x8 for one output pixel: the rows whose width is not a multiple of 4. */
function forwardTile1x8(x: usize, filter: usize, bias: usize, out: usize, paddedWidth: i32, inChannels: i32, outChannels: i32,
  filterHeight: i32, filterWidth: i32, relu: bool): void {
  let al = f32x4.splat(0), ah = f32x4.splat(0);
  if (bias != 0) {
    al = v128.load(bias);
    ah = v128.load(bias, 16);
  }
  const filterRowBytes = <usize>outChannels << 2;
  for (let kh = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      let xp = x + ((<usize>(kh * paddedWidth + kw) * <usize>inChannels) << 2);
      let wp = filter + ((<usize>((kh * filterWidth + kw) * inChannels) * <usize>outChannels) << 2);
      for (let ci = 0; ci < inChannels; ci++) {
        const s = v128.load32_splat(xp);
        al = f32x4.add(al, f32x4.mul(s, v128.load(wp)));
        ah = f32x4.add(ah, f32x4.mul(s, v128.load(wp, 16)));
        xp += 4;
        wp += filterRowBytes;
      }
    }
  }
  if (relu) {
    al = f32x4.max(al, f32x4.splat(0));
    ah = f32x4.max(ah, f32x4.splat(0));
  }
  v128.store(out, al);
  v128.store(out, ah, 16);
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
