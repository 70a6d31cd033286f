/**
 * Training throughput of the tiny preset per backend, fed by the real TwoViewLoader from a folder
 * of JPEGs, and where the time of one step goes.
 *
 *  - step: the trainer's own single-thread path (batch wait + tensor4d + trainStepAsync), images/s.
 *  - phases, on separate steps alternating with those, with wall-clock timers, each phase ended by
 *    reading a value it produced (a no-op wait on the synchronous wasm/cpu backends, a real sync
 *    on tfjs-node and WebGPU):
 *      data loading  the wait for the loader's next batch, plus tensor4d of both views
 *      forward       two forward passes in training mode and the loss
 *      backward      computeGradients (tf.variableGrads: forward again + backprop) minus forward
 *      optimiser     SgdMomentum.step
 *      read + free   the trainer's one sync of loss and z-std, and disposing the gradients
 *    Their sum is one step taken apart, so it should come close to the step time.
 *  - data-parallel: what startTraining actually runs on a single-threaded backend of a multi-core
 *    machine (DataParallelTrainer with replicaCount shards), images/s.
 *  - --kernels: tf.profile of one trainStep, the ten kernels that took the most time.
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { performance } from 'perf_hooks';
import { selectBackend } from '../src/training/tfjs/backend';
import { resolveConfig, type TrainConfig, type UserBackendName } from '../src/training/config';
import { defaultAugmentConfig } from '../src/training/data/augment';
import { TwoViewLoader, type TwoViewBatch } from '../src/training/data/batchLoader';
import { buildSimSiam, forward } from '../src/training/model/simsiam';
import { simsiamLoss } from '../src/training/loss';
import { SgdMomentum } from '../src/training/optimizer';
import { learningRates } from '../src/training/schedule';
import { computeGradients, parameterGroups, parametersOf, readAndDisposeAsync, trainStepAsync } from '../src/training/step';
import { webGpuIsSoftware } from '../src/training/tfjs/webgpuBackend';
import { DataParallelTrainer, replicaCount } from '../src/training/tfjs/dataParallel';
import type { ImageRecord } from '../src/training/data/dataset';
import { writeSyntheticImages } from './syntheticImages';
import { formatMs, formatRate, formatSpread, rate, since, spreadOf, table, type Spread } from './timing';
import type { BenchContext } from './context';

/** The cpu backend is ~200x slower per image than wasm: under --all it gets one small step. */
const CPU_BATCH = 8;
/** WebGPU on a software adapter (lavapipe in CI) takes tens of seconds per step: one, after one that compiles the shaders. */
const SOFTWARE_GPU_STEPS = { warmUp: 1, repeats: 1 };
const TRAIN_IMAGES = 256;
/** Photo-like files that decode to about the 72 px short side the 32 px loader asks for. */
const TRAIN_IMAGE_WIDTH = 96;
const TRAIN_IMAGE_HEIGHT = 72;
const KERNEL_ROWS = 10;

export interface PhaseFigures {
  dataMs: Spread;
  forwardMs: Spread;
  backwardMs: Spread;
  optimiserMs: Spread;
  readAndFreeMs: Spread;
}

export interface TrainFigures {
  backend: UserBackendName;
  detail: string;
  batchSize: number;
  stepMs: Spread;
  imagesPerSecond: Spread;
  phases: PhaseFigures | null;
  dataParallel: { shards: number; stepMs: Spread; imagesPerSecond: Spread } | null;
  kernels: KernelRow[] | null;
}

export interface KernelRow { name: string; calls: number; ms: number }

export function tinyConfig(backend: UserBackendName, overrides: Partial<TrainConfig> = {}): TrainConfig {
  return resolveConfig('tiny', { backend, ...overrides });
}

export function describePreset(config: TrainConfig): string {
  return `${config.backbone} ×${config.widthMultiplier}, ${config.stem} stem, ${config.imageSize} px, projector ${config.projectorDim}, ` +
    `predictor ${config.predictorHiddenDim}, batch ${config.batchSize}, two views`;
}

