/**
 * Feeds the trainer two-view batches. Decoding and augmentation run in worker threads, because
 * the wasm backend trains synchronously on the main thread and would otherwise sit idle while
 * every batch is prepared. One thread keeps up with CPU training at small image sizes; large
 * images, or a GPU that trains faster than one thread augments, want several. Each worker owns
 * the images whose index is its number modulo the thread count: it decodes and caches them, so
 * the cache is not duplicated, and a batch is split between the owners of its images (only a
 * substitute for an undecodable image may be decoded by another thread).
 *
 * Every batch is a pure function of (seed, epoch, batch index, which files are undecodable): the
 * main thread fixes the epoch's order, and each image's views come from the random stream of its
 * slot in the batch. So a run is reproducible whatever the thread count and timing, and a resumed
 * run continues with exactly the batches it would have seen.
 */
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { augmentView, centerView, type AugmentConfig, type Rgb } from './augment';
import type { TrainConfig } from '../config';
import type { ImageRecord } from './dataset';
import { DecodedImageCache, ImageDecodeError, type DecodedImage } from './imageDecode';
import { deriveSeed, Rng } from './rng';

export interface TwoViewBatch {
  /** batch * size * size * 3 floats each, HWC, normalised. */
  view1: Float32Array;
  view2: Float32Array;
  /** Index into the loader's records of each image, in batch order. */
  indices: number[];
}

export interface LoaderWarning {
  file: string;
  reason: string;
}

export interface TwoViewLoaderOptions {
  augment: AugmentConfig;
  batchSize: number;
  seed: number;
  /** Decoded images kept in memory, over all threads; the rest are decoded again each time they are drawn. */
  maxCachedImages: number;
  /** Batches prepared ahead of the one being trained on; default 2. */
  prefetch?: number;
  /** Worker threads preparing batches; default 1. */
  threads?: number;
  onWarning?: (warning: LoaderWarning) => void;
}

/** What a worker thread is started with. */
export interface LoaderWorkerInit {
  paths: string[];
  augment: AugmentConfig;
  seed: number;
  /** This worker's share of the cache. */
  maxCachedImages: number;
}

/** The slots of one batch that one worker prepares, writing their views into shared staging arrays. */
export interface BatchRequest {
  jobId: number;
  epoch: number;
  batch: number;
  /** Positions in the batch, and the image drawn for each. */
  slots: number[];
  indices: number[];
  /** The batch's views, in memory every worker shares: each writes its slots in place. */
  view1: Float32Array;
  view2: Float32Array;
}

/** What a worker did: the images its slots hold after substitution. */
export interface BatchPart {
  slots: number[];
  indices: number[];
}

export type BatchReply =
  | { jobId: number; part: BatchPart; warnings: LoaderWarning[] }
  | { jobId: number; error: string };

/** The worker's entry file, resolved next to this module (a bundle must emit it under this name). */
export const LOADER_WORKER_FILE = 'batchLoaderWorker.js';

/** Separate random streams per slot for its views and for substitutes of an undecodable image. */
const VIEW_STREAM = 0x71e3;
const SUBSTITUTE_STREAM = 0x5b57;
const MAX_SUBSTITUTE_TRIES = 100;
/** Decodes in flight per thread: sharp decodes on its own thread pool, so a few overlap well. */
export const DECODE_CONCURRENCY = 4;
const MAX_AUTO_LOADER_THREADS = 8;

/**
 * floor(images / batch), like the official code's drop_last. Constant for a loader's life: an
 * undecodable file met mid-run is replaced in its batch (see assembleTwoViewBatch), so it never
 * shifts the step/epoch arithmetic. (Files already unreadable when a run starts or resumes are
 * left out of its images before the loader exists: see readableImages.ts.)
 */
export function batchesPerEpoch(images: number, batchSize: number): number {
  return Math.floor(images / batchSize);
}

/**
 * Loader threads for a run: as configured, else one on the JavaScript backends (wasm, cpu), whose
 * training takes every core and needs far fewer images per second than one thread prepares
 * (thousands at 32 px, over a hundred at 224 px), and all cores but one on TensorFlow's native
 * backends: a GPU trains faster than one thread augments and leaves the cores idle. The total
 * augmentation work is the same either way; more threads only deliver each batch sooner.
 */
