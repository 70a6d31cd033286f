/**
 * The augmentation preview: a few images of a folder, each with several pairs of views exactly as
 * the trainer renders them. Nothing here is an imitation of the loader: the images come from the
 * same scan, the same epoch order and the same drop_last arithmetic, and each pair is drawn from
 * the random stream of the (seed, epoch, batch, slot) where the trainer meets that image, through
 * the same augmentView. Pair j of an image is its pair in the j-th epoch (from `epoch` on) that
 * trains it, so the pairs show what the model sees of one image over training.
 *
 * The result holds the normalised float views the trainer feeds the model; viewBytes turns one
 * back into displayable RGB, and previewPng lays them out in one PNG (the CLI's `simsiam preview`).
 * No tfjs here: the engine process and the CLI both call it.
 */
import * as path from 'path';
import sharp from 'sharp';
import { augmentConfigFor, augmentView, decodeShortSideFor, type AugmentConfig } from './augment';
import { batchesPerEpoch } from './batchLoader';
import { scanDataset, type ImageRecord } from './dataset';
import { decodeImage, ImageDecodeError, type DecodedImage } from './imageDecode';
import { deriveSeed, Rng } from './rng';
import type { TrainConfig } from '../config';
import { defaultRunsDir } from '../run/runStore';

/**
 * batchLoader.ts's VIEW_STREAM (module-private there): a slot's two views come from
 * (seed, epoch, batch, VIEW_STREAM, slot). test/unit/preview.test.ts compares the preview's pixels
 * with the real loader's, so a change on either side fails it.
 */
const VIEW_STREAM = 0x71e3;

export const PREVIEW_LIMITS = { images: 16, pairs: 8, epochsSearched: 64 } as const;

export interface PreviewOptions {
  folder: string;
  /** The resolved config a run would train with: its seed, batch size, test fraction, image size and augmentation. */
  config: TrainConfig;
  /** Left out of the scan like the trainer leaves it; default <folder>/.simsiam/runs. */
  runsDir?: string;
  /** Images shown; default 4. */
  images?: number;
  /** Pairs of views per image; default 3. */
  pairs?: number;
  /** The first epoch whose views are shown; default 0. */
  epoch?: number;
}

export interface PreviewPair {
  /** Where the trainer renders this pair. */
  epoch: number;
  batch: number;
  slot: number;
  /** size*size*3 normalised floats each (HWC), as the model receives them. */
  view1: Float32Array;
  view2: Float32Array;
}

export interface PreviewImage {
  path: string;
  /** Relative to the dataset root, '/'-separated. */
  relPath: string;
  label: string | null;
  pairs: PreviewPair[];
}

export interface AugmentationPreview {
  size: number;
  augment: AugmentConfig;
  images: PreviewImage[];
  /** What a person should know: files that could not be read, epochs in which an image is not trained. */
  notes: string[];
}

/** The order the loader gives `epoch` (TwoViewLoader.epochOrder): a shuffle of all record indices. */
export function epochOrder(seed: number, epoch: number, count: number): number[] {
  return new Rng(deriveSeed(seed, epoch)).shuffle(Array.from({ length: count }, (_, i) => i));
}

/** The two views the trainer renders for the image in `slot` of `batch` of `epoch`. */
export function renderPair(image: DecodedImage, augment: AugmentConfig, seed: number, epoch: number, batch: number, slot: number):
  { view1: Float32Array; view2: Float32Array } {
  const floats = augment.size * augment.size * 3;
  const rng = new Rng(deriveSeed(seed, epoch, batch, VIEW_STREAM, slot));
  const view1 = new Float32Array(floats);
  const view2 = new Float32Array(floats);
  augmentView(image, augment, rng, view1, 0);
  augmentView(image, augment, rng, view2, 0);
  return { view1, view2 };
}

function count(value: number | undefined, fallback: number, max: number, name: string): number {
  const n = value ?? fallback;
  if (!(Number.isInteger(n) && n >= 1 && n <= max)) throw new Error(`The preview's ${name} must be a whole number from 1 to ${max} (got ${n}).`);
  return n;
}

export async function renderPreview(options: PreviewOptions): Promise<AugmentationPreview> {
  const { config } = options;
  const wanted = count(options.images, 4, PREVIEW_LIMITS.images, 'image count');
  const pairs = count(options.pairs, 3, PREVIEW_LIMITS.pairs, 'pair count');
  const firstEpoch = options.epoch ?? 0;
  if (!(Number.isInteger(firstEpoch) && firstEpoch >= 0)) throw new Error(`The preview's epoch must be a whole number from 0 (got ${firstEpoch}).`);
  const folder = path.resolve(options.folder);
  const scan = await scanDataset(folder, {
    excludeDirs: [path.resolve(options.runsDir ?? defaultRunsDir(folder))], testFraction: config.testFraction, seed: config.seed,
  });
  const records = scan.train;
  const batches = batchesPerEpoch(records.length, config.batchSize);
  if (batches === 0) {
    throw new Error(`${folder} has ${records.length} training images, fewer than one batch of ${config.batchSize}: ` +
      'the trainer would refuse it, so there are no views to show. Add images or lower the batch size.');
  }
  const augment = augmentConfigFor(config);
  const notes: string[] = [];
  const chosen = await firstReadable(records, epochOrder(config.seed, firstEpoch, records.length).slice(0, batches * config.batchSize),
    wanted, decodeShortSideFor(augment), notes);
  const orders = new Map<number, number[]>();
  const orderOf = (epoch: number) => {
    if (!orders.has(epoch)) orders.set(epoch, epochOrder(config.seed, epoch, records.length));
    return orders.get(epoch)!;
  };
  const images: PreviewImage[] = [];
  for (const { index, image } of chosen) {
    const record = records[index];
    images.push({
      path: record.path, relPath: record.relPath, label: record.label === null ? null : scan.classes[record.label],
      pairs: pairsOf(index, record.relPath, image, orderOf, batches, config, augment, firstEpoch, pairs, notes),
    });
  }
  return { size: augment.size, augment, images, notes };
}

