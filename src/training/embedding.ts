// The representation SimSiam evaluates: l2-normalised backbone features of each image's
// deterministic view (shorter side resized, centre crop), in eval mode. The kNN monitor and the
// retrieval index both embed through here, so they rank by the same features.
import * as tf from '@tensorflow/tfjs';
import type { ImageRecord } from './data/dataset';
import { loadEvalBatch, type LoaderWarning } from './data/batchLoader';
import type { DecodedImageCache } from './data/imageDecode';
import { IMAGENET_MEAN, IMAGENET_STD } from './data/augment';
import { forward } from './model/simsiam';
import { l2Normalize } from './loss';

/**
 * Images are decoded and embedded this many pixels' worth at a time (256 images at 32 px, 5 at
 * 224): a forward pass keeps every activation until it ends, and on wasm the heap is bounded.
 */
const EVAL_PIXELS = 256 * 32 * 32;

export function evalBatchSize(size: number): number {
  return Math.max(1, Math.min(256, Math.floor(EVAL_PIXELS / (size * size))));
}

/** l2-normalised backbone features of the deterministic (centre) view, in eval mode. */
export async function embedRecords(model: tf.LayersModel, records: ImageRecord[], size: number,
  onProgress?: (done: number) => void, cache?: DecodedImageCache,
  onSkipped?: (warning: LoaderWarning) => void): Promise<{ features: tf.Tensor2D; kept: number[] }> {
  const chunks: tf.Tensor2D[] = [];
  const kept: number[] = [];
  const step = evalBatchSize(size);
  for (let start = 0; start < records.length; start += step) {
    const slice = records.slice(start, start + step);
    const batch = await loadEvalBatch(slice, size, IMAGENET_MEAN, IMAGENET_STD, cache);
    batch.skipped.forEach((warning) => onSkipped?.(warning));
    if (batch.kept.length) {
      chunks.push(tf.tidy(() => {
        const images = tf.tensor4d(batch.pixels, [batch.kept.length, size, size, 3]);
        return l2Normalize(forward(model, images, false).features);
      }));
      kept.push(...batch.kept.map((i) => start + i));
    }
    onProgress?.(Math.min(records.length, start + step));
  }
  const features = chunks.length ? tf.concat(chunks) as tf.Tensor2D : tf.zeros([0, 1]) as tf.Tensor2D;
  tf.dispose(chunks);
  return { features, kept };
}
