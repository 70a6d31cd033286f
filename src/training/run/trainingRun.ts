// One run while it trains: the model, its optimizer and replicas, the loader, the kNN monitor's
// data, the metrics log and status.json, and the protocol messages that report them. The trainer's
// loop (../trainer.ts) calls these steps in the order of the official main loop; this is where
// their plumbing lives.
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from '../config';
import type { DatasetScan, ImageRecord } from '../data/dataset';
import { TwoViewLoader, loaderThreadCount, type LoaderWarning } from '../data/batchLoader';
import type { DecodedImageCache } from '../data/imageDecode';
import { augmentConfigFor } from '../data/augment';
import type { SkippedFiles } from '../data/skippedFiles';
import { embedRecords } from '../embedding';
import { knnAccuracy } from '../monitor';
import { evaluationRecord } from '../evaluation/evaluateRun';
import { SgdMomentum } from '../optimizer';
import type { LearningRates } from '../schedule';
import { parameterGroups, parametersOf, trainStepAsync, type Parameters } from '../step';
import { DataParallelTrainer, microBatchSizes, replicaCount } from '../tfjs/dataParallel';
import { lastGoodCheckpoint, removeStaleTemporaries, saveCheckpoint } from './checkpoint';
import { MetricsLog, writeStatus, type RunRecord } from './runStore';
import {
  message, type DatasetSummary, type DoneMessage, type Emit, type EpochRecord, type MetricRecord,
} from '../protocol';

/** A failure the user can fix; `field` names the config field at fault, so each front end can name its own setting or flag. */
export class TrainingError extends Error {
  constructor(message: string, readonly field?: keyof TrainConfig) {
    super(message);
  }
}

/** Set by a stop request; the loop finishes the current step, checkpoints and returns. */
export class StopSignal {
  requested = false;
  request(): void {
    this.requested = true;
  }
}

export interface TrainingRunInput {
  runDir: string;
  record: RunRecord;
  dataset: DatasetScan;
  model: tf.LayersModel;
  optimizerState: Record<string, tf.Tensor> | null;
  startStep: number;
  /** Images per forward/backward pass on one training thread (0: its whole shard of the batch). */
  microBatch: number;
  /** Decoded images at the evaluation size, kept for the kNN monitor (filled while they were checked). */
  evalCache: DecodedImageCache;
  /** Files already found unreadable, each reported once. */
  skipped: SkippedFiles;
  emit: Emit;
  stop: StopSignal;
}

/** What one epoch's steps add up to. */
export interface EpochTotals {
  /** False when a stop request ended the epoch early. */
  completed: boolean;
  meanLoss: number;
  zStd: number;
  steps: number;
  seconds: number;
  /** Of `seconds`, the wait for the loader's next batch. */
  loaderWaitSeconds: number;
}

/** The kNN monitor needs labels and held-out images. */
export function hasKnnMonitor(dataset: DatasetScan): boolean {
  return dataset.classes.length > 1 && dataset.test.length > 0;
}

export function summarise(dataset: DatasetScan): DatasetSummary {
  return { root: dataset.root, trainImages: dataset.train.length, testImages: dataset.test.length, classes: dataset.classes };
}

export class TrainingRun {
  readonly config: TrainConfig;
  readonly batchesPerEpoch: number;
  step: number;
  epoch: number;
  private readonly parameters: Parameters;
  private readonly optimizer: SgdMomentum;
  private readonly loader: TwoViewLoader;
  private readonly metrics: MetricsLog;
  private parallel: DataParallelTrainer | null = null;

