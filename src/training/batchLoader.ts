/**
 * Feeds the trainer two-view batches. Decoding and augmentation run in a worker thread, because
 * the wasm backend trains synchronously on the main thread and would otherwise sit idle while
 * every batch is prepared.
 *
 * Every batch is a pure function of (seed, epoch, batch index, which files are undecodable): the
 * main thread fixes the epoch's order, the worker draws the views from that batch's own random
 * stream. So a run is reproducible whatever the thread timing, and a resumed run continues with
 * exactly the batches it would have seen.
 */
import * as path from 'path';
import { Worker } from 'worker_threads';
import { augmentView, centerView, type AugmentConfig, type Rgb } from './augment';
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
  /** Decoded images kept in memory; the rest are decoded again each time they are drawn. */
  maxCachedImages: number;
  /** Batches prepared ahead of the one being trained on; default 2. */
  prefetch?: number;
  onWarning?: (warning: LoaderWarning) => void;
}

/** What the worker thread is started with. */
export interface LoaderWorkerInit {
  paths: string[];
  augment: AugmentConfig;
  batchSize: number;
  seed: number;
  maxCachedImages: number;
}

export interface BatchRequest {
  jobId: number;
  epoch: number;
  batch: number;
  indices: number[];
}

export type BatchReply =
  | { jobId: number; batch: TwoViewBatch; warnings: LoaderWarning[] }
  | { jobId: number; error: string };

/** The worker's entry file, resolved next to this module (a bundle must emit it under this name). */
export const LOADER_WORKER_FILE = 'batchLoaderWorker.js';

/** Keeps substitute draws out of the view stream, so a skipped file does not change other images' views. */
const SUBSTITUTE_STREAM = 0x5b57;
const MAX_SUBSTITUTE_TRIES = 100;
const DECODE_CONCURRENCY = 4;

interface PendingRequest {
  resolve: (batch: TwoViewBatch) => void;
  reject: (error: Error) => void;
}

export class TwoViewLoader {
  private readonly worker: Worker;
  private readonly pending = new Map<number, PendingRequest>();
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
    const init: LoaderWorkerInit = {
      paths: records.map((record) => record.path),
      augment: options.augment,
      batchSize: options.batchSize,
      seed: options.seed,
      maxCachedImages: options.maxCachedImages,
    };
    this.worker = new Worker(path.join(__dirname, LOADER_WORKER_FILE), { workerData: init });
    this.worker.on('message', (reply: BatchReply) => this.onReply(reply));
    this.worker.on('error', (error) => this.failAll(error));
    this.worker.on('exit', (code) => {
      if (!this.closing) {
        this.failAll(new Error(`The image loader thread stopped unexpectedly (exit code ${code}).`));
      }
    });
    // An idle worker must not keep the process alive if the caller forgets close().
    this.worker.unref();
  }

  /**
   * floor(images / batch), like the official code's drop_last. Constant for the loader's life:
   * an undecodable file is replaced in its batch (see assembleTwoViewBatch), so discovering one
   * mid-run never shifts the step/epoch arithmetic of a run or its resume.
   */
  batchesPerEpoch(): number {
    return Math.floor(this.records.length / this.batchSize);
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
    this.worker.ref();
    await this.worker.terminate();
    this.failAll(new Error('The image loader was closed.'));
  }

  private request(epoch: number, batch: number, indices: number[]): Promise<TwoViewBatch> {
    if (this.workerFailure !== null) {
      return Promise.reject(this.workerFailure);
    }
    const jobId = this.nextJobId++;
    const message: BatchRequest = { jobId, epoch, batch, indices };
    return new Promise<TwoViewBatch>((resolve, reject) => {
      this.pending.set(jobId, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage(message);
    });
  }

  private onReply(reply: BatchReply): void {
    const request = this.pending.get(reply.jobId);
    this.pending.delete(reply.jobId);
    // While closing, terminate() must keep the process alive until it resolves: replies still
    // queued are delivered during it, and unref-ing here would let Node exit mid-close.
    if (this.pending.size === 0 && !this.closing) {
      this.worker.unref();
    }
    if ('error' in reply) {
      request?.reject(new Error(reply.error));
      return;
    }
    for (const warning of reply.warnings) {
      this.skipped.push(warning);
      this.options.onWarning?.(warning);
    }
    request?.resolve(reply.batch);
  }

  private failAll(error: Error): void {
    this.workerFailure ??= error;
    for (const request of this.pending.values()) {
      request.reject(error);
    }
    this.pending.clear();
  }
}

/**
 * Decodes and augments one batch (runs in the worker). The views come from the stream
 * (seed, epoch, batch): view 1 then view 2 of each image in order. An undecodable image is
 * replaced by a random other one from the stream (seed, epoch, batch, SUBSTITUTE_STREAM), so the
 * batch stays full and its other images keep their views. Returns the new warnings it met.
 */
export async function assembleTwoViewBatch(
  init: LoaderWorkerInit,
  request: BatchRequest,
  cache: DecodedImageCache,
): Promise<{ batch: TwoViewBatch; warnings: LoaderWarning[] }> {
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
  const substitutes = new Rng(deriveSeed(init.seed, request.epoch, request.batch, SUBSTITUTE_STREAM));
  for (let slot = 0; slot < indices.length; slot++) {
    for (let tries = 0; images[slot] === null; tries++) {
      if (tries === MAX_SUBSTITUTE_TRIES) {
        throw new Error(
          `${MAX_SUBSTITUTE_TRIES} images in a row could not be decoded (e.g. ${init.paths[indices[slot]]}); ` +
            `most files in this dataset seem unreadable. Check the folder's images.`,
        );
      }
      indices[slot] = substitutes.int(init.paths.length);
      images[slot] = await tryDecode(indices[slot]);
    }
  }

  const { size } = init.augment;
  const floatsPerView = size * size * 3;
  const view1 = new Float32Array(indices.length * floatsPerView);
  const view2 = new Float32Array(indices.length * floatsPerView);
  const rng = new Rng(deriveSeed(init.seed, request.epoch, request.batch));
  images.forEach((image, slot) => {
    augmentView(image!, init.augment, rng, view1, slot * floatsPerView);
    augmentView(image!, init.augment, rng, view2, slot * floatsPerView);
  });
  return { batch: { view1, view2, indices }, warnings };
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
async function mapWithConcurrency<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
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