export function loaderThreadCount(config: TrainConfig, backendName: string, cores = os.availableParallelism()): number {
  if (config.loaderThreads > 0) {
    return config.loaderThreads;
  }
  return backendName === 'tensorflow' && cores > 1 ? Math.min(cores - 1, MAX_AUTO_LOADER_THREADS) : 1;
}

/**
 * Shared arrays the workers write one batch's views into. Reused from batch to batch: fresh
 * shared memory per batch would stay referenced from the worker threads, which rarely collect
 * garbage, and pile up; fresh transferable arrays per part cost an allocation and a copy each.
 */
interface Staging {
  view1: Float32Array;
  view2: Float32Array;
}

/** A batch its workers are filling in. */
interface PendingBatch {
  partsLeft: number;
  staging: Staging;
  indices: number[];
  resolve: (batch: TwoViewBatch) => void;
  reject: (error: Error) => void;
}

export class TwoViewLoader {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, PendingBatch>();
  /** Staging arrays no batch is using; as many exist as batches were ever in flight at once. */
  private readonly freeStaging: Staging[] = [];
  private readonly skipped: LoaderWarning[] = [];
  private readonly batchSize: number;
  private readonly prefetch: number;
  private nextJobId = 0;
  private workerFailure: Error | null = null;
  private closing = false;

  constructor(
    private readonly records: ImageRecord[],
    private readonly options: TwoViewLoaderOptions,
  ) {
    if (!(Number.isInteger(options.batchSize) && options.batchSize > 0)) {
      throw new Error(`batchSize must be a positive integer, got ${options.batchSize}`);
    }
    this.batchSize = options.batchSize;
    this.prefetch = Math.max(1, Math.floor(options.prefetch ?? 2));
    const threads = options.threads ?? 1;
    if (!(Number.isInteger(threads) && threads > 0)) {
      throw new Error(`threads must be a positive integer, got ${options.threads}`);
    }
    const init: LoaderWorkerInit = {
      paths: records.map((record) => record.path),
      augment: options.augment,
      seed: options.seed,
      maxCachedImages: Math.ceil(options.maxCachedImages / threads),
    };
    this.workers = Array.from({ length: threads }, () => {
      const worker = new Worker(path.join(__dirname, LOADER_WORKER_FILE), { workerData: init });
      worker.on('message', (reply: BatchReply) => this.onReply(reply));
      worker.on('error', (error) => this.failAll(error));
      worker.on('exit', (code) => {
        if (!this.closing) {
          this.failAll(new Error(`An image loader thread stopped unexpectedly (exit code ${code}).`));
        }
      });
      // An idle worker must not keep the process alive if the caller forgets close().
      worker.unref();
      return worker;
    });
  }

  /** The module's batchesPerEpoch for this loader's images: constant for its life. */
  batchesPerEpoch(): number {
    return batchesPerEpoch(this.records.length, this.batchSize);
  }

  /** The order of `epoch`: a shuffle of all record indices seeded by (seed, epoch). */
  epochOrder(epoch: number): number[] {
    return new Rng(deriveSeed(this.options.seed, epoch)).shuffle(this.records.map((_, i) => i));
  }

  /** Batches startBatch.. of `epoch`, prepared `prefetch` ahead. One epoch iteration at a time. */
  async *epoch(epoch: number, startBatch = 0): AsyncIterable<TwoViewBatch> {
    const count = this.batchesPerEpoch();
    if (!(Number.isInteger(startBatch) && startBatch >= 0 && startBatch <= count)) {
      throw new Error(`startBatch must be an integer in [0, ${count}], got ${startBatch}`);
    }
    const order = this.epochOrder(epoch);
    const ahead: Promise<TwoViewBatch>[] = [];
    let nextToRequest = startBatch;
    const requestNext = () => {
      const batch = nextToRequest++;
      const request = this.request(epoch, batch, order.slice(batch * this.batchSize, (batch + 1) * this.batchSize));
      // If the consumer stops early, batches still in flight must not surface as unhandled rejections.
      request.catch(() => undefined);
      ahead.push(request);
    };
    while (ahead.length < this.prefetch && nextToRequest < count) {
      requestNext();
    }
    while (ahead.length > 0) {
      const batch = await ahead.shift()!;
      if (nextToRequest < count) {
        requestNext();
      }
      yield batch;
    }
  }