/** JPEG files for the loader, as scanDataset would list them. */
export async function writeTrainingFolder(context: BenchContext): Promise<ImageRecord[]> {
  const root = path.join(context.workDir, 'train-jpeg');
  const files = await writeSyntheticImages(root, {
    count: TRAIN_IMAGES, width: TRAIN_IMAGE_WIDTH, height: TRAIN_IMAGE_HEIGHT, format: 'jpeg', seed: 21,
  });
  return files.map((file) => ({ path: file, relPath: path.relative(root, file), label: null, split: 'train' }));
}

export async function benchTrain(context: BenchContext, records: ImageRecord[]): Promise<TrainFigures[]> {
  context.heading(`Training, tiny preset (${describePreset(tinyConfig('wasm'))}), from ${records.length} ` +
    `${TRAIN_IMAGE_WIDTH}x${TRAIN_IMAGE_HEIGHT} JPEGs through TwoViewLoader`);
  const figures: TrainFigures[] = [];
  for (const backend of context.backends) {
    if (backend === 'cpu' && !context.all) {
      context.print(`  cpu: skipped (plain JavaScript, ~200x slower per image than wasm: minutes per step); --all runs one step at batch ${CPU_BATCH}`);
      continue;
    }
    figures.push(await benchBackend(context, backend, records));
  }
  return figures;
}

async function benchBackend(context: BenchContext, backend: UserBackendName, records: ImageRecord[]): Promise<TrainFigures> {
  const info = await selectBackend(backend);
  const slow = backend === 'cpu';
  const softwareGpu = backend === 'webgpu' && webGpuIsSoftware();
  const config = tinyConfig(backend, slow ? { batchSize: CPU_BATCH } : {});
  const warmUp = slow ? 0 : softwareGpu ? SOFTWARE_GPU_STEPS.warmUp : context.warmUp;
  const repeats = slow ? 1 : softwareGpu ? SOFTWARE_GPU_STEPS.repeats : context.repeats;
  const size = config.imageSize;
  context.print(`\n  backend ${info.detail}${slow ? ` (batch ${CPU_BATCH}, one step)` : ''}` +
    `${softwareGpu ? ' (a software adapter: one step after a warm-up, no phases)' : ''}`);

  const model = buildSimSiam(config);
  const parameters = parametersOf(model);
  const optimizer = new SgdMomentum(config.momentum, config.weightDecay);
  const groups = parameterGroups(parameters, learningRates(config, 0));
  const loader = new TwoViewLoader(records, {
    augment: defaultAugmentConfig(size), batchSize: config.batchSize, seed: config.seed, maxCachedImages: records.length,
  });
  const batches = endlessBatches(loader);
  const nextBatch = async (): Promise<TwoViewBatch> => (await batches.next()).value as TwoViewBatch;
  const tensorsOf: TensorsOf = (batch) => {
    const shape: [number, number, number, number] = [batch.indices.length, size, size, 3];
    return [tf.tensor4d(batch.view1, shape), tf.tensor4d(batch.view2, shape)];
  };

  try {
    const timedTrainStep = async () => {
      const start = performance.now();
      const [view1, view2] = tensorsOf(await nextBatch());
      await trainStepAsync(model, view1, view2, parameters.variables, optimizer, groups);
      tf.dispose([view1, view2]);
      return since(start);
    };
    for (let i = 0; i < warmUp; i++) await timedTrainStep();
    // Whole steps and split steps alternate, so that both see the same machine load.
    const stepTimes: number[] = [];
    const split: PhaseSample[] = [];
    for (let i = 0; i < repeats; i++) {
      stepTimes.push(await timedTrainStep());
      if (!slow && !softwareGpu) split.push(await splitStep(nextBatch, tensorsOf, model, parameters.variables, optimizer, groups));
    }
    const stepMs = spreadOf(stepTimes);
    const imagesPerSecond = rate(config.batchSize, stepMs);
    context.print(`  step (1 thread: batch wait + trainStep): ${formatSpread(stepMs)} → ${formatRate(imagesPerSecond.median)} images/s`);
    const phases = split.length ? phaseFigures(split) : null;
    if (phases) printPhases(context, phases, stepMs);

    const shards = replicaCount(config, info.name);
    let dataParallel: TrainFigures['dataParallel'] = null;
    if (shards > 1 && !slow) {
      const parallel = await DataParallelTrainer.create(model, parameters.variables, optimizer, config, info.name, shards);
      try {
        const times: number[] = [];
        for (let i = 0; i < warmUp + repeats; i++) {
          const start = performance.now();
          const batch = await nextBatch();
          await parallel.step(batch.view1, batch.view2, batch.indices.length, groups);
          if (i >= warmUp) times.push(since(start));
        }
        const parallelMs = spreadOf(times);
        dataParallel = { shards, stepMs: parallelMs, imagesPerSecond: rate(config.batchSize, parallelMs) };
        context.print(`  step data-parallel (${shards} threads, what startTraining runs here): ${formatSpread(parallelMs)} → ` +
          `${formatRate(dataParallel.imagesPerSecond.median)} images/s (×${(stepMs.median / parallelMs.median).toFixed(2)})`);
      } finally {
        await parallel.close();
      }
    } else if (!slow) {
      context.print(`  data-parallel: not used on this backend/machine (replicaCount = ${shards})`);
    }

    const kernels = context.kernels ? await profileKernels(context, nextBatch, tensorsOf, model, parameters.variables, optimizer, groups) : null;
    return { backend, detail: info.detail, batchSize: config.batchSize, stepMs, imagesPerSecond, phases, dataParallel, kernels };
  } finally {
    await batches.return(undefined);
    await closeLoader(loader);
    optimizer.dispose();
    model.dispose();
  }
}

