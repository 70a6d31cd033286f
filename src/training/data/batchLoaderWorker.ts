/**
 * A loader worker thread: owns the decoded-image cache of its share of the images and prepares
 * the parts of batches the main thread asks for, one at a time in request order (so "first time a
 * file fails" is well defined per thread).
 */
import { parentPort, workerData } from 'worker_threads';
import { decodeShortSideFor } from './augment';
import { assembleTwoViewBatch, type BatchReply, type BatchRequest, type LoaderWorkerInit } from './batchLoader';
import { DecodedImageCache } from './imageDecode';

const init = workerData as LoaderWorkerInit;
const port = parentPort!;
const cache = new DecodedImageCache(init.maxCachedImages, decodeShortSideFor(init.augment));
let queue: Promise<void> = Promise.resolve();

port.on('message', (request: BatchRequest) => {
  queue = queue.then(() => serve(request));
});

async function serve(request: BatchRequest): Promise<void> {
  try {
    const { part, warnings } = await assembleTwoViewBatch(init, request, cache);
    // The views are already in the shared staging arrays: the reply only says which images.
    const reply: BatchReply = { jobId: request.jobId, part, warnings };
    port.postMessage(reply);
  } catch (error) {
    const reply: BatchReply = { jobId: request.jobId, error: (error as Error).message };
    port.postMessage(reply);
  }
}
