/**
 * The loader's worker thread: owns the decoded-image cache and prepares the batches the main
 * thread asks for, one at a time in request order (so "first time a file fails" is well defined).
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
    const { batch, warnings } = await assembleTwoViewBatch(init, request, cache);
    const reply: BatchReply = { jobId: request.jobId, batch, warnings };
    // Transferred, not copied: at 224 px a batch of 256 is 150 MB per view.
    port.postMessage(reply, [batch.view1.buffer as ArrayBuffer, batch.view2.buffer as ArrayBuffer]);
  } catch (error) {
    const reply: BatchReply = { jobId: request.jobId, error: (error as Error).message };
    port.postMessage(reply);
  }
}