/**
 * TwoViewLoader.close() can leave nothing to keep Node running: replies queued while a long
 * synchronous step blocked the main thread are handled during terminate() and unref the worker,
 * and the process then exits, status 0, before close() resolves. A timer keeps it alive meanwhile.
 */
async function closeLoader(loader: TwoViewLoader): Promise<void> {
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    await loader.close();
  } finally {
    clearInterval(keepAlive);
  }
}

/** The loader's epochs back to back: steady state is the cached, shuffled case after epoch 0. */
async function* endlessBatches(loader: TwoViewLoader): AsyncGenerator<TwoViewBatch> {
  for (let epoch = 0; ; epoch++) yield* loader.epoch(epoch);
}

type TensorsOf = (batch: TwoViewBatch) => [tf.Tensor4D, tf.Tensor4D];

interface PhaseSample { data: number; forward: number; backward: number; optimiser: number; readAndFree: number }

/** One training step taken apart, each part timed on its own. */
async function splitStep(nextBatch: () => Promise<TwoViewBatch>, tensorsOf: TensorsOf, model: tf.LayersModel,
  variables: tf.Variable[], optimizer: SgdMomentum, groups: ReturnType<typeof parameterGroups>): Promise<PhaseSample> {
  let start = performance.now();
  const [view1, view2] = tensorsOf(await nextBatch());
  const data = since(start);

  start = performance.now();
  const loss = tf.tidy(() => {
    const a = forward(model, view1, true);
    const b = forward(model, view2, true);
    return simsiamLoss(a.p, b.p, a.z, b.z);
  });
  await loss.data();
  const forwardMs = since(start);
  loss.dispose();

  start = performance.now();
  const gradients = computeGradients(model, view1, view2, variables);
  // Backprop reaches the first layer last: once its gradient is readable, all of them are.
  await gradients.grads[variables[0].name].data();
  const gradientsMs = since(start);
  tf.dispose([view1, view2]);

  start = performance.now();
  optimizer.step(groups, gradients.grads);
  await variables[variables.length - 1].data();
  const optimiser = since(start);

  start = performance.now();
  await readAndDisposeAsync(gradients);
  const readAndFree = since(start);
  return { data, forward: forwardMs, backward: gradientsMs - forwardMs, optimiser, readAndFree };
}

