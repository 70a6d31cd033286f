import * as assert from 'assert';
import {
  augmentView,
  centerView,
  decodeShortSideFor,
  defaultAugmentConfig,
  IMAGENET_MEAN,
  IMAGENET_STD,
  randomResizedCropParams,
  renderView,
  sampleViewParams,
  type AugmentConfig,
  type ViewParams,
} from '../../src/training/data/augment';
import type { DecodedImage } from '../../src/training/data/imageDecode';
import { Rng } from '../../src/training/data/rng';

function noiseImage(width: number, height: number, seed = 1): DecodedImage {
  const rng = new Rng(seed);
  return { width, height, data: Uint8Array.from({ length: width * height * 3 }, () => rng.int(256)) };
}

/** Raw [0, 1] pixels out: mean 0, std 1. */
function plainConfig(size: number, overrides: Partial<AugmentConfig> = {}): AugmentConfig {
  return { ...defaultAugmentConfig(size, [0, 0, 0], [1, 1, 1]), ...overrides };
}

/** Only the crop (the whole image) and whatever the test switches on. */
function identityParams(image: DecodedImage, overrides: Partial<ViewParams> = {}): ViewParams {
  return { crop: { top: 0, left: 0, width: image.width, height: image.height }, jitter: [], grayscale: false, blurSigma: null, flip: false, ...overrides };
}

function render(image: DecodedImage, params: ViewParams, size = image.width): Float32Array {
  const out = new Float32Array(size * size * 3);
  renderView(image, params, plainConfig(size), out, 0);
  return out;
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    max = Math.max(max, Math.abs(a[i] - b[i]));
  }
  return max;
}

