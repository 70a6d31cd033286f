// One backend's check for `simsiam doctor`, in a process of its own: a backend binds the process
// that loads it (wasm and tfjs-node register once, a CUDA context stays), so each is tried fresh.
// It loads the backend, then times three training steps of the tiny model on random images (the
// first warms up: kernels compile, memory is allocated) and reports the images per second of the
// other two. Answers once, over IPC, then exits.
import { performance } from 'perf_hooks';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../tfjs/backend';
import { WEBGPU_ADAPTER_ENV, webGpuIsSoftware } from '../tfjs/webgpuBackend';
import { PRESETS, type UserBackendName } from '../config';
import { buildSimSiam } from '../model/simsiam';
import { SgdMomentum } from '../optimizer';
import { parameterGroups, parametersOf, trainStepAsync } from '../step';

import type { ProbeReply } from './environment';

const PROBE_STEPS = 3;
/**
 * Images per step and their size. Plain JavaScript and software WebGPU get one small image: at
 * the tiny preset's 32 px they need seconds to a minute per image and step, a probe of minutes.
 */
const probeShape = (slow: boolean) => (slow ? { images: 1, size: 16 } : { images: 8, size: PRESETS.tiny.imageSize });

/** tfjs-node's binding knows whether TensorFlow placed ops on a GPU; other backends have no such call. */
function usesGpu(): boolean | undefined {
  const binding = (tf.backend() as { binding?: { isUsingGpuDevice?: () => boolean } }).binding;
  return typeof binding?.isUsingGpuDevice === 'function' ? binding.isUsingGpuDevice() : undefined;
}

async function timeSteps({ images: batch, size }: { images: number; size: number }): Promise<number> {
  const config = { ...PRESETS.tiny, batchSize: batch, imageSize: size };
  const model = buildSimSiam(config);
  const parameters = parametersOf(model);
  const optimizer = new SgdMomentum(config.momentum, config.weightDecay);
  const groups = parameterGroups(parameters, { encoder: 0.01, predictor: 0.01 });
  const shape: [number, number, number, number] = [batch, config.imageSize, config.imageSize, 3];
  const [x1, x2] = [1, 2].map((seed) => tf.randomNormal(shape, 0, 1, 'float32', seed) as tf.Tensor4D);
  let timed = 0;
  try {
    for (let step = 0; step < PROBE_STEPS; step++) {
      const started = performance.now();
      // trainStep reads its loss back, so the time includes the work, not only its queueing.
      await trainStepAsync(model, x1, x2, parameters.variables, optimizer, groups);
      if (step > 0) timed += performance.now() - started;
    }
  } finally {
    tf.dispose([x1, x2]);
    optimizer.dispose();
    model.dispose();
  }
  return ((PROBE_STEPS - 1) * batch) / (timed / 1000);
}

/** Answers twice: once loaded (so a slow probe still shows the backend loads), then with its speed. */
async function probe(choice: UserBackendName, answer: (reply: ProbeReply) => Promise<void>): Promise<void> {
  let detail: string;
  try {
    detail = (await selectBackend(choice)).detail;
  } catch (error) {
    await answer({ loaded: false, reason: (error as Error).message });
    return;
  }
  const gpu = usesGpu();
  const software = choice === 'webgpu' && webGpuIsSoftware() && process.env[WEBGPU_ADAPTER_ENV] !== 'any';
  const probe = probeShape(choice === 'cpu' || (choice === 'webgpu' && webGpuIsSoftware()));
  const loaded = { loaded: true as const, detail, probe, ...(gpu === undefined ? {} : { gpu }), ...(software ? { software } : {}) };
  await answer({ ...loaded, imagesPerSecond: null, probeError: 'the speed probe did not finish' });
  try {
    await answer({ ...loaded, imagesPerSecond: await timeSteps(probe) });
  } catch (error) {
    await answer({ ...loaded, imagesPerSecond: null, probeError: (error as Error).message });
  }
}

if (process.send) {
  const answer = (reply: ProbeReply) => new Promise<void>((resolve) => process.send!(reply, () => resolve()));
  probe(process.argv[2] as UserBackendName, answer).then(
    () => process.exit(0),
    (error: Error) => answer({ loaded: false, reason: error.message }).then(() => process.exit(0)));
}
