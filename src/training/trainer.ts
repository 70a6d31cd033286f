// SimSiam training, start to finish: a run folder for a new run or the checkpoint of an old one,
// then the official main loop — per epoch, set the learning rate, train an epoch, evaluate,
// checkpoint. It reports through the protocol's messages only, so the extension (via
// engineProcess) and the CLI drive the same code; the plumbing lives in ./run/trainingRun.ts.
import * as path from 'path';
import * as fs from 'fs';
import { checkConfig, type TrainConfig } from './config';
import { selectBackend } from './tfjs/backend';
import { MIN_SHARD, microBatchSizes, replicaCount } from './tfjs/dataParallel';
import { estimateWasmHeap } from './tfjs/heapProbe';
import { scanDataset, type DatasetScan } from './data/dataset';
import { DecodedImageCache } from './data/imageDecode';
import { readableImages } from './data/readableImages';
import { SkippedFiles } from './data/skippedFiles';
import { batchesPerEpoch } from './data/batchLoader';
import { buildSimSiam } from './model/simsiam';
import { learningRates } from './schedule';
import { loadLastGoodCheckpoint, type LoadedCheckpoint } from './run/checkpoint';
import {
  createRunDir, defaultRunsDir, readRun, readStoredStatus, writeJsonAtomic, RUN_FILE, type RunRecord,
} from './run/runStore';
import { withRunLock } from './run/runLock';
import { defaultRunName } from './run/runNames';
import { hasKnnMonitor, StopSignal, summarise, TrainingError, TrainingRun, type TrainingRunInput } from './run/trainingRun';
import { message, type DoneMessage, type Emit, type ResumeRequest, type TrainRequest } from './protocol';

export { StopSignal, TrainingError };

/** A new run stopped while its images were read: no run folder was created. Not a failure. */
export class StoppedBeforeStart extends Error {}

/** A new run of `request.config` (resolved by the caller, checked here) on a folder of images. */
export async function startTraining(request: Omit<TrainRequest, 'v' | 'type'>, emit: Emit, stop: StopSignal): Promise<DoneMessage> {
  const folder = path.resolve(request.folder);
  const config = checkConfig(request.config);
  const runsDir = path.resolve(request.runsDir ?? defaultRunsDir(folder));
  const { dataset, ...images } = await scanForTraining(folder, runsDir, config, emit, stop);
  const backend = await selectBackend(config.backend);
  const microBatch = await microBatchFor(config, backend.name, emit);
  if (stop.requested) throw new StoppedBeforeStart('Stopped before training started: no run was created.');

  const name = request.name ?? defaultRunName(folder, config, runsDir);
  const { dir, id } = createRunDir(runsDir, name);
  // Held from the moment the folder exists: no other process resumes it meanwhile, and readers see it running.
  return withRunLock(dir, 'training', 'training', async () => {
    const record: RunRecord = {
      id, name, createdAt: new Date().toISOString(), config,
      dataset: summarise(dataset), backend: backend.detail,
    };
    writeJsonAtomic(path.join(dir, RUN_FILE), record);
    return train({
      runDir: dir, record, dataset, ...images, model: buildSimSiam(config), optimizerState: null, startStep: 0, microBatch, emit, stop,
    });
  });
}

