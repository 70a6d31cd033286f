/**
 * Image folders for the benchmarks, written with sharp into a temp dir: no dataset has to be
 * downloaded, and every run measures the same files. The pictures are smooth colour gradients with
 * a few flat shapes and light noise, so that JPEG and PNG compress (and decode) roughly as they do
 * for photos; random noise would make PNG files several times larger than any real picture.
 */
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { Rng } from '../src/training/data/rng';

export type ImageFormat = 'jpeg' | 'png';

export interface SyntheticImageOptions {
  count: number;
  width: number;
  height: number;
  format: ImageFormat;
  seed: number;
  /** Spread the files over this many class folders (class0, class1, …); 0 writes them flat. */
  classes?: number;
}

const NOISE_AMPLITUDE = 6;
const SHAPES_PER_IMAGE = 4;

/** Writes the images under `dir` and returns their paths, in the order written. */
export async function writeSyntheticImages(dir: string, options: SyntheticImageOptions): Promise<string[]> {
  const rng = new Rng(options.seed);
  const classes = options.classes ?? 0;
  const files: string[] = [];
  for (let i = 0; i < options.count; i++) {
    const folder = classes > 0 ? path.join(dir, `class${i % classes}`) : dir;
    if (i < Math.max(1, classes)) fs.mkdirSync(folder, { recursive: true });
    const pixels = syntheticPixels(options.width, options.height, rng);
    const image = sharp(pixels, { raw: { width: options.width, height: options.height, channels: 3 } });
    const encoded = options.format === 'jpeg' ? image.jpeg({ quality: 90 }) : image.png();
    const file = path.join(folder, `${String(i).padStart(5, '0')}.${options.format === 'jpeg' ? 'jpg' : 'png'}`);
    await encoded.toFile(file);
    files.push(file);
  }
  return files;
}

function syntheticPixels(width: number, height: number, rng: Rng): Buffer {
  const corner = () => [rng.int(256), rng.int(256), rng.int(256)];
  const [topLeft, topRight, bottomLeft, bottomRight] = [corner(), corner(), corner(), corner()];
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    const v = y / Math.max(1, height - 1);
    for (let x = 0; x < width; x++) {
      const u = x / Math.max(1, width - 1);
      for (let c = 0; c < 3; c++) {
        const top = topLeft[c] + (topRight[c] - topLeft[c]) * u;
        const bottom = bottomLeft[c] + (bottomRight[c] - bottomLeft[c]) * u;
        pixels[(y * width + x) * 3 + c] = top + (bottom - top) * v;
      }
    }
  }
  for (let s = 0; s < SHAPES_PER_IMAGE; s++) {
    const colour = corner();
    const w = 1 + rng.int(Math.max(1, width >> 1));
    const h = 1 + rng.int(Math.max(1, height >> 1));
    const left = rng.int(width - w + 1);
    const top = rng.int(height - h + 1);
    for (let y = top; y < top + h; y++) {
      for (let x = left; x < left + w; x++) pixels.set(colour, (y * width + x) * 3);
    }
  }
  for (let i = 0; i < pixels.length; i++) {
    pixels[i] = Math.min(255, Math.max(0, pixels[i] + rng.int(2 * NOISE_AMPLITUDE + 1) - NOISE_AMPLITUDE));
  }
  return pixels;
}
