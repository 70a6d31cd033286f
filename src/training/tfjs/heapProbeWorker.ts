// Measures, in a thread of its own (its own wasm instance, which never returns memory), the peak
// tensor memory of one training step of `images` random images at each of `sizes`: what
// heapProbe.ts extrapolates to a run's image size and shard.
import { parentPort, workerData } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from './backend';
import type { TrainConfig } from '../config';
import { buildSimSiam } from '../model/simsiam';
import { SgdMomentum } from '../optimizer';
import { parameterGroups, parametersOf, trainStep } from '../step';

export interface HeapProbeRequest { config: TrainConfig; images: number; sizes: number[] }
/** Per size: the peak of tensor memory over the step. */
export type HeapProbeReply = { peakBytes: number[] } | { error: string };

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
  return { peakBytes };
}

probe(workerData as HeapProbeRequest).then(
  (reply) => parentPort!.postMessage(reply),
  (error: Error) => parentPort!.postMessage({ error: error.message } satisfies HeapProbeReply));