/** Continues a run from its latest checkpoint, optionally with a larger epoch budget. */
export async function resumeTraining(request: Omit<ResumeRequest, 'v' | 'type'>, emit: Emit, stop: StopSignal): Promise<DoneMessage> {
  const runDir = path.resolve(request.runDir);
  if (!fs.existsSync(path.join(runDir, RUN_FILE))) {
    throw new TrainingError(`${runDir} is not a SimSiam run folder (no ${RUN_FILE}): pass a folder under .simsiam/runs/.`);
  }
  // Taken before anything is read or written: two resumes of one run must not both train it.
  return withRunLock(runDir, 'training', 'resuming training', async (lock) => {
    if (lock.note) emit(message({ type: 'warning', message: lock.note }));
    const record = readRun(runDir);
    // A resumed run's config passes the same checks as a new one's.
    const config = request.epochs ? checkConfig({ ...record.config, epochs: request.epochs }, `${runDir}: cannot resume`) : record.config;
    const backend = await selectBackend(config.backend);
    // A damaged latest checkpoint is refused by name, and the run continues from the newest intact one.
    const checkpoint = await loadLastGoodCheckpoint(runDir, (refused) => emit(message({ type: 'warning', message: refused.problem })));
    if (!checkpoint) {
      throw new TrainingError(`Run ${runDir} has no checkpoint yet (it stopped before its first one): start a new run instead.`);
    }
    let input: TrainingRunInput;
    try {
      try {
        readStoredStatus(runDir);
      } catch (error) {
        // status.json only reports; the checkpoint is what a resume continues from.
        emit(message({ type: 'warning', message: `${(error as Error).message} Resuming from the checkpoint at step ${checkpoint.step} rewrites it.` }));
      }
      if (checkpoint.imageSize !== config.imageSize) {
        throw new TrainingError(`${path.join(runDir, RUN_FILE)} asks for ${config.imageSize} px images, but its checkpoint takes ` +
          `${checkpoint.imageSize} px: set imageSize back to ${checkpoint.imageSize} in run.json.`);
      }
      const { dataset, ...images } = await scanForTraining(record.dataset.root, path.dirname(runDir), config, emit, stop);
      if (stop.requested) {
        disposeCheckpoint(checkpoint);
        return stoppedBeforeStart(runDir, checkpoint, emit);
      }
      const perEpoch = batchesPerEpoch(dataset.train.length, config.batchSize);
      if (checkpoint.step >= config.epochs * perEpoch) {
        throw new TrainingError(`Run ${runDir} has already trained ${Math.floor(checkpoint.step / perEpoch)} epochs ` +
          `(step ${checkpoint.step}): resume it with more epochs than that.`);
      }
      const microBatch = await microBatchFor(config, backend.name, emit);
      // Re-read: a rename or note written while the images were scanned is kept.
      const updated: RunRecord = { ...readRun(runDir), config, backend: backend.detail };
      writeJsonAtomic(path.join(runDir, RUN_FILE), updated);
      input = {
        runDir, record: updated, dataset, ...images, model: checkpoint.model, optimizerState: checkpoint.optimizerState,
        startStep: checkpoint.step, microBatch, emit, stop,
      };
    } catch (error) {
      // Refused before training: the engine lives on, so the loaded checkpoint must not.
      disposeCheckpoint(checkpoint);
      throw error;
    }
    return train(input);
  });
}

/** A stop that came while a resumed run's images were read: nothing was trained or written. */
function stoppedBeforeStart(runDir: string, at: { step: number; epoch: number }, emit: Emit): DoneMessage {
  const done: DoneMessage = message({ type: 'done', status: 'stopped', step: at.step, epoch: at.epoch, runDir });
  emit(done);
  return done;
}

function disposeCheckpoint(checkpoint: LoadedCheckpoint): void {
  checkpoint.model.dispose();
  Object.values(checkpoint.optimizerState).forEach((tensor) => tensor.dispose());
}

/** The main loop: per epoch, set the learning rate, train an epoch, evaluate, checkpoint. */
async function train(input: TrainingRunInput): Promise<DoneMessage> {
  let run: TrainingRun;
  try {
    run = new TrainingRun(input);
  } catch (error) {
    input.model.dispose();
    Object.values(input.optimizerState ?? {}).forEach((tensor) => tensor.dispose());
    throw error;
  }
  const { config } = run;
  try {
    await run.start();
    if (run.step === 0 && !run.stopRequested) await run.evaluateBaseline();
    if (run.stopRequested) {
      await run.checkpoint();
      return run.finish('stopped');
    }
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
    await run.recordEvaluation();
    return run.finish('completed');
  } catch (error) {
    run.failed(error);
    throw error;
  } finally {
    await run.close();
  }
}

/** Batch norm needs two images per pass. */
const MIN_MICRO_BATCH = 2;