describe('augment', () => {
  it('follows the SimSiam recipe by default, without blur at small sizes', () => {
    const cfg = defaultAugmentConfig(224);
    assert.deepStrictEqual([cfg.cropScale, cfg.jitterP, cfg.grayscaleP, cfg.blurP, cfg.flipP], [[0.2, 1], 0.8, 0.2, 0.5, 0.5]);
    assert.deepStrictEqual(cfg.jitter, { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 });
    assert.deepStrictEqual([cfg.mean, cfg.std], [IMAGENET_MEAN, IMAGENET_STD]);
    assert.strictEqual(defaultAugmentConfig(32).blurP, 0);
    assert.strictEqual(decodeShortSideFor(cfg), Math.ceil(224 / Math.sqrt(0.2)));
  });

  it('writes exactly one normalised view at the offset, finite and within the normalised range', () => {
    const size = 24;
    const floats = size * size * 3;
    const cfg = defaultAugmentConfig(size);
    const out = new Float32Array(floats * 3).fill(NaN);
    const rng = new Rng(5);
    for (let i = 0; i < 50; i++) {
      augmentView(noiseImage(40, 30, i), cfg, rng, out, floats);
      for (let j = floats; j < 2 * floats; j++) {
        const c = j % 3;
        const lo = (0 - cfg.mean[c]) / cfg.std[c];
        const hi = (1 - cfg.mean[c]) / cfg.std[c];
        assert.ok(out[j] >= lo - 1e-5 && out[j] <= hi + 1e-5, `value ${out[j]} outside [${lo}, ${hi}]`);
      }
    }
    assert.ok(out.subarray(0, floats).every(Number.isNaN), 'nothing written before the offset');
    assert.ok(out.subarray(2 * floats).every(Number.isNaN), 'nothing written after the view');
    assert.throws(() => augmentView(noiseImage(8, 8), cfg, rng, out, 2 * floats + 1), /cannot hold/);
  });

  it('draws crops inside the image with area and aspect within the configured bounds', () => {
    const rng = new Rng(11);
    const [width, height] = [200, 150];
    const areas: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const crop = randomResizedCropParams(width, height, [0.2, 1], [3 / 4, 4 / 3], rng);
      assert.ok(crop.top >= 0 && crop.left >= 0 && crop.top + crop.height <= height && crop.left + crop.width <= width, JSON.stringify(crop));
      const area = (crop.width * crop.height) / (width * height);
      // Rounding each side to whole pixels moves area and ratio by about one pixel's worth.
      assert.ok(area >= 0.2 - 0.02 && area <= 1, `area fraction ${area}`);
      const ratio = crop.width / crop.height;
      assert.ok(ratio >= (3 / 4) * 0.98 && ratio <= (4 / 3) * 1.02, `ratio ${ratio}`);
      areas.push(area);
    }
    assert.ok(areas.some((a) => a < 0.3) && areas.some((a) => a > 0.7), 'the whole scale range is used');
    const lefts = new Set(Array.from({ length: 200 }, () => randomResizedCropParams(width, height, [0.2, 0.2], [1, 1], rng).left));
    assert.ok(lefts.size > 20, 'crop positions vary');
  });

  it('falls back to the largest centred crop of an allowed ratio when no attempt fits', () => {
    const crop = randomResizedCropParams(1000, 10, [0.9, 1], [3 / 4, 4 / 3], new Rng(1));
    assert.deepStrictEqual(crop, { top: 0, left: Math.floor((1000 - 13) / 2), width: 13, height: 10 });
  });

  it('refuses a crop that is not inside the image, instead of reading past it', () => {
    const image = noiseImage(10, 10);
    for (const crop of [{ top: 5, left: 5, width: 10, height: 10 }, { top: -1, left: 0, width: 4, height: 4 }, { top: 0, left: 0, width: 0, height: 3 }]) {
      assert.throws(() => render(image, identityParams(image, { crop }), 4), /is not inside the 10x10 image/);
    }
  });

  it('mirrors the view when flipping and changes nothing else', () => {
    const image = noiseImage(16, 16);
    const plain = render(image, identityParams(image));
    const flipped = render(image, identityParams(image, { flip: true }));
    assert.ok(maxAbsDifference(plain, flipped) > 0.1);
    for (let y = 0; y < 16; y++) {
      for (let x = 0; x < 16; x++) {
        for (let c = 0; c < 3; c++) {
          assert.strictEqual(flipped[(y * 16 + x) * 3 + c], plain[(y * 16 + (15 - x)) * 3 + c]);
        }
      }
    }
    // With every other random step off, flipP = 1 must produce the mirrored image.
    const cfg = plainConfig(16, { cropScale: [1, 1], cropRatio: [1, 1], jitterP: 0, grayscaleP: 0, blurP: 0, flipP: 1 });
    const out = new Float32Array(16 * 16 * 3);
    augmentView(image, cfg, new Rng(3), out, 0);
    assert.deepStrictEqual(out, flipped);
  });

  it('reproduces the pixels exactly when the crop is the whole image at the same size', () => {
    const image = noiseImage(10, 10);
    const view = render(image, identityParams(image));
    assert.ok(maxAbsDifference(view, Array.from(image.data, (v) => v / 255)) < 1e-6);
  });

  it('resizes with an antialiasing filter: a fine checkerboard shrinks to flat grey', () => {
    const checker: DecodedImage = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) };
    for (let i = 0; i < 64 * 64; i++) {
      checker.data.fill(((i % 64) + Math.floor(i / 64)) % 2 ? 255 : 0, i * 3, i * 3 + 3);
    }
    const view = render(checker, identityParams(checker), 16);
    assert.ok(view.every((v) => Math.abs(v - 0.5) < 0.01), `range ${Math.min(...view)}..${Math.max(...view)}`);
  });

  it('makes the three channels equal when converting to grayscale', () => {
    const image = noiseImage(12, 12);
    const view = render(image, identityParams(image, { grayscale: true }));
    for (let i = 0; i < view.length; i += 3) {
      assert.strictEqual(view[i], view[i + 1]);
      assert.strictEqual(view[i], view[i + 2]);
      const [r, g, b] = image.data.subarray(i, i + 3);
      assert.ok(Math.abs(view[i] - (0.299 * r + 0.587 * g + 0.114 * b) / 255) < 1e-5);
    }
    // And through augmentView with grayscaleP = 1, normalised per channel.
    const cfg = { ...defaultAugmentConfig(12), jitterP: 0, grayscaleP: 1 };
    const out = new Float32Array(12 * 12 * 3);
    augmentView(image, cfg, new Rng(1), out, 0);
    for (let i = 0; i < out.length; i += 3) {
      const raw = [0, 1, 2].map((c) => out[i + c] * cfg.std[c] + cfg.mean[c]);
      assert.ok(Math.abs(raw[0] - raw[1]) < 1e-5 && Math.abs(raw[0] - raw[2]) < 1e-5);
    }
  });

  it('applies colour jitter with torchvision semantics', () => {
    // Two rows of [pure red, a muted blue]; views are square, so the image is too.
    const colours: DecodedImage = { width: 2, height: 2, data: Uint8Array.from([255, 0, 0, 40, 80, 120, 255, 0, 0, 40, 80, 120]) };
    const jitter = (op: 'brightness' | 'contrast' | 'saturation' | 'hue', factor: number) => render(colours, identityParams(colours, { jitter: [{ op, factor }] }));
    const near = (actual: Float32Array, row: number[]) => {
      const expected = [...row, ...row];
      assert.ok(maxAbsDifference(actual, expected) < 1e-5, `${Array.from(actual)} vs ${expected}`);
    };
    near(jitter('brightness', 0.5), [0.5, 0, 0, 20 / 255, 40 / 255, 60 / 255]);
    near(jitter('brightness', 1.4), [1, 0, 0, 56 / 255, 112 / 255, 168 / 255]); // clamped at 1
    near(jitter('hue', 1 / 3), [0, 1, 0, 120 / 255, 40 / 255, 80 / 255]); // red turns green
    const greys = [0.299, 0.299, 0.299, (0.299 * 40 + 0.587 * 80 + 0.114 * 120) / 255];
    near(jitter('saturation', 0), [greys[0], greys[0], greys[0], greys[3], greys[3], greys[3]]);
    const meanGrey = (greys[0] + greys[3]) / 2;
    near(jitter('contrast', 0), [meanGrey, meanGrey, meanGrey, meanGrey, meanGrey, meanGrey]);
  });

  it('rotates hue as torchvision\'s RGB → HSV → RGB round trip does, for random colours and shifts', () => {
    // torchvision's _rgb2hsv / _hsv2rgb, per pixel, as the reference.
    const reference = (r: number, g: number, b: number, shift: number): number[] => {
      const max = Math.max(r, g, b);
      const chroma = max - Math.min(r, g, b);
      if (chroma === 0) return [r, g, b];
      const h = max === r ? (g - b) / chroma : max === g ? 2 + (b - r) / chroma : 4 + (r - g) / chroma;
      let hue = h / 6 + shift;
      hue -= Math.floor(hue);
      const s = chroma / max;
      const i = Math.floor(hue * 6);
      const f = hue * 6 - i;
      const [p, q, t] = [max * (1 - s), max * (1 - s * f), max * (1 - s * (1 - f))];
      return [[max, t, p], [q, max, p], [p, max, t], [p, q, max], [t, p, max], [max, p, q]][i % 6];
    };
    const image = noiseImage(8, 8, 11);
    for (let i = 0; i < 12; i++) image.data[i] = 77; // some grey pixels too
    for (const shift of [-0.1, -0.037, 0, 0.05, 0.1]) {
      const view = render(image, identityParams(image, { jitter: [{ op: 'hue', factor: shift }] }));
      for (let p = 0; p < 64; p++) {
        const expected = reference(image.data[p * 3] / 255, image.data[p * 3 + 1] / 255, image.data[p * 3 + 2] / 255, shift);
        assert.ok(maxAbsDifference(view.subarray(p * 3, p * 3 + 3), expected) < 1e-5, `pixel ${p}, shift ${shift}: ${Array.from(view.subarray(p * 3, p * 3 + 3))} vs ${expected}`);
      }
    }
  });

  it('blurs with a normalised Gaussian: a point spreads symmetrically and keeps its energy', () => {
    const size = 21;
    const point: DecodedImage = { width: size, height: size, data: new Uint8Array(size * size * 3) };
    point.data.fill(255, (10 * size + 10) * 3, (10 * size + 10) * 3 + 3);
    const view = render(point, identityParams(point, { blurSigma: 1.5 }));
    const at = (x: number, y: number) => view[(y * size + x) * 3];
    let total = 0;
    for (let i = 0; i < view.length; i += 3) {
      total += view[i];
    }
    assert.ok(Math.abs(total - 1) < 1e-4, `energy ${total}`);
    assert.ok(at(10, 10) < 0.2 && at(10, 10) > at(11, 10) && at(11, 10) > at(12, 10) && at(12, 10) > 0);
    assert.ok(Math.abs(at(9, 10) - at(11, 10)) < 1e-6 && Math.abs(at(10, 8) - at(12, 10)) < 1e-6);
  });

  it('gives identical views for the same seed and different ones for another seed', () => {
    const image = noiseImage(50, 40);
    const cfg = defaultAugmentConfig(32);
    const views = (seed: number) => {
      const out = new Float32Array(32 * 32 * 3 * 4);
      const rng = new Rng(seed);
      for (let v = 0; v < 4; v++) {
        augmentView(image, cfg, rng, out, v * 32 * 32 * 3);
      }
      return out;
    };
    assert.deepStrictEqual(views(7), views(7));
    assert.ok(maxAbsDifference(views(7), views(8)) > 0.5);
    const [a, b] = [views(7).subarray(0, 3072), views(7).subarray(3072, 6144)];
    assert.ok(maxAbsDifference(a, b) > 0.5, 'two views of one image differ');
  });

  it('draws every random step at its configured probability', () => {
    const cfg = defaultAugmentConfig(224);
    const rng = new Rng(4);
    const n = 4000;
    let jitter = 0;
    let grey = 0;
    let blur = 0;
    let flip = 0;
    for (let i = 0; i < n; i++) {
      const params = sampleViewParams(300, 200, cfg, rng);
      jitter += params.jitter.length > 0 ? 1 : 0;
      grey += params.grayscale ? 1 : 0;
      flip += params.flip ? 1 : 0;
      if (params.blurSigma !== null) {
        blur += 1;
        assert.ok(params.blurSigma >= 0.1 && params.blurSigma <= 2);
      }
      for (const { op, factor } of params.jitter) {
        const [lo, hi] = op === 'hue' ? [-0.1, 0.1] : [0.6, 1.4];
        assert.ok(factor >= lo && factor <= hi, `${op} ${factor}`);
      }
    }
    const near = (count: number, p: number) => Math.abs(count / n - p) < 0.03;
    assert.ok(near(jitter, 0.8) && near(grey, 0.2) && near(blur, 0.5) && near(flip, 0.5), JSON.stringify({ jitter, grey, blur, flip }));
  });

  it('centre view: deterministic, the centre square, unchanged when the short side already equals the size', () => {
    const wide = noiseImage(40, 32);
    const out = new Float32Array(32 * 32 * 3);
    centerView(wide, 32, [0, 0, 0], [1, 1, 1], out, 0);
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        for (let c = 0; c < 3; c++) {
          assert.ok(Math.abs(out[(y * 32 + x) * 3 + c] - wide.data[(y * 40 + x + 4) * 3 + c] / 255) < 1e-6);
        }
      }
    }
    const large = noiseImage(97, 131);
    const first = new Float32Array(16 * 16 * 3);
    const second = new Float32Array(16 * 16 * 3);
    centerView(large, 16, IMAGENET_MEAN, IMAGENET_STD, first, 0);
    centerView(large, 16, IMAGENET_MEAN, IMAGENET_STD, second, 0);
    assert.deepStrictEqual(first, second);
    assert.ok(first.every(Number.isFinite));
  });
});