  constructor(private readonly input: TrainingRunInput) {
    this.config = input.record.config;
    // First, before any thread starts: a history that cannot be read refuses the run.
    this.metrics = new MetricsLog(input.runDir);
    this.metrics.rewindTo(input.startStep);
    this.parameters = parametersOf(input.model);
    this.optimizer = new SgdMomentum(this.config.momentum, this.config.weightDecay);
    if (input.optimizerState) this.restoreOptimizer(input.optimizerState);
    this.loader = new TwoViewLoader(input.dataset.train, {
      augment: augmentConfigFor(this.config), batchSize: this.config.batchSize, seed: this.config.seed,
      maxCachedImages: this.config.maxCachedImages, threads: loaderThreadCount(this.config, tf.getBackend()),
      onWarning: (w) => this.skip(w),
    });
    this.batchesPerEpoch = this.loader.batchesPerEpoch();
    this.step = input.startStep;
    this.epoch = Math.floor(this.step / this.batchesPerEpoch);
  }

  get stopRequested(): boolean {
    return this.input.stop.requested;
  }

  /** Starts the replicas (their threads must be ended by close()) and says the run has begun. */
  async start(): Promise<void> {
    removeStaleTemporaries(this.input.runDir);
    this.setStatus('running');
    const shards = replicaCount(this.config, tf.getBackend());
    const { microBatch } = this.input;
    const splits = microBatchSizes(this.config.batchSize / shards, microBatch).length > 1;
    if (shards > 1 || splits) {
      this.parallel = await DataParallelTrainer.create(this.input.model, this.parameters.variables, this.optimizer, this.config,
        tf.getBackend(), shards, microBatch);
    }
    const { runDir, record, dataset } = this.input;
    const threads = shards > 1 ? `, ${shards} training threads (data-parallel)` : '';
    this.input.emit(message({
      type: 'started', runDir, runId: record.id, config: this.config,
      backend: `${record.backend}${threads}${splits ? `, micro-batches of ${microBatch}` : ''}`,
      dataset: summarise(dataset), startStep: this.step, batchesPerEpoch: this.batchesPerEpoch,
    }));
    // What the scan left out (links to folders, unreadable folders, loose images) must not vanish silently.
    for (const text of dataset.warnings) this.input.emit(message({ type: 'warning', message: text }));
  }

  /** One pass over the loader from where the run stands, until the epoch ends or a stop is requested. */
  async trainEpoch(lrs: LearningRates): Promise<EpochTotals> {
    const groups = parameterGroups(this.parameters, lrs);
    const started = Date.now();
    let lossSum = 0;
    let zStdSum = 0;
    let steps = 0;
    let waited = 0;
    let asked = Date.now();
    for await (const batch of this.loader.epoch(this.epoch, this.step - this.epoch * this.batchesPerEpoch)) {
      waited += Date.now() - asked;
      const count = batch.indices.length;
      const compiling = this.firstCudaStep();
      if (compiling) this.input.emit(message({ type: 'progress', task: 'compile', done: 0, total: 1 }));
      const { loss, zStd } = this.parallel
        ? await this.parallel.step(batch.view1, batch.view2, count, groups)
        : await this.trainSingle(batch.view1, batch.view2, count, groups);
      if (compiling) this.input.emit(message({ type: 'progress', task: 'compile', done: 1, total: 1 }));
      this.step += 1;
      if (!Number.isFinite(loss)) await this.diverged(loss);
      lossSum += loss;
      zStdSum += zStd;
      steps += 1;
      this.record({ kind: 'step', step: this.step, epoch: this.epoch, loss, lr: lrs.encoder });
      // A step on one thread never yields, and batches already loaded resolve at once: without a
      // turn of the event loop here, a stop message or signal would wait for the epoch's end.
      await new Promise(setImmediate);
      if (this.stopRequested) break;
      asked = Date.now();
    }
    return {
      completed: this.step === (this.epoch + 1) * this.batchesPerEpoch,
      meanLoss: lossSum / Math.max(1, steps), zStd: zStdSum / Math.max(1, steps), steps, seconds: (Date.now() - started) / 1000,
      loaderWaitSeconds: waited / 1000,
    };
  }