function phaseFigures(samples: PhaseSample[]): PhaseFigures {
  const of = (key: keyof PhaseSample) => spreadOf(samples.map((sample) => sample[key]));
  return {
    dataMs: of('data'), forwardMs: of('forward'), backwardMs: of('backward'), optimiserMs: of('optimiser'), readAndFreeMs: of('readAndFree'),
  };
}

function printPhases(context: BenchContext, phases: PhaseFigures, stepMs: Spread): void {
  const parts: [string, Spread][] = [
    ['data loading (batch wait + tensor4d)', phases.dataMs],
    ['forward (2 views, training mode, loss)', phases.forwardMs],
    ['backward (variableGrads − forward)', phases.backwardMs],
    ['optimiser (SgdMomentum.step)', phases.optimiserMs],
    ['read loss + free gradients', phases.readAndFreeMs],
  ];
  const total = parts.reduce((sum, [, spread]) => sum + spread.median, 0);
  const rows = [['phase of one step (separate steps)', 'median', 'min', 'max', 'share']];
  for (const [label, spread] of parts) {
    rows.push([label, formatMs(spread.median), formatMs(spread.min), formatMs(spread.max), `${Math.round((100 * spread.median) / total)} %`]);
  }
  rows.push(['sum of medians (vs step above)', formatMs(total), '', '', `${formatMs(stepMs.median)}`]);
  context.print(table(rows, '    '));
}

async function profileKernels(context: BenchContext, nextBatch: () => Promise<TwoViewBatch>, tensorsOf: TensorsOf,
  model: tf.LayersModel, variables: tf.Variable[], optimizer: SgdMomentum, groups: ReturnType<typeof parameterGroups>): Promise<KernelRow[]> {
  const [view1, view2] = tensorsOf(await nextBatch());
  const start = performance.now();
  const profile = await tf.profile(async () => {
    await trainStepAsync(model, view1, view2, variables, optimizer, groups);
  });
  const wallMs = since(start);
  tf.dispose([view1, view2]);
  const byName = new Map<string, KernelRow>();
  let wrappers = { calls: 0, ms: 0 };
  for (const kernel of profile.kernels) {
    const ms = typeof kernel.kernelTimeMs === 'number' ? kernel.kernelTimeMs : 0;
    if (isWrapper(kernel.name)) {
      wrappers = { calls: wrappers.calls + 1, ms: wrappers.ms + ms };
      continue;
    }
    const row = byName.get(kernel.name) ?? { name: kernel.name, calls: 0, ms: 0 };
    row.calls += 1;
    row.ms += ms;
    byName.set(kernel.name, row);
  }
  const rows = [...byName.values()].sort((a, b) => b.ms - a.ms);
  const kernelMs = rows.reduce((sum, row) => sum + row.ms, 0);
  const lines = [['kernel (tf.profile of one trainStepAsync)', 'calls', 'ms', 'share']];
  for (const row of rows.slice(0, KERNEL_ROWS)) {
    lines.push([row.name, String(row.calls), formatMs(row.ms), `${((100 * row.ms) / kernelMs).toFixed(1)} %`]);
  }
  lines.push([`all ${rows.length} kernels, ${rows.reduce((n, row) => n + row.calls, 0)} calls`, '', formatMs(kernelMs),
    `(profiled step ${formatMs(wallMs)})`]);
  context.print(table(lines, '    '));
  context.print(`    (not counted: ${wrappers.calls} customGrad/op scopes, ${formatMs(wrappers.ms)}, whose kernels are listed themselves)`);
  return rows.slice(0, KERNEL_ROWS);
}

/** tf.profile also times customGrad and op scopes around kernels it lists separately: counting both would count twice. */
function isWrapper(name: string): boolean {
  return name.endsWith('__op') || name === 'unnamed scope';
}