/**
 * The first `wanted` images of the epoch's order that decode, at the size the loader decodes them.
 * The trainer leaves unreadable files out before its loader exists, which shifts every later
 * index of its order: say so, since the views then belong to another order than the trainer's.
 */
async function firstReadable(records: ImageRecord[], order: number[], wanted: number, shortSide: number, notes: string[]):
  Promise<{ index: number; image: DecodedImage }[]> {
  const chosen: { index: number; image: DecodedImage }[] = [];
  for (const index of order) {
    if (chosen.length === wanted) break;
    try {
      chosen.push({ index, image: await decodeImage(records[index].path, shortSide) });
    } catch (error) {
      if (!(error instanceof ImageDecodeError)) throw error;
      notes.push(`${records[index].relPath} cannot be read (${error.reason}): the trainer leaves it out, so its epochs are ` +
        'ordered differently from these. Replace or remove the file.');
    }
  }
  return chosen;
}

/** The image's pair in each of the first `pairs` epochs from `firstEpoch` that train it (drop_last leaves some images out of an epoch). */
function pairsOf(index: number, relPath: string, image: DecodedImage, orderOf: (epoch: number) => number[], batches: number, config: TrainConfig, augment: AugmentConfig,
  firstEpoch: number, pairs: number, notes: string[]): PreviewPair[] {
  const found: PreviewPair[] = [];
  const trained = batches * config.batchSize;
  for (let epoch = firstEpoch; found.length < pairs && epoch < firstEpoch + PREVIEW_LIMITS.epochsSearched; epoch++) {
    const position = orderOf(epoch).indexOf(index);
    if (position >= trained) continue;
    const batch = Math.floor(position / config.batchSize);
    const slot = position % config.batchSize;
    found.push({ epoch, batch, slot, ...renderPair(image, augment, config.seed, epoch, batch, slot) });
  }
  if (found.length < pairs) notes.push(`${relPath} is trained in only ${found.length} of ${PREVIEW_LIMITS.epochsSearched} epochs from epoch ${firstEpoch}.`);
  return found;
}

/** A view as 8-bit RGB (HWC): the normalisation undone, clamped and rounded. */
export function viewBytes(view: Float32Array, augment: Pick<AugmentConfig, 'mean' | 'std'>): Uint8Array {
  const bytes = new Uint8Array(view.length);
  for (let i = 0; i < view.length; i++) {
    const c = i % 3;
    const value = (view[i] * augment.std[c] + augment.mean[c]) * 255;
    bytes[i] = Math.min(255, Math.max(0, Math.round(value)));
  }
  return bytes;
}

/** Views smaller than this are enlarged (nearest neighbour) in the PNG, so 32 px views can be seen. */
const MIN_SHOWN_SIDE = 96;
const GAP = 4;
const PAIR_GAP = 16;
const BACKGROUND = 255;

/**
 * One PNG: a row per image, its pairs left to right (each pair's two views side by side, a wider
 * gap between pairs), on white.
 */
export async function previewPng(preview: AugmentationPreview): Promise<Buffer> {
  const scale = Math.max(1, Math.ceil(MIN_SHOWN_SIDE / preview.size));
  const side = preview.size * scale;
  const pairs = Math.max(1, ...preview.images.map((image) => image.pairs.length));
  const width = GAP * 2 + pairs * (2 * side + GAP) + (pairs - 1) * PAIR_GAP;
  const rows = Math.max(1, preview.images.length);
  const height = GAP + rows * (side + GAP);
  const canvas = Buffer.alloc(width * height * 3, BACKGROUND);
  const paste = (bytes: Uint8Array, left: number, top: number) => {
    for (let y = 0; y < side; y++) {
      const sourceRow = Math.floor(y / scale) * preview.size;
      for (let x = 0; x < side; x++) {
        const from = (sourceRow + Math.floor(x / scale)) * 3;
        const to = ((top + y) * width + left + x) * 3;
        canvas[to] = bytes[from];
        canvas[to + 1] = bytes[from + 1];
        canvas[to + 2] = bytes[from + 2];
      }
    }
  };
  preview.images.forEach((image, row) => {
    const top = GAP + row * (side + GAP);
    image.pairs.forEach((pair, p) => {
      const left = GAP + p * (2 * side + GAP + PAIR_GAP);
      paste(viewBytes(pair.view1, preview.augment), left, top);
      paste(viewBytes(pair.view2, preview.augment), left + side + GAP, top);
    });
  });
  return sharp(canvas, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

// ---- the engine's message ------------------------------------------------------------------

/** The fields of the engine's `previewResult` message: each view as base64 of its 8-bit RGB bytes. */
export interface PreviewResultFields {
  size: number;
  images: {
    relPath: string;
    label: string | null;
    pairs: { epoch: number; batch: number; slot: number; view1: string; view2: string }[];
  }[];
  notes: string[];
}

export function previewResultFields(preview: AugmentationPreview): PreviewResultFields {
  const encode = (view: Float32Array) => Buffer.from(viewBytes(view, preview.augment)).toString('base64');
  return {
    size: preview.size,
    images: preview.images.map((image) => ({
      relPath: image.relPath, label: image.label,
      pairs: image.pairs.map(({ epoch, batch, slot, view1, view2 }) => ({ epoch, batch, slot, view1: encode(view1), view2: encode(view2) })),
    })),
    notes: preview.notes,
  };
}