  /** kNN top-1 of the current network on the held-out images; null when the dataset has no labels to judge by. */
  async evaluate(): Promise<number | null> {
    if (!hasKnnMonitor(this.input.dataset)) return null;
    const { model, dataset } = this.input;
    const config = this.config;
    const onSkipped = (w: LoaderWarning) => this.skip(w);
    const total = dataset.train.length + dataset.test.length;
    const progress = (done: number) => this.input.emit(message({ type: 'progress', task: 'evaluate', done, total }));
    const { evalCache } = this.input;
    const bank = await embedRecords(model, dataset.train, config.imageSize, progress, evalCache, onSkipped);
    const queries = await embedRecords(model, dataset.test, config.imageSize, (done) => progress(dataset.train.length + done), evalCache, onSkipped);
    const labelsOf = (records: ImageRecord[], kept: number[]) => Int32Array.from(kept, (i) => records[i].label ?? -1);
    try {
      return await knnAccuracy(bank.features, labelsOf(dataset.train, bank.kept), queries.features,
        labelsOf(dataset.test, queries.kept), { k: config.knnK, temperature: config.knnTemperature, classes: dataset.classes.length });
    } finally {
      tf.dispose([bank.features, queries.features]);
    }
  }

  /** The untrained network's kNN accuracy: the baseline the curve is read against. */
  async evaluateBaseline(): Promise<void> {
    const knnTop1 = await this.evaluate();
    if (knnTop1 === null) return;
    this.record({ kind: 'eval', step: this.step, epoch: this.epoch, knnTop1 });
    this.metrics.flush();
  }

  /**
   * The full evaluation of the trained network (kNN at k = 20 and 200, linear probe, precision@10)
   * beside its random-init baseline, recorded as the run's last metric.
   */
  async recordEvaluation(): Promise<void> {
    const { model, dataset, runDir, emit, evalCache } = this.input;
    this.record(await evaluationRecord(model, { step: this.step, epoch: this.epoch }, {
      config: this.config, dataset, runsDir: path.dirname(runDir), emit, cache: evalCache, onSkipped: (w) => this.skip(w),
    }));
    this.metrics.flush();
  }

  /** Closes the epoch: its record (with the monitor's verdict) is logged, reported and flushed. */
  endEpoch(totals: EpochTotals, lr: number, knnTop1: number | null): EpochRecord {
    this.epoch += 1;
    const record: EpochRecord = {
      kind: 'epoch', step: this.step, epoch: this.epoch, meanLoss: totals.meanLoss, lr, zStd: totals.zStd,
      zStdReference: 1 / Math.sqrt(this.config.projectorDim), knnTop1,
      imagesPerSecond: (totals.steps * this.config.batchSize) / Math.max(totals.seconds, 1e-9), seconds: totals.seconds,
      loaderWaitSeconds: totals.loaderWaitSeconds, skippedFiles: this.input.skipped.count,
    };
    this.record(record);
    this.metrics.flush();
    this.warnIfCollapsing(record);
    return record;
  }

  async checkpoint(): Promise<void> {
    this.metrics.flush();
    const buffers = this.optimizer.bufferValues(this.parameters.variables);
    const state = Object.fromEntries(this.parameters.all.map((p, i) => [p.name, buffers[i]]));
    const dir = await saveCheckpoint(this.input.runDir, this.input.model, state, this.step, this.epoch);
    this.input.emit(message({ type: 'checkpoint', step: this.step, epoch: this.epoch, dir }));
    this.setStatus(this.epoch < this.config.epochs ? 'running' : 'completed');
  }

  /** Ends the run as stopped (its last checkpoint is where a resume continues) or completed. */
  finish(status: 'completed' | 'stopped'): DoneMessage {
    this.setStatus(status);
    const done: DoneMessage = message({ type: 'done', status, step: this.step, epoch: this.epoch, runDir: this.input.runDir });
    this.input.emit(done);
    return done;
  }

