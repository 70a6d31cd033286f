// SimSiam training, start to finish: a run folder for a new run or the checkpoint of an old one,
// then the official main loop — per epoch, set the learning rate, train an epoch, evaluate,
// checkpoint. It reports through the protocol's messages only, so the extension (via
// engineProcess) and the CLI drive the same code; the plumbing lives in ./run/trainingRun.ts.
import * as path from 'path';
import * as fs from 'fs';
import type * as tf from '@tensorflow/tfjs';
import { checkConfig, type TrainConfig } from './config';
import { selectBackend } from './tfjs/backend';
import { scanDataset, type DatasetScan } from './data/dataset';
import { batchesPerEpoch } from './data/batchLoader';
import { buildSimSiam } from './model/simsiam';
import { learningRates } from './schedule';
import { loadCheckpoint } from './run/checkpoint';
import {
  createRunDir, defaultRunsDir, readCheckpointPointer, readRun, readStatus, writeJsonAtomic, RUN_FILE, type RunRecord,
} from './run/runStore';
import { StopSignal, summarise, TrainingError, TrainingRun, type TrainingRunInput } from './run/trainingRun';
import type { DoneMessage, Emit, ResumeRequest, TrainRequest } from './protocol';

export { StopSignal, TrainingError };

/** A new run of `request.config` (resolved by the caller, checked here) on a folder of images. */
export async function startTraining(request: Omit<TrainRequest, 'v' | 'type'>, emit: Emit, stop: StopSignal): Promise<DoneMessage> {
  const folder = path.resolve(request.folder);
  const config = checkConfig(request.config);
  const runsDir = path.resolve(request.runsDir ?? defaultRunsDir(folder));
  const dataset = await scanForTraining(folder, runsDir, config);
  const backend = await selectBackend(config.backend);

  const { dir, id } = createRunDir(runsDir, request.name ?? `${config.preset}-${path.basename(folder)}`);
  const record: RunRecord = {
    id, name: request.name ?? path.basename(folder), createdAt: new Date().toISOString(), config,
    dataset: summarise(dataset), backend: backend.detail,
  };
  writeJsonAtomic(path.join(dir, RUN_FILE), record);
  return train({ runDir: dir, record, dataset, model: buildSimSiam(config), optimizerState: null, startStep: 0, emit, stop });
}

/** Continues a run from its latest checkpoint, optionally with a larger epoch budget. */
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
  // A resumed run's config passes the same checks as a new one's.
  const config = request.epochs ? checkConfig({ ...record.config, epochs: request.epochs }, `${runDir}: cannot resume`) : record.config;
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
  return train({
    runDir, record: updated, dataset, model: checkpoint.model, optimizerState: checkpoint.optimizerState as Record<string, tf.Tensor>,
    startStep: checkpoint.step, emit, stop,
  });
}

/** The main loop: per epoch, set the learning rate, train an epoch, evaluate, checkpoint. */
async function train(input: TrainingRunInput): Promise<DoneMessage> {
  const run = new TrainingRun(input);
  const { config } = run;
  try {
    await run.start();
    if (run.step === 0) await run.evaluateBaseline();
    while (run.epoch < config.epochs) {
      const lrs = learningRates(config, run.epoch);
      const epoch = await run.trainEpoch(lrs);
      if (!epoch.completed) {
        await run.checkpoint();
        return run.finish('stopped');
      }
      run.endEpoch(epoch, lrs.encoder, await run.evaluate());
      await run.checkpoint();
      if (run.stopRequested && run.epoch < config.epochs) return run.finish('stopped');
    }
    return run.finish('completed');
  } catch (error) {
    run.failed(error);
    throw error;
  } finally {
    await run.close();
  }
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