  /** Files that could not be decoded, each reported once and replaced from then on. */
  skippedFiles(): LoaderWarning[] {
    return [...this.skipped];
  }

  async close(): Promise<void> {
    this.closing = true;
    this.workers.forEach((worker) => worker.ref());
    await Promise.all(this.workers.map((worker) => worker.terminate()));
    this.failAll(new Error('The image loader was closed.'));
  }

  /** Sends each worker the slots whose images it owns; resolves when every part is back. */
  private request(epoch: number, batch: number, indices: number[]): Promise<TwoViewBatch> {
    if (this.workerFailure !== null) {
      return Promise.reject(this.workerFailure);
    }
    const jobId = this.nextJobId++;
    const threads = this.workers.length;
    const staging = this.freeStaging.pop() ?? this.newStaging();
    const requests = this.workers.map((): BatchRequest => ({ jobId, epoch, batch, slots: [], indices: [], ...staging }));
    indices.forEach((index, slot) => {
      requests[index % threads].slots.push(slot);
      requests[index % threads].indices.push(index);
    });
    const busy = requests.map((request, worker) => ({ request, worker: this.workers[worker] })).filter(({ request }) => request.slots.length > 0);
    return new Promise<TwoViewBatch>((resolve, reject) => {
      this.pending.set(jobId, { partsLeft: busy.length, staging, indices: [...indices], resolve, reject });
      for (const { request, worker } of busy) {
        worker.ref();
        worker.postMessage(request);
      }
    });
  }

  private onReply(reply: BatchReply): void {
    const pending = this.pending.get(reply.jobId);
    if ('error' in reply) {
      this.pending.delete(reply.jobId);
      pending?.reject(new Error(reply.error));
    } else {
      for (const warning of reply.warnings) {
        // Two threads may each meet a broken file (one as a substitute): report it once.
        if (!this.skipped.some((known) => known.file === warning.file)) {
          this.skipped.push(warning);
          this.options.onWarning?.(warning);
        }
      }
      if (pending !== undefined) {
        reply.part.slots.forEach((slot, i) => (pending.indices[slot] = reply.part.indices[i]));
        if (--pending.partsLeft === 0) {
          this.pending.delete(reply.jobId);
          // The batch is the consumer's to keep: copy it out, and the staging arrays serve the next.
          const { staging } = pending;
          const batch: TwoViewBatch = { view1: staging.view1.slice(), view2: staging.view2.slice(), indices: pending.indices };
          this.freeStaging.push(staging);
          pending.resolve(batch);
        }
      }
    }
    // While closing, terminate() must keep the process alive until it resolves: replies still
    // queued are delivered during it, and unref-ing here would let Node exit mid-close.
    if (this.pending.size === 0 && !this.closing) {
      this.workers.forEach((worker) => worker.unref());
    }
  }

  private newStaging(): Staging {
    const { size } = this.options.augment;
    const bytes = this.batchSize * size * size * 3 * Float32Array.BYTES_PER_ELEMENT;
    return { view1: new Float32Array(new SharedArrayBuffer(bytes)), view2: new Float32Array(new SharedArrayBuffer(bytes)) };
  }

  // A failed batch's staging arrays are dropped, not reused: its other workers may still write them.
  private failAll(error: Error): void {
    this.workerFailure ??= error;
    for (const request of this.pending.values()) {
      request.reject(error);
    }
    this.pending.clear();
    // Nothing is awaited from the other threads any more: they must not keep the process alive.
    if (!this.closing) {
      this.workers.forEach((worker) => worker.unref());
    }
  }
}

