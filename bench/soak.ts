/**
 * Soak test (issue 6): trains on a folder (default: the bundled Fashion-MNIST sample) for a fixed
 * time and samples the process's memory before, at the start and every interval: RSS, V8 heap,
 * external and ArrayBuffer memory, libvips' cache, and tf.memory()'s tensor count and bytes on the
 * training thread. Prints the curve and a verdict. The first epoch is warm-up (the wasm heap grows
 * to a step's working set and never shrinks); after it, RSS may grow only by what the image cache
 * is still allowed to take (the loader's, computed from the images' sizes) plus a
 * fixed allowance for allocator and JIT noise, must not keep climbing, and the live tensors must
 * stay constant and be released when the run ends. Anything beyond that is a leak that a day-long
 * run would turn into a crash.
 *
 *   npm run soak -- [--minutes 30] [--interval 1] [--folder sample/fashion-mnist] [--preset tiny]
 *                   [--backend auto] [--threads n] [--keep]
 *
 * Run with --expose-gc (npm run soak does): each sample is taken after a full collection, so the
 * heap figures show what is retained, not what is waiting to be collected.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command, InvalidArgumentError, Option } from 'commander';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { BACKEND_CHOICES, resolveConfig, type PresetName, type TrainConfig } from '../src/training/config';
import { scanDataset, type ImageRecord } from '../src/training/data/dataset';
import { decodeShortSideFor, defaultAugmentConfig } from '../src/training/data/augment';
import { StopSignal, startTraining } from '../src/training/trainer';
import type { EngineMessage } from '../src/training/protocol';

const MIB = 1024 * 1024;
/** Growth tolerated on top of the cache bounds: wasm memory pages, V8 code and heap, malloc arenas. */
const NOISE_ALLOWANCE = 64 * MIB;
/** A trend fitted to fewer samples than this is noise; the verdict then rests on the growth budget alone. */
const MIN_TREND_SAMPLES = 10;
/**
 * Samples from the first epoch are warm-up: the first steps and the first kNN evaluation grow the
 * wasm heap to its working size (it never shrinks), the JIT compiles, the caches fill.
 */
const WARM_UP_EPOCHS = 1;
const SAMPLE_FOLDER = path.join(__dirname, '..', '..', 'sample', 'fashion-mnist');
/** Enough epochs never to finish: the soak ends by time, with a stop request. */
const UNENDING_EPOCHS = 1_000_000;

interface Sample {
  label: string;
  minutes: number;
  step: number;
  epoch: number;
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  numTensors: number;
  tensorBytes: number;
  /**
   * libvips' operation cache (process-wide, the loader's worker shares it): pixels held outside the
   * trainer's own caches, were decodes to go through it.
   */
  vipsCache: number;
  /** Training throughput since the previous sample. */
  imagesPerSecond: number | null;
}

/** Bytes decodeImage keeps for an image: 3 per pixel after downscaling the shorter side to at most maxShortSide. */
function decodedBytes(width: number, height: number, maxShortSide: number): number {
  const scale = Math.min(1, maxShortSide / Math.min(width, height));
  return Math.round(width * scale) * Math.round(height * scale) * 3;
}

/** The largest `count` of `sizes`, summed: what a first-N cache can hold at most, whichever N it keeps. */
function largestSum(sizes: number[], count: number): number {
  return [...sizes].sort((a, b) => b - a).slice(0, count).reduce((sum, bytes) => sum + bytes, 0);
}

interface CacheBound {
  /** The loader's cache: training images at the crop decode size. It fills while training. */
  loader: number;
  /** The kNN monitor's: training and held-out images at the input size, when labelled. Full by the first sample. */
  monitor: number;
}

/** What the trainer's decoded-image caches may hold, from the images' sizes. */
async function imageCacheBound(train: ImageRecord[], test: ImageRecord[], labelled: boolean, config: TrainConfig): Promise<CacheBound> {
  const dims = async (record: ImageRecord) => {
    const meta = await sharp(record.path).metadata().catch(() => undefined);
    return meta?.width && meta.height ? { width: meta.width, height: meta.height } : null;
  };
  const trainDims = (await Promise.all(train.map(dims))).filter((d) => d !== null);
  const testDims = (await Promise.all(test.map(dims))).filter((d) => d !== null);
  const loaderSide = decodeShortSideFor(defaultAugmentConfig(config.imageSize));
  return {
    loader: largestSum(trainDims.map((d) => decodedBytes(d.width, d.height, loaderSide)), config.maxCachedImages),
    monitor: labelled
      ? largestSum([...trainDims, ...testDims].map((d) => decodedBytes(d.width, d.height, config.imageSize)), config.maxCachedImages)
      : 0,
  };
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  return sxx === 0 ? 0 : xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0) / sxx;
}

const mib = (bytes: number) => (bytes / MIB).toFixed(1);
const signedMib = (bytes: number) => `${bytes >= 0 ? '+' : ''}${mib(bytes)}`;

