// Only an image that decodes is a training image. A folder where most files are broken must say
// so before training starts ("2 of 42 image files could be read"), not train "to completion" on
// the few that decode, substituted for the others batch after batch; and an epoch's batch count
// must be what the readable images make.
import { DECODE_CONCURRENCY, mapWithConcurrency } from './batchLoader';
import type { ImageRecord } from './dataset';
import { ImageDecodeError, type DecodedImageCache } from './imageDecode';
import type { SkippedFiles } from './skippedFiles';

/** Progress is reported about this many times over a pass, and at its end. */
const PROGRESS_REPORTS = 100;

/**
 * The records whose files decode, in their order. Each is decoded through `cache` (which keeps
 * it, where the cache has room, for the evaluations that read the same images later); each
 * failure is reported once through `skipped`.
 */
export async function readableImages(records: ImageRecord[], cache: DecodedImageCache, skipped: SkippedFiles,
  onProgress: (done: number, total: number) => void, stop?: { readonly requested: boolean }): Promise<ImageRecord[]> {
  const total = records.length;
  const every = Math.max(1, Math.ceil(total / PROGRESS_REPORTS));
  let done = 0;
  onProgress(0, total);
  const readable = await mapWithConcurrency(records, DECODE_CONCURRENCY, async (record) => {
    // A stop ends the pass at once: the caller asks the stop signal, not the (then partial) result.
    if (stop?.requested) return false;
    try {
      await cache.get(record.path);
      return true;
    } catch (error) {
      if (!(error instanceof ImageDecodeError)) throw error;
      skipped.report(record.path, error.reason);
      return false;
    } finally {
      done += 1;
      if (done % every === 0 || done === total) onProgress(done, total);
    }
  });
  return records.filter((_, i) => readable[i]);
}
