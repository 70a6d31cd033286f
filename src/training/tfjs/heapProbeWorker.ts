// Measures, in a thread of its own (its own wasm instance, which never returns memory), how large
// the wasm heap grows over one training step of `images` random images at `size` px: what each
// training thread of a run with that shard would need. See heapProbe.ts.
import { parentPort, workerData } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from './backend';
import type { TrainConfig } from '../config';
import { buildSimSiam } from '../model/simsiam';
import { SgdMomentum } from '../optimizer';
import { parameterGroups, parametersOf, trainStep } from '../step';

export interface HeapProbeRequest { config: TrainConfig; images: number; sizes: number[] }
/** Per size: the peak of tensor memory over the step, and the heap the thread had grown to after it. */
export type HeapProbeReply = { peakBytes: number[]; heapBytes: number } | { error: string };

async function probe({ config, images, sizes }: HeapProbeRequest): Promise<HeapProbeReply> {
  await selectBackend('wasm');
  const peakBytes = [];
  for (const size of sizes) {
    const model = buildSimSiam({ ...config, imageSize: size });
    const parameters = parametersOf(model);
    const optimizer = new SgdMomentum(config.momentum, config.weightDecay);
    const groups = parameterGroups(parameters, { encoder: 0.01, predictor: 0.01 });
    const [x1, x2] = [0, 1].map(() => tf.randomNormal([images, size, size, 3]) as tf.Tensor4D);
    // The heap grows in large steps, too coarse to tell two small probes apart: tfjs' own count
    // of tensor bytes is exact, and (with the weights) is most of the heap.
    const profile = await tf.profile(() => {
      trainStep(model, x1, x2, parameters.variables, optimizer, groups);
    });
    peakBytes.push(profile.peakBytes);
    tf.dispose([x1, x2]);
    optimizer.dispose();
    model.dispose();
  }
  // The emscripten module's heap view (its typings here omit it).
  const wasm = (tf.backend() as BackendWasm).wasm as unknown as { HEAPU8: Uint8Array };
  return { peakBytes, heapBytes: wasm.HEAPU8.buffer.byteLength };
}

probe(workerData as HeapProbeRequest).then(
  (reply) => parentPort!.postMessage(reply),
  (error: Error) => parentPort!.postMessage({ error: error.message } satisfies HeapProbeReply));
