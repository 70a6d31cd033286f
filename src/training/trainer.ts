// The SimSiam training loop: dataset → two views → f, h → symmetric loss → SGD, with monitors,
// metrics, checkpoints and a graceful stop. It reports through the protocol's messages only, so
// the extension (via engineProcess) and the CLI drive the same code.
import * as path from 'path';
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs';
import { resolveConfig, type PresetName, type TrainConfig } from './config';
import { selectBackend } from './backend';
import { scanDataset, type DatasetScan, type ImageRecord } from './dataset';
import { batchesPerEpoch, loaderThreadCount, TwoViewLoader, type LoaderWarning } from './batchLoader';
import { embedRecords } from './embedding';
import { DecodedImageCache } from './imageDecode';
import { defaultAugmentConfig } from './augment';
import { buildSimSiam } from './model/simsiam';
import { knnAccuracy } from './monitor';
import { trainStep, parametersOf, parameterGroups } from './step';
import { SgdMomentum } from './optimizer';
import { DataParallelTrainer, replicaCount } from './dataParallel';
import { learningRates } from './schedule';
import { loadCheckpoint, saveCheckpoint, readCheckpointPointer } from './checkpoint';
import {
  createRunDir, defaultRunsDir, MetricsLog, readRun, readStatus, writeJsonAtomic, writeStatus, RUN_FILE,
  type RunRecord,
} from './runStore';
import {
  message, type DoneMessage, type EngineMessage, type ResumeRequest, type TrainRequest, type DatasetSummary,
} from './protocol';

export type Emit = (message: EngineMessage) => void;

/** Set by a stop request; the loop finishes the current step, checkpoints and returns. */
export class StopSignal {
  requested = false;
  request(): void {
    this.requested = true;
  }
}

export class TrainingError extends Error {}

export async function startTraining(request: Omit<TrainRequest, 'v' | 'type'>, emit: Emit, stop: StopSignal): Promise<DoneMessage> {
  const folder = path.resolve(request.folder);
  const config = resolveConfig(request.preset as PresetName, request.overrides);
  const runsDir = path.resolve(request.runsDir ?? defaultRunsDir(folder));
  const dataset = await scanForTraining(folder, runsDir, config);
  const backend = await selectBackend(config.backend);

  const { dir, id } = createRunDir(runsDir, request.name ?? `${config.preset}-${path.basename(folder)}`);
  const record: RunRecord = {
    id, name: request.name ?? path.basename(folder), createdAt: new Date().toISOString(), config,
    dataset: summarise(dataset), backend: backend.detail,
  };
  writeJsonAtomic(path.join(dir, RUN_FILE), record);
  const model = buildSimSiam(config);
  return runLoop({ runDir: dir, record, dataset, model, optimizerState: null, startStep: 0, emit, stop });
}

export async function resumeTraining(request: Omit<ResumeRequest, 'v' | 'type'>, emit: Emit, stop: StopSignal): Promise<DoneMessage> {
  const runDir = path.resolve(request.runDir);
  if (!fs.existsSync(path.join(runDir, RUN_FILE))) {
    throw new TrainingError(`${runDir} is not a SimSiam run folder (no ${RUN_FILE}): pass a folder under .simsiam/runs/.`);
  }
  const status = readStatus(runDir);
  if (status.status === 'running') {
    throw new TrainingError(`Run ${runDir} is still training (process ${status.pid}): stop it before resuming.`);
  }
  const record = readRun(runDir);
  const config: TrainConfig = request.epochs ? { ...record.config, epochs: request.epochs } : record.config;
  const pointer = readCheckpointPointer(runDir);
  if (!pointer) {
    throw new TrainingError(`Run ${runDir} has no checkpoint yet (it stopped before its first one): start a new run instead.`);
  }
  const dataset = await scanForTraining(record.dataset.root, path.dirname(runDir), config);
  const perEpoch = batchesPerEpoch(dataset.train.length, config.batchSize);
  if (pointer.step >= config.epochs * perEpoch) {
    throw new TrainingError(`Run ${runDir} has already trained ${Math.floor(pointer.step / perEpoch)} epochs ` +
      `(step ${pointer.step}): resume it with more epochs than that.`);
  }
  const backend = await selectBackend(config.backend);
  const checkpoint = await loadCheckpoint(runDir);
  if (!checkpoint) throw new TrainingError(`Run ${runDir}: its checkpoint could not be read.`);
  const updated: RunRecord = { ...record, config, backend: backend.detail };
  writeJsonAtomic(path.join(runDir, RUN_FILE), updated);
  return runLoop({
    runDir, record: updated, dataset, model: checkpoint.model, optimizerState: checkpoint.optimizerState,
    startStep: checkpoint.step, emit, stop,
  });
}