  /** A failure the loop did not already explain marks the run failed with its message. */
  failed(error: unknown): void {
    if (!(error instanceof TrainingError)) this.setStatus('failed', (error as Error).message);
  }

  async close(): Promise<void> {
    await this.parallel?.close();
    await this.loader.close();
    this.optimizer.dispose();
    this.input.model.dispose();
  }

  // ---- helpers -------------------------------------------------------------------------------

  /** A metric goes to metrics.jsonl and, unchanged, to whoever drives the engine. */
  private record(record: MetricRecord): void {
    this.metrics.add(record);
    this.input.emit(message({ type: 'metric', record }));
  }

  /**
   * True once, for the first step on tfjs-node-gpu: libtensorflow 2.9's CUDA kernels predate newer
   * GPUs, whose driver compiles them from PTX then (minutes, cached for later runs), which a person
   * would otherwise take for a hang.
   */
  private firstCudaStep(): boolean {
    if (this.cudaWarmedUp || !this.input.record.backend.startsWith('tfjs-node-gpu')) return false;
    this.cudaWarmedUp = true;
    return true;
  }

  private cudaWarmedUp = false;

  private skip(warning: LoaderWarning): void {
    this.input.skipped.report(warning.file, warning.reason);
  }

  private setStatus(status: 'running' | 'completed' | 'stopped' | 'failed', messageText?: string): void {
    writeStatus(this.input.runDir, {
      status, step: this.step, epoch: this.epoch, pid: status === 'running' ? process.pid : undefined, message: messageText,
    });
  }

  private restoreOptimizer(saved: Record<string, tf.Tensor>): void {
    this.optimizer.loadBuffers(this.parameters.variables, this.parameters.all.map((p) => {
      const buffer = saved[p.name];
      if (!buffer) throw new TrainingError(`Checkpoint of ${this.input.runDir} has no optimizer state for ${p.name}.`);
      return buffer;
    }));
    tf.dispose(Object.values(saved));
  }

  private async trainSingle(view1: Float32Array, view2: Float32Array, count: number, groups: ReturnType<typeof parameterGroups>) {
    const size = this.config.imageSize;
    const x1 = tf.tensor4d(view1, [count, size, size, 3]);
    const x2 = tf.tensor4d(view2, [count, size, size, 3]);
    try {
      return await trainStepAsync(this.input.model, x1, x2, this.parameters.variables, this.optimizer, groups);
    } finally {
      tf.dispose([x1, x2]);
    }
  }

  /** A non-finite loss ends the run, failed, at its last good checkpoint. */
  private async diverged(loss: number): Promise<never> {
    // Checked, not just read: the pointer's checkpoint may be damaged on disk since it was written.
    let good = null;
    let unchecked = '';
    try {
      good = await lastGoodCheckpoint(this.input.runDir);
    } catch (error) {
      // Checking loads a model: on a heap near its limit that can fail too, and must not hide why the run stopped.
      unchecked = `(Its checkpoints could not be checked: ${(error as Error).message}) `;
    }
    const text = `Loss became ${loss} at step ${this.step} (epoch ${this.epoch + 1}): training stopped. ` +
      (good ? `The last good checkpoint (step ${good.step}) is kept. ` : unchecked) +
      'Lower the learning rate (baseLr) or check the images, then start a new run or resume.';
    this.step = good?.step ?? 0;
    this.metrics.flush();
    this.setStatus('failed', text);
    throw new TrainingError(text, 'baseLr');
  }

  private warnIfCollapsing(record: EpochRecord): void {
    const fraction = this.config.collapseWarnFraction;
    if (record.zStd >= fraction * record.zStdReference) return;
    this.input.emit(message({
      type: 'warning',
      message: `Collapse warning: z-std ${record.zStd.toFixed(4)} is below ${fraction} × 1/√d ` +
        `(${record.zStdReference.toFixed(4)}). The outputs are becoming constant; check the lr and augmentations.`,
    }));
  }
}
