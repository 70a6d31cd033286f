/**
 * Two-view augmentation throughput: what a loader worker thread does per batch
 * (assembleTwoViewBatch: decode with sharp, four files in flight, then two SimSiam views per image
 * in plain JS), at 32 and 224 px, from JPEG and from PNG photos. "decode + augment" starts from the
 * files each time (an uncached dataset, or the first epoch); "augment only" starts from decoded
 * pixels held in the cache (every later epoch while the dataset fits in maxCachedImages).
 * Then the whole TwoViewLoader (worker threads, messages, joining the parts of a batch), from its
 * cache and from the files, with one thread and with one per core: what the trainer is fed.
 */
import * as os from 'os';
import * as path from 'path';
import { defaultAugmentConfig, decodeShortSideFor } from '../src/training/data/augment';
import { assembleTwoViewBatch, TwoViewLoader, type LoaderWorkerInit } from '../src/training/data/batchLoader';
import type { ImageRecord } from '../src/training/data/dataset';
import { DecodedImageCache } from '../src/training/data/imageDecode';
import { writeSyntheticImages, type ImageFormat } from './syntheticImages';
import { formatMs, formatRate, formatSpread, rate, spreadOf, table, timeRepeats, type Spread } from './timing';
import type { BenchContext } from './context';

/** A typical ImageNet photo; both output sizes crop from it. */
const SOURCE_WIDTH = 500;
const SOURCE_HEIGHT = 375;
const BATCH = 32;
const SIZES = [32, 224];
const FORMATS: ImageFormat[] = ['jpeg', 'png'];

export interface AugmentFigures {
  size: number;
  format: ImageFormat;
  decodeAndAugmentMs: Spread;
  augmentOnlyMs: Spread;
  /** Two-view images per second, from files and from cached pixels. */
  decodeAndAugmentPerSecond: Spread;
  augmentOnlyPerSecond: Spread;
}

export interface LoaderFigures {
  size: number;
  threads: number;
  /** From decoded pixels in the cache, or decoding every file. */
  cached: boolean;
  /** Two-view images per second delivered by TwoViewLoader.epoch. */
  perSecond: Spread;
}

/** Batches per loader epoch: enough in flight to keep every thread busy. */
const LOADER_BATCHES = 4;

/** decodeImage never enlarges: a source smaller than the loader asks for is decoded as it is. */
function decodedShortSide(size: number): number {
  return Math.min(decodeShortSideFor(defaultAugmentConfig(size)), SOURCE_WIDTH, SOURCE_HEIGHT);
}

export async function benchAugment(context: BenchContext): Promise<{ perThread: AugmentFigures[]; loader: LoaderFigures[] }> {
  context.heading(`Two-view augmentation (loader worker's batch: decode + 2 views), batch of ${BATCH} ` +
    `${SOURCE_WIDTH}x${SOURCE_HEIGHT} photos, one thread + sharp's pool`);
  const sources: Record<ImageFormat, string[]> = { jpeg: [], png: [] };
  for (const format of FORMATS) {
    sources[format] = await writeSyntheticImages(path.join(context.workDir, `augment-${format}`), {
      count: BATCH, width: SOURCE_WIDTH, height: SOURCE_HEIGHT, format, seed: 11,
    });
  }
  const figures: AugmentFigures[] = [];
  for (const size of SIZES) {
    const augment = defaultAugmentConfig(size);
    const shortSide = decodeShortSideFor(augment);
    for (const format of FORMATS) {
      const init: LoaderWorkerInit = { paths: sources[format], augment, seed: 0, maxCachedImages: BATCH };
      const slots = sources[format].map((_, i) => i);
      let batchIndex = 0;
      const views = () => new Float32Array(BATCH * size * size * 3);
      const assemble = (cache: DecodedImageCache) => () =>
        assembleTwoViewBatch(init, { jobId: 0, epoch: 0, batch: batchIndex++, slots, indices: slots, view1: views(), view2: views() }, cache);
      const decodeAndAugmentMs = spreadOf(await timeRepeats(context.warmUp, context.repeats, assemble(new DecodedImageCache(0, shortSide))));
      // The warm-up run fills the cache, so the timed runs only augment.
      const augmentOnlyMs = spreadOf(await timeRepeats(Math.max(1, context.warmUp), context.repeats,
        assemble(new DecodedImageCache(BATCH, shortSide))));
      figures.push({
        size, format, decodeAndAugmentMs, augmentOnlyMs,
        decodeAndAugmentPerSecond: rate(BATCH, decodeAndAugmentMs), augmentOnlyPerSecond: rate(BATCH, augmentOnlyMs),
      });
    }
  }
  const rows = [['view size, source', 'decode+augment img/s', 'augment only img/s', 'decode share', 'batch time (decode+augment)']];
  for (const f of figures) {
    const decodeShare = 1 - f.augmentOnlyMs.median / f.decodeAndAugmentMs.median;
    rows.push([
      `${f.size} px from ${f.format.toUpperCase()} (decoded at ${decodedShortSide(f.size)} px short side)`,
      formatRate(f.decodeAndAugmentPerSecond.median), formatRate(f.augmentOnlyPerSecond.median),
      `${Math.round(100 * Math.max(0, decodeShare))} %`, formatSpread(f.decodeAndAugmentMs, formatMs),
    ]);
  }
  context.print(table(rows));
  context.print('  (img/s = images per second, two views each, median of the timed batches)');
  return { perThread: figures, loader: await benchLoader(context, sources.jpeg) };
}

/** TwoViewLoader epochs over the cached JPEGs, with one thread and with one per core. */
async function benchLoader(context: BenchContext, files: string[]): Promise<LoaderFigures[]> {
  const cores = os.availableParallelism();
  const threadCounts = [...new Set([1, cores])];
  context.print(`\n  The whole TwoViewLoader: ${LOADER_BATCHES} batches of ${BATCH / 2} JPEGs per epoch, one epoch per timed run, ` +
    `${threadCounts.join(' and ')} thread(s); from its cache (filled by the warm-up), and from the files (no cache)`);
  const records: ImageRecord[] = files.map((file) => ({ path: file, relPath: path.basename(file), label: null, split: 'train' }));
  const batchSize = BATCH / 2;
  const epochRecords = Array.from({ length: LOADER_BATCHES * batchSize }, (_, i) => records[i % records.length]);
  const figures: LoaderFigures[] = [];
  for (const size of SIZES) {
    for (const cached of [true, false]) {
      for (const threads of threadCounts) {
        const loader = new TwoViewLoader(epochRecords, {
          augment: defaultAugmentConfig(size), batchSize, seed: 0, maxCachedImages: cached ? epochRecords.length : 0, prefetch: 2 * threads, threads,
        });
        try {
          let epoch = 0;
          const ms = spreadOf(await timeRepeats(Math.max(1, context.warmUp), context.repeats, async () => {
            for await (const batch of loader.epoch(epoch++)) {
              void batch;
            }
          }));
          figures.push({ size, threads, cached, perSecond: rate(epochRecords.length, ms) });
        } finally {
          await loader.close();
        }
      }
    }
  }
  const rows = [['view size, source', ...threadCounts.map((t) => `${t} thread${t > 1 ? 's' : ''} img/s`)]];
  for (const size of SIZES) {
    for (const cached of [true, false]) {
      rows.push([`${size} px from ${cached ? 'the cache' : 'JPEG files'}`, ...threadCounts.map((t) =>
        formatRate(figures.find((f) => f.size === size && f.threads === t && f.cached === cached)!.perSecond.median))]);
    }
  }
  context.print(table(rows));
  return figures;
}