/**
 * Decodes and augments the requested slots of one batch (runs in a worker), writing their views at
 * their slots in request.view1/view2. A slot's two views come from the stream (seed, epoch, batch,
 * VIEW_STREAM, slot), so they do not depend on which thread renders them. An undecodable image is replaced by a random other one from the stream
 * (seed, epoch, batch, SUBSTITUTE_STREAM, slot), so the batch stays full and its other images
 * keep their views. Returns the new warnings it met.
 */
export async function assembleTwoViewBatch(
  init: LoaderWorkerInit,
  request: BatchRequest,
  cache: DecodedImageCache,
): Promise<{ part: BatchPart; warnings: LoaderWarning[] }> {
  const warnings: LoaderWarning[] = [];
  const tryDecode = async (index: number): Promise<DecodedImage | null> => {
    const file = init.paths[index];
    const known = cache.isKnownUndecodable(file);
    try {
      return await cache.get(file);
    } catch (error) {
      if (!(error instanceof ImageDecodeError)) {
        throw error;
      }
      // Jobs run one after another, so only this batch can have met the file before.
      if (!known && !warnings.some((warning) => warning.file === file)) {
        warnings.push({ file, reason: error.reason });
      }
      return null;
    }
  };

  const indices = [...request.indices];
  const images = await mapWithConcurrency(indices, DECODE_CONCURRENCY, tryDecode);
  for (let i = 0; i < indices.length; i++) {
    const substitutes = new Rng(deriveSeed(init.seed, request.epoch, request.batch, SUBSTITUTE_STREAM, request.slots[i]));
    for (let tries = 0; images[i] === null; tries++) {
      if (tries === MAX_SUBSTITUTE_TRIES) {
        throw new Error(
          `${MAX_SUBSTITUTE_TRIES} images in a row could not be decoded (e.g. ${init.paths[indices[i]]}); ` +
            `most files in this dataset seem unreadable. Check the folder's images.`,
        );
      }
      indices[i] = substitutes.int(init.paths.length);
      images[i] = await tryDecode(indices[i]);
    }
  }

  const { size } = init.augment;
  const floatsPerView = size * size * 3;
  images.forEach((image, i) => {
    const slot = request.slots[i];
    const rng = new Rng(deriveSeed(init.seed, request.epoch, request.batch, VIEW_STREAM, slot));
    augmentView(image!, init.augment, rng, request.view1, slot * floatsPerView);
    augmentView(image!, init.augment, rng, request.view2, slot * floatsPerView);
  });
  return { part: { slots: request.slots, indices }, warnings };
}

/**
 * Centre views of `records` for evaluation (kNN monitor, embeddings), decoded on this thread via
 * sharp's own thread pool. `kept` lists the positions in `records` that decoded, in order;
 * `pixels` holds their views back to back. Pass a cache to avoid re-decoding on every evaluation.
 */
export async function loadEvalBatch(
  records: ImageRecord[],
  size: number,
  mean: Rgb,
  std: Rgb,
  cache: DecodedImageCache = new DecodedImageCache(0, size),
): Promise<{ pixels: Float32Array; kept: number[]; skipped: LoaderWarning[] }> {
  const floatsPerView = size * size * 3;
  const decoded = await mapWithConcurrency(records, DECODE_CONCURRENCY, async (record): Promise<{ image?: DecodedImage; warning?: LoaderWarning }> => {
    try {
      return { image: await cache.get(record.path) };
    } catch (error) {
      if (error instanceof ImageDecodeError) {
        return { warning: { file: record.path, reason: error.reason } };
      }
      throw error;
    }
  });
  const kept: number[] = [];
  const skipped: LoaderWarning[] = [];
  const pixels = new Float32Array(records.length * floatsPerView);
  decoded.forEach((result, position) => {
    if (result.image !== undefined) {
      centerView(result.image, size, mean, std, pixels, kept.length * floatsPerView);
      kept.push(position);
    } else {
      skipped.push(result.warning!);
    }
  });
  return { pixels: skipped.length === 0 ? pixels : pixels.slice(0, kept.length * floatsPerView), kept, skipped };
}

/** Like Promise.all(items.map(fn)), with at most `limit` calls in flight; results keep input order. */
export async function mapWithConcurrency<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
