// The wasm backend's heap is at most 4 GiB per thread, and a training step past it dies with
// "memory access out of bounds" or "Aborted()" — after the run has started. So before a run on
// wasm, the step's heap is measured on two small probes in throwaway threads and extrapolated to
// the run's image size (activations grow with images × pixels; weights and optimizer state don't),
// and what does not fit is split into micro-batches that do (or, when not even the smallest does,
// refused with the image size that fits).
import * as path from 'path';
import { Worker } from 'worker_threads';
import type { TrainConfig } from '../config';
import type { HeapProbeReply, HeapProbeRequest } from './heapProbeWorker';

/** emscripten's getHeapMax() in tfjs-backend-wasm: 4 GiB less one 64 KiB page. */
const WASM_HEAP_MAX = 4294901760;
/** Room left for what one step does not show: the kNN evaluation, the heap's growth in doublings. */
const USABLE_FRACTION = 0.8;
/** Runs this small (the tiny preset's shard and below) fit with a wide margin: no probe. */
const UNPROBED_PIXELS = 32 * 64 * 64;
const PROBE_SIZES = [32, 48] as const;
const PROBE_IMAGES = 4;
const PROBE_WORKER_FILE = 'heapProbeWorker.js';

export interface HeapEstimate {
  /** Predicted heap of one training thread at the run's size. */
  bytes: number;
  fits: boolean;
  /** The most images one step of one thread can take at the run's size (0: not even one). */
  largestStep: number;
  /** The largest image size (a multiple of 8) at which a step of `images` images fits. */
  largestSizeFor(images: number): number;
}

function measure(request: HeapProbeRequest): Promise<Extract<HeapProbeReply, { peakBytes: number[] }>> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(path.join(__dirname, PROBE_WORKER_FILE), { workerData: request });
    worker.once('message', (reply: HeapProbeReply) => {
      void worker.terminate();
      if ('error' in reply) reject(new Error(`Measuring the wasm heap failed: ${reply.error}`));
      else resolve(reply);
    });
    worker.once('error', reject);
    // A thread that ends without answering (wasm's abort() exits it) must not leave the run waiting.
    worker.once('exit', (code) => reject(new Error(`the probe thread exited (code ${code}) before it answered`)));
  });
}

/** Heap of one thread training `shard` images per step at the config's size; null when too small to matter. */
export async function estimateWasmHeap(config: TrainConfig, shard: number): Promise<HeapEstimate | null> {
  if (shard * config.imageSize ** 2 <= UNPROBED_PIXELS) return null;
  const [small, large] = PROBE_SIZES;
  const { peakBytes } = await measure({ config, images: PROBE_IMAGES, sizes: [...PROBE_SIZES] });
  // peak ≈ fixed + perPixel × images × size²
  const perPixel = Math.max(0, (peakBytes[1] - peakBytes[0]) / (PROBE_IMAGES * (large ** 2 - small ** 2)));
  const fixed = peakBytes[0] - perPixel * PROBE_IMAGES * small ** 2;
  const budget = WASM_HEAP_MAX * USABLE_FRACTION;
  const bytes = fixed + perPixel * shard * config.imageSize ** 2;
  const largestSizeFor = (images: number) => {
    const side = perPixel > 0 ? Math.sqrt(Math.max(0, budget - fixed) / (perPixel * images)) : Infinity;
    return Math.floor(Math.min(side, 1 << 16) / 8) * 8;
  };
  const largestStep = perPixel > 0 ? Math.max(0, Math.floor((budget - fixed) / (perPixel * config.imageSize ** 2))) : Number.MAX_SAFE_INTEGER;
  return { bytes, fits: bytes <= budget, largestStep, largestSizeFor };
}