function printTable(samples: Sample[]): void {
  const header = ['sample', 'min', 'step', 'epoch', 'img/s', 'RSS MiB', 'heap MiB', 'external MiB', 'arrayBuf MiB', 'vips MiB', 'tensors', 'tensor MiB'];
  const rows = samples.map((s) => [
    s.label, s.minutes.toFixed(1), String(s.step), String(s.epoch), s.imagesPerSecond === null ? '-' : s.imagesPerSecond.toFixed(1),
    mib(s.rss), mib(s.heapUsed), mib(s.external), mib(s.arrayBuffers), mib(s.vipsCache), String(s.numTensors), mib(s.tensorBytes),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

interface Options {
  minutes: number;
  interval: number;
  folder: string;
  preset: PresetName;
  backend: string;
  threads?: number;
  keep: boolean;
}

async function soak(options: Options): Promise<boolean> {
  const folder = path.resolve(options.folder);
  const overrides = { epochs: UNENDING_EPOCHS, backend: options.backend, replicas: options.threads };
  const config = resolveConfig(options.preset, overrides);
  const scan = await scanDataset(folder, { testFraction: config.testFraction, seed: config.seed });
  const labelled = scan.classes.length > 1 && scan.test.length > 0;
  const bound = await imageCacheBound(scan.train, scan.test, labelled, config);
  const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-soak-'));
  console.log(`soak: ${options.minutes} min on ${folder} (${scan.train.length} train / ${scan.test.length} test images), preset ` +
    `${options.preset}, batch ${config.batchSize}, ${config.imageSize} px, sample every ${options.interval} min; runs in ${runsDir}`);
  console.log(`image caches may hold up to ${mib(bound.loader)} MiB (loader, fills while training) + ${mib(bound.monitor)} MiB ` +
    `(kNN monitor, full before training starts); allowance for allocator noise ${mib(NOISE_ALLOWANCE)} MiB` +
    (global.gc ? '' : '\nwarning: run with --expose-gc (npm run soak does) for heap figures without garbage'));

  const samples: Sample[] = [];
  let started = 0;
  let step = 0;
  let epoch = 0;
  let nextSampleAt = Infinity;
  let samplesTaken = 0;
  let deadline = Infinity;
  const stop = new StopSignal();
  const take = (label: string) => {
    global.gc?.();
    const now = Date.now();
    const usage = process.memoryUsage();
    const memory = tf.memory();
    const previous = samples.at(-1);
    const minutes = started ? (now - started) / 60_000 : 0;
    const seconds = (minutes - (previous?.minutes ?? 0)) * 60;
    samples.push({
      label, minutes, step, epoch, rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external,
      arrayBuffers: usage.arrayBuffers, numTensors: memory.numTensors, tensorBytes: memory.numBytes, vipsCache: sharp.cache().memory.current * MIB,
      imagesPerSecond: previous && started && seconds > 0 ? ((step - previous.step) * config.batchSize) / seconds : null,
    });
    const s = samples.at(-1)!;
    process.stderr.write(`  ${label.padEnd(8)} ${s.minutes.toFixed(1)} min  step ${step}  RSS ${mib(s.rss)} MiB  heap ${mib(s.heapUsed)} MiB  ` +
      `tensors ${s.numTensors}\n`);
  };
  const emit = (m: EngineMessage) => {
    switch (m.type) {
      case 'started':
        started = Date.now();
        deadline = started + options.minutes * 60_000;
        nextSampleAt = started + options.interval * 60_000;
        console.log(`backend ${m.backend}, ${m.batchesPerEpoch} steps per epoch`);
        take('start');
        return;
      case 'metric':
        if (m.record.kind === 'step') step = m.record.step;
        else if (m.record.kind === 'epoch') epoch = m.record.epoch;
        else return;
        break;
      case 'warning':
        console.log(`warning: ${m.message}`);
        return;
      default:
        return;
    }
    // Samples are taken between steps, where no step's temporaries are alive.
    const now = Date.now();
    if (now >= nextSampleAt) {
      // A step longer than the interval skips a slot rather than bunching samples together.
      while (nextSampleAt <= now) {
        samplesTaken += 1;
        nextSampleAt += options.interval * 60_000;
      }
      take(`${Number((samplesTaken * options.interval).toFixed(2))} min`);
    }
    if (now >= deadline) stop.request();
  };

  take('before');
  try {
    const done = await startTraining({ folder, config, runsDir, name: 'soak' }, emit, stop);
    take('after run');
    console.log(`\n${done.status} at step ${done.step} (epoch ${done.epoch}) after ${((Date.now() - started) / 60_000).toFixed(1)} min\n`);
  } finally {
    if (!options.keep) fs.rmSync(runsDir, { recursive: true, force: true });
  }
  printTable(samples);
  return verdict(samples, bound);
}

/**
 * Prints the figures the verdict rests on; true when memory stayed within bounds. Once the first
 * epoch is over, the loader's cache may still grow; the monitor's is already full.
 */
function verdict(samples: Sample[], bound: CacheBound): boolean {
  const before = samples[0];
  const after = samples.at(-1)!;
  const warm = samples.slice(1, -1).filter((s) => s.epoch >= WARM_UP_EPOCHS);
  const problems: string[] = [];
  let trendJudged = false;
  if (warm.length >= 2) {
    const baseline = warm[0];
    const rssGrowth = Math.max(...warm.map((s) => s.rss)) - baseline.rss;
    const budget = bound.loader + NOISE_ALLOWANCE;
    // The trend is fitted to the later half: a process settling (malloc arenas, the cache's last
    // images) climbs early and flattens, a leak climbs throughout.
    const later = warm.slice(Math.floor(warm.length / 2));
    const minutes = later.map((s) => s.minutes);
    const rssPerMinute = slope(minutes, later.map((s) => s.rss));
    const heapPerMinute = slope(minutes, later.map((s) => s.heapUsed));
    const tensors = warm.map((s) => s.numTensors);
    const tensorBytes = warm.map((s) => s.tensorBytes);
    console.log(`\nafter warm-up (epoch ${WARM_UP_EPOCHS} done, ${baseline.minutes.toFixed(1)} → ${warm.at(-1)!.minutes.toFixed(1)} min, ${warm.length} samples):`);
    console.log(`  RSS ${mib(baseline.rss)} → ${mib(warm.at(-1)!.rss)} MiB, peak growth ${signedMib(rssGrowth)} MiB ` +
      `(budget: loader cache ${mib(bound.loader)} + allowance ${mib(NOISE_ALLOWANCE)} = ${mib(budget)} MiB)`);
    console.log(`  trend over the later ${later.length} samples (${minutes[0].toFixed(1)} → ${minutes.at(-1)!.toFixed(1)} min): ` +
      `RSS ${signedMib(rssPerMinute)} MiB/min (${signedMib(rssPerMinute * 60)} MiB/h), heap ${signedMib(heapPerMinute)} MiB/min`);
    console.log(`  live tensors ${Math.min(...tensors)}–${Math.max(...tensors)}, ${mib(Math.min(...tensorBytes))}–${mib(Math.max(...tensorBytes))} MiB`);
    if (rssGrowth > budget) problems.push(`RSS grew ${mib(rssGrowth)} MiB after warm-up, more than the ${mib(budget)} MiB the caches and allowance explain`);
    // A steady climb that would use up the allowance within an hour is a leak even if this soak was too short to exceed it.
    if (later.length < MIN_TREND_SAMPLES) {
      console.log(`  (trend not judged: ${later.length} samples in the later half, ${MIN_TREND_SAMPLES} needed; run longer or sample more often)`);
    } else {
      trendJudged = true;
      if (rssPerMinute * 60 > NOISE_ALLOWANCE) problems.push(`RSS keeps climbing at ${mib(rssPerMinute)} MiB/min after warm-up`);
    }
    if (Math.max(...tensors) !== Math.min(...tensors) || Math.max(...tensorBytes) !== Math.min(...tensorBytes)) {
      problems.push('the number or size of live tensors changed after warm-up: tensors leak');
    }
  } else {
    problems.push(`too short: fewer than 2 samples after epoch ${WARM_UP_EPOCHS}; run longer (--minutes) or sample more often (--interval)`);
  }
  console.log(`  tensors before the run ${before.numTensors}, after it ${after.numTensors}`);
  if (after.numTensors !== before.numTensors) problems.push(`the finished run left ${after.numTensors - before.numTensors} tensors alive`);
  console.log(problems.length ? `\nverdict: FAIL\n  ${problems.join('\n  ')}`
    : `\nverdict: PASS: no memory growth beyond the image cache bound${trendJudged ? ' and no lasting climb' : ' (trend not judged)'}, ` +
      'tensors flat and released');
  return problems.length === 0;
}

const positive = (name: string) => (value: string) => {
  const n = Number(value);
  if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`${name} must be a positive number.`);
  return n;
};

const program = new Command('soak')
  .description('train for a fixed time and watch memory for leaks')
  .option('--minutes <n>', 'how long to train', positive('--minutes'), 30)
  .option('--interval <n>', 'minutes between samples', positive('--interval'), 1)
  .option('--folder <dir>', 'images to train on', SAMPLE_FOLDER)
  .addOption(new Option('--preset <name>', 'training preset').choices(['tiny', 'cifar', 'imagenet']).default('tiny'))
  .addOption(new Option('--backend <name>', 'tfjs backend').choices(['auto', ...BACKEND_CHOICES]).default('auto'))
  .option('--threads <n>', 'data-parallel training threads on wasm/cpu (default: one per core, at most 4; 1 = none)', positive('--threads'))
  .option('--keep', 'keep the run folder instead of deleting it');

program.parseAsync(process.argv).then(async () => {
  const passed = await soak(program.opts<Options>());
  process.exit(passed ? 0 : 1);
}).catch((error: Error) => {
  console.error(`soak failed: ${error.stack ?? error.message}`);
  process.exit(2);
});
