// A labelled folder made to hold one of each thing the data views look for, and a run folder with
// a checkpoint of a fresh tiny model (no training: what the views need is an embedding that keeps
// colour and texture apart, which a random convolutional network already does):
//   red/, blue/   smooth images in shades of their colour;
//   red/dup.png   a byte-for-byte copy of red/r0.png (a near-duplicate pair);
//   blue/oops.png a red image filed under blue/ (a label issue);
//   red/noise.png black-and-white noise, unlike anything else (an outlier).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { resolveConfig, type TrainConfig } from '../../src/training/config';
import { buildSimSiam } from '../../src/training/model/simsiam';
import { saveCheckpoint } from '../../src/training/run/checkpoint';
import { Rng } from '../../src/training/data/rng';
import { writeFinishedRun } from './runFolders';

export const VIEW_CONFIG: TrainConfig = resolveConfig('tiny', { imageSize: 16, projectorDim: 32, predictorHiddenDim: 8, batchSize: 4, backend: 'wasm' });

const SIZE = 24;

/** A smooth image around `rgb`, with a gentle gradient and a little noise from `seed`. */
async function writeShade(file: string, rgb: [number, number, number], seed: number): Promise<void> {
  const rng = new Rng(seed);
  const pixels = Buffer.alloc(SIZE * SIZE * 3);
  const tilt = rng.uniform(-30, 30);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      for (let c = 0; c < 3; c++) {
        const value = rgb[c] + (tilt * (x + y)) / (2 * SIZE) + rng.uniform(-10, 10);
        pixels[(y * SIZE + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(value)));
      }
    }
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(pixels, { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toFile(file);
}

async function writeNoise(file: string, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const pixels = Buffer.alloc(SIZE * SIZE * 3);
  for (let p = 0; p < SIZE * SIZE; p++) pixels.fill(rng.next() < 0.5 ? 0 : 255, p * 3, p * 3 + 3);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(pixels, { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toFile(file);
}

export interface ViewFolder {
  root: string;
  data: string;
  runDir: string;
  duplicate: [string, string];
  mislabelled: string;
  outlier: string;
}

export async function makeViewFolder(images = 8): Promise<ViewFolder> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-views-'));
  const data = path.join(root, 'data');
  for (let i = 0; i < images; i++) {
    await writeShade(path.join(data, 'red', `r${i}.png`), [200 + (i % 3) * 15, 40 + (i % 4) * 10, 40], 100 + i);
    await writeShade(path.join(data, 'blue', `b${i}.png`), [40, 60 + (i % 4) * 10, 200 + (i % 3) * 15], 200 + i);
  }
  const duplicate: [string, string] = [path.join(data, 'red', 'r0.png'), path.join(data, 'red', 'dup.png')];
  fs.copyFileSync(duplicate[0], duplicate[1]);
  const mislabelled = path.join(data, 'blue', 'oops.png');
  await writeShade(mislabelled, [215, 50, 40], 999);
  const outlier = path.join(data, 'red', 'noise.png');
  await writeNoise(outlier, 7);
  const count = 2 * images + 3;
  const runDir = writeFinishedRun(path.join(root, 'runs'), 'views-test', VIEW_CONFIG, { root: data, trainImages: count, testImages: 0, classes: ['blue', 'red'] });
  await writeViewCheckpoint(runDir, 10);
  return { root, data, runDir, duplicate, mislabelled, outlier };
}

/** A checkpoint of a fresh model at `step` (a newer step makes the index and the map stale). */
export async function writeViewCheckpoint(runDir: string, step: number, seed = 0): Promise<void> {
  const model = buildSimSiam({ ...VIEW_CONFIG, seed });
  await saveCheckpoint(runDir, model, {}, step, step / 10);
  model.dispose();
}
