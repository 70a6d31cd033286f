/**
 * Two-view augmentation throughput: what the loader's worker thread does per batch
 * (assembleTwoViewBatch: decode with sharp, four files in flight, then two SimSiam views per image
 * in plain JS), at 32 and 224 px, from JPEG and from PNG photos. "decode + augment" starts from the
 * files each time (an uncached dataset, or the first epoch); "augment only" starts from decoded
 * pixels held in the cache (every later epoch while the dataset fits in maxCachedImages).
 */
import * as path from 'path';
import { defaultAugmentConfig, decodeShortSideFor } from '../src/training/augment';
import { assembleTwoViewBatch, type LoaderWorkerInit } from '../src/training/batchLoader';
import { DecodedImageCache } from '../src/training/imageDecode';
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

/** decodeImage never enlarges: a source smaller than the loader asks for is decoded as it is. */
function decodedShortSide(size: number): number {
  return Math.min(decodeShortSideFor(defaultAugmentConfig(size)), SOURCE_WIDTH, SOURCE_HEIGHT);
}

export async function benchAugment(context: BenchContext): Promise<AugmentFigures[]> {
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
      const init: LoaderWorkerInit = { paths: sources[format], augment, batchSize: BATCH, seed: 0, maxCachedImages: BATCH };
      let batchIndex = 0;
      const assemble = (cache: DecodedImageCache) => () =>
        assembleTwoViewBatch(init, { jobId: 0, epoch: 0, batch: batchIndex++, indices: sources[format].map((_, i) => i) }, cache);
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
  return figures;
}