async function scanForTraining(folder: string, runsDir: string, config: TrainConfig): Promise<DatasetScan> {
  const dataset = await scanDataset(folder, { excludeDirs: [runsDir], testFraction: config.testFraction, seed: config.seed });
  if (dataset.train.length < config.batchSize) {
    throw new TrainingError(
      `${folder} has ${dataset.train.length} training image${dataset.train.length === 1 ? '' : 's'}, fewer than one ` +
      `batch of ${config.batchSize}: add images or lower the batch size (--batch).`);
  }
  return dataset;
}

/** The kNN monitor needs labels and held-out images. */
function labelledFor(dataset: DatasetScan): boolean {
  return dataset.classes.length > 1 && dataset.test.length > 0;
}

function summarise(dataset: DatasetScan): DatasetSummary {
  return { root: dataset.root, trainImages: dataset.train.length, testImages: dataset.test.length, classes: dataset.classes };
}

interface LoopInput {
  runDir: string;
  record: RunRecord;
  dataset: DatasetScan;
  model: tf.LayersModel;
  optimizerState: Record<string, tf.Tensor> | null;
  startStep: number;
  emit: Emit;
  stop: StopSignal;
}

async function runLoop(input: LoopInput): Promise<DoneMessage> {
  const { runDir, record, dataset, model, emit, stop } = input;
  const config = record.config;
  const parameters = parametersOf(model);
  const optimizer = new SgdMomentum(config.momentum, config.weightDecay);
  if (input.optimizerState) {
    optimizer.loadBuffers(parameters.variables, parameters.all.map((p) => {
      const saved = input.optimizerState![p.name];
      if (!saved) throw new TrainingError(`Checkpoint of ${runDir} has no optimizer state for ${p.name}.`);
      return saved;
    }));
    tf.dispose(Object.values(input.optimizerState));
  }
  const shards = replicaCount(config, tf.getBackend());
  // Created inside the try below, so that a failure after it still ends the replica threads.
  let parallel: DataParallelTrainer | null = null;

  // Each unusable file is reported once, by whichever reader meets it first: the initial kNN
  // evaluation reads the training images before the loader does, and held-out images are read
  // by the monitor alone.
  const skippedFiles = new Set<string>();
  const reportSkipped = (w: LoaderWarning) => {
    if (skippedFiles.has(w.file)) return;
    skippedFiles.add(w.file);
    emit(message({ type: 'warning', message: `Skipped ${w.file}: ${w.reason}`, file: w.file }));
  };
  const loader = new TwoViewLoader(dataset.train, {
    augment: defaultAugmentConfig(config.imageSize), batchSize: config.batchSize, seed: config.seed,
    maxCachedImages: config.maxCachedImages, threads: loaderThreadCount(config, tf.getBackend()),
    onWarning: reportSkipped,
  });
  const batchesPerEpoch = loader.batchesPerEpoch();
  const labelled = labelledFor(dataset);
  // The kNN monitor embeds the same images every epoch: decode them once (at the eval size).
  const evalCache = new DecodedImageCache(labelled ? config.maxCachedImages : 0, config.imageSize);
  const metrics = new MetricsLog(runDir);
  metrics.rewindTo(input.startStep);
  const size = config.imageSize;
  const trainSingle = (view1: Float32Array, view2: Float32Array, count: number, groups: ReturnType<typeof parameterGroups>) => {
    const x1 = tf.tensor4d(view1, [count, size, size, 3]);
    const x2 = tf.tensor4d(view2, [count, size, size, 3]);
    try {
      return trainStep(model, x1, x2, parameters.variables, optimizer, groups);
    } finally {
      tf.dispose([x1, x2]);
    }
  };
  let step = input.startStep;
  let epoch = Math.floor(step / batchesPerEpoch);
  const setStatus = (status: 'running' | 'completed' | 'stopped' | 'failed', messageText?: string) =>
    writeStatus(runDir, { status, step, epoch, pid: status === 'running' ? process.pid : undefined, message: messageText });

  setStatus('running');
  const checkpoint = async () => {
    const buffers = optimizer.bufferValues(parameters.variables);
    const state = Object.fromEntries(parameters.all.map((p, i) => [p.name, buffers[i]]));
    const dir = await saveCheckpoint(runDir, model, state, step, epoch);
    emit(message({ type: 'checkpoint', step, epoch, dir }));
  };

  try {
    if (shards > 1) {
      parallel = await DataParallelTrainer.create(model, parameters.variables, optimizer, config, tf.getBackend(), shards);
    }
    // The untrained network's kNN accuracy is the baseline the curve is read against.
    const initialKnnTop1 = step === 0 && labelled ? await evaluateKnn(model, dataset, config, evalCache, reportSkipped) : null;
    if (initialKnnTop1 !== null) {
      metrics.add({ kind: 'eval', step, epoch, knnTop1: initialKnnTop1 });
      metrics.flush();
    }
    emit(message({
      type: 'started', runDir, runId: record.id, config: { ...config },
      backend: shards > 1 ? `${record.backend} × ${shards} threads (data-parallel)` : record.backend,
      dataset: summarise(dataset), startStep: step, batchesPerEpoch, initialKnnTop1,
    }));
    // What the scan left out (links to folders, unreadable folders, loose images) must not vanish silently.
    for (const text of dataset.warnings) emit(message({ type: 'warning', message: text }));
    while (epoch < config.epochs) {
      const lrs = learningRates(config, epoch);
      const groups = parameterGroups(parameters, lrs);
      const startBatch = step - epoch * batchesPerEpoch;
      const epochStarted = Date.now();
      let lossSum = 0;
      let zStdSum = 0;
      let steps = 0;
      for await (const batch of loader.epoch(epoch, startBatch)) {
        const count = batch.indices.length;
        const { loss, zStd } = parallel
          ? await parallel.step(batch.view1, batch.view2, count, groups)
          : trainSingle(batch.view1, batch.view2, count, groups);
        step += 1;
        if (!Number.isFinite(loss)) {
          const good = readCheckpointPointer(runDir);
          const text = `Loss became ${loss} at step ${step} (epoch ${epoch + 1}): training stopped. ` +
            (good ? `The last good checkpoint (step ${good.step}) is kept. ` : '') +
            'Lower the learning rate (baseLr) or check the images, then start a new run or resume.';
          step = good?.step ?? 0;
          metrics.flush();
          setStatus('failed', text);
          throw new TrainingError(text);
        }
        lossSum += loss;
        zStdSum += zStd;
        steps += 1;
        metrics.add({ kind: 'step', step, epoch, loss, lr: lrs.encoder });
        emit(message({ type: 'step', step, epoch, batch: step - epoch * batchesPerEpoch, batchesPerEpoch, loss, lr: lrs.encoder }));
        if (stop.requested) break;
      }
      const seconds = (Date.now() - epochStarted) / 1000;
      if (stop.requested && step - epoch * batchesPerEpoch < batchesPerEpoch) {
        metrics.flush();
        await checkpoint();
        setStatus('stopped');
        return finish('stopped');
      }
      const knnTop1 = labelled ? await evaluateKnn(model, dataset, config, evalCache, reportSkipped) : null;
      epoch += 1;
      const epochRecord = {
        epoch, epochs: config.epochs, step, meanLoss: lossSum / Math.max(1, steps), lr: lrs.encoder,
        zStd: zStdSum / Math.max(1, steps), zStdReference: 1 / Math.sqrt(config.projectorDim), knnTop1,
        imagesPerSecond: (steps * config.batchSize) / Math.max(seconds, 1e-9), seconds,
      };
      metrics.add({ kind: 'epoch', ...epochRecord, skippedFiles: skippedFiles.size });
      metrics.flush();
      emit(message({ type: 'epoch', ...epochRecord }));
      if (epochRecord.zStd < config.collapseWarnFraction * epochRecord.zStdReference) {
        emit(message({
          type: 'warning',
          message: `Collapse warning: z-std ${epochRecord.zStd.toFixed(4)} is below ${config.collapseWarnFraction} × 1/√d ` +
            `(${epochRecord.zStdReference.toFixed(4)}). The outputs are becoming constant; check the lr and augmentations.`,
        }));
      }
      await checkpoint();
      setStatus(epoch < config.epochs ? 'running' : 'completed');
      if (stop.requested) {
        setStatus('stopped');
        return finish('stopped');
      }
    }
    return finish('completed');
  } catch (error) {
    if (!(error instanceof TrainingError)) setStatus('failed', (error as Error).message);
    throw error;
  } finally {
    await parallel?.close();
    await loader.close();
    optimizer.dispose();
    model.dispose();
  }

  function finish(status: 'completed' | 'stopped'): DoneMessage {
    const done: DoneMessage = message({ type: 'done', status, step, epoch, runDir });
    emit(done);
    return done;
  }
}

async function evaluateKnn(model: tf.LayersModel, dataset: DatasetScan, config: TrainConfig,
  cache: DecodedImageCache, onSkipped: (warning: LoaderWarning) => void): Promise<number> {
  const bank = await embedRecords(model, dataset.train, config.imageSize, undefined, cache, onSkipped);
  const queries = await embedRecords(model, dataset.test, config.imageSize, undefined, cache, onSkipped);
  const labelsOf = (records: ImageRecord[], kept: number[]) => Int32Array.from(kept, (i) => records[i].label ?? -1);
  try {
    return await knnAccuracy(bank.features, labelsOf(dataset.train, bank.kept), queries.features,
      labelsOf(dataset.test, queries.kept), { k: config.knnK, temperature: config.knnTemperature, classes: dataset.classes.length });
  } finally {
    tf.dispose([bank.features, queries.features]);
  }
}