/**
 * Images per forward/backward pass on one training thread: the config's microBatch, but on wasm
 * never more than the thread's 4 GiB heap holds, measured before training, so that a step past it
 * cannot abort the run; a size at which not even two images fit is refused.
 */
async function microBatchFor(config: TrainConfig, backendName: string, emit: Emit): Promise<number> {
  if (backendName !== 'wasm') return config.microBatch;
  const shard = config.batchSize / replicaCount(config, backendName);
  const wanted = config.microBatch > 0 ? Math.min(config.microBatch, shard) : shard;
  emit(message({ type: 'progress', task: 'measure memory', done: 0, total: 1 }));
  let estimate;
  try {
    estimate = await estimateWasmHeap(config, wanted);
  } catch (error) {
    // A precaution that failed is no reason to refuse a run that may well fit.
    emit(message({ type: 'warning', message: `Could not check that a training step fits the wasm heap: ${(error as Error).message}` }));
    return config.microBatch;
  } finally {
    emit(message({ type: 'progress', task: 'measure memory', done: 1, total: 1 }));
  }
  if (!estimate || estimate.fits) return config.microBatch;
  if (estimate.largestStep < MIN_MICRO_BATCH) {
    throw new TrainingError(`At ${config.imageSize} px, even a training step of ${MIN_MICRO_BATCH} images per thread ` +
      `needs more than the wasm backend's heap holds (4 GiB per thread, some of it kept free): the largest image size that fits ` +
      `is about ${estimate.largestSizeFor(MIN_MICRO_BATCH)} px. Lower the image size, or train on the tfjs-node backend.`, 'imageSize');
  }
  // The images the shard's even split actually puts in a pass (16 with room for 12: 8 + 8).
  const microBatch = Math.max(...microBatchSizes(shard, estimate.largestStep));
  emit(message({ type: 'warning', message: `At ${config.imageSize} px a pass of ${wanted} images needs about ` +
    `${(estimate.bytes / 2 ** 30).toFixed(1)} GiB, more than a wasm thread's heap holds: each thread trains its ${shard} images of ` +
    `a batch in micro-batches of at most ${microBatch} and adds up their gradients (the batch and its learning rate are unchanged). ` +
    `Batch norm then normalises over ${microBatch} images at a time` +
    (microBatch < MIN_SHARD ? ', noisier than the official recipe\'s 32 per GPU: tfjs-node, if it installs here, trains whole shards.' : '.') }));
  return microBatch;
}

/** The dataset's images, those that decode; fewer than one batch is refused with what to do. */
async function scanForTraining(folder: string, runsDir: string, config: TrainConfig, emit: Emit, stop: StopSignal):
  Promise<{ dataset: DatasetScan; evalCache: DecodedImageCache; skipped: SkippedFiles }> {
  const scanned = await scanDataset(folder, { excludeDirs: [runsDir], testFraction: config.testFraction, seed: config.seed });
  const skipped = new SkippedFiles(emit);
  // Checked at the evaluation size, so the kNN monitor finds its images decoded already.
  const evalCache = new DecodedImageCache(hasKnnMonitor(scanned) ? config.maxCachedImages : 0, config.imageSize);
  const train = await readableImages(scanned.train, evalCache, skipped,
    (done, total) => emit(message({ type: 'progress', task: 'decode', done, total })), stop);
  if (stop.requested) return { dataset: scanned, evalCache, skipped };
  const found = scanned.train.length;
  const counted = train.length === found
    ? `${found} training image${found === 1 ? '' : 's'}`
    : `${train.length} of ${found} training image files that could be read`;
  if (train.length < config.batchSize) {
    throw new TrainingError(`${folder} has ${counted}, fewer than one batch of ${config.batchSize}: ` +
      `${train.length < found ? 'replace the unreadable files (see the warnings), ' : ''}add images or lower the batch size.`, 'batchSize');
  }
  if (train.length < found) {
    emit(message({ type: 'warning', message: `${folder}: training on ${counted}; the others are skipped (see the warnings above).` }));
  }
  return { dataset: { ...scanned, train }, evalCache, skipped };
}
