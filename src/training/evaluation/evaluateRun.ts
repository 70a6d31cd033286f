// A run's full evaluation, as one 'evaluation' record in its metrics.jsonl: at the end of training
// (trainer.ts) and on demand for any checkpoint on disk (`simsiam eval`, "Evaluate Checkpoint").
// Beside the trained network's figures stand the untrained network's: the same config's random
// initialisation, computed once per (architecture, seed, image size, dataset) and kept in the runs
// folder, since every run of a sweep over learning rates or augmentations shares it.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as v from 'valibot';
import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from '../config';
import { scanDataset, type DatasetScan } from '../data/dataset';
import type { DecodedImageCache } from '../data/imageDecode';
import type { LoaderWarning } from '../data/batchLoader';
import { buildSimSiam } from '../model/simsiam';
import { EvaluationFiguresSchema, type EvaluationFigures, type EvaluationRecord } from '../metrics';
import { message, type Emit } from '../protocol';
import { readChecked, readRun, writeJsonAtomic, MetricsLog } from '../run/runStore';
import { withRunLock } from '../run/runLock';
import { loadCheckpointAt, loadLastGoodCheckpoint } from '../run/checkpoint';
import { selectBackend } from '../tfjs/backend';
import { canEvaluate, evaluateModel } from './evaluate';

const BASELINES_DIR = '.baselines';

/** What the untrained network's backbone features depend on (its seeds come from the backbone's layers first). */
function baselineKey(config: TrainConfig, dataset: DatasetScan): string {
  const { backbone, widthMultiplier, stem, imageSize, seed, testFraction } = config;
  const identity = {
    backbone, widthMultiplier, stem, imageSize, seed, testFraction,
    root: dataset.root, train: dataset.train.length, test: dataset.test.length, classes: dataset.classes,
  };
  return crypto.createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 16);
}

const BaselineFileSchema = v.object({ key: v.string(), figures: EvaluationFiguresSchema });

export interface EvaluationContext {
  config: TrainConfig;
  dataset: DatasetScan;
  /** Where the baseline cache lives: the run's runs folder. */
  runsDir: string;
  emit: Emit;
  cache?: DecodedImageCache;
  onSkipped?: (warning: LoaderWarning) => void;
}

/** The random-init figures of `context`'s config, from the cache or computed (and cached) now. */
async function baselineFigures(context: EvaluationContext): Promise<EvaluationFigures | null> {
  const { config, dataset, runsDir } = context;
  if (!canEvaluate(dataset)) return null;
  const key = baselineKey(config, dataset);
  const file = path.join(runsDir, BASELINES_DIR, `${key}.json`);
  if (fs.existsSync(file)) {
    try {
      const stored = readChecked(file, BaselineFileSchema);
      if (stored.key === key) return stored.figures;
    } catch (error) {
      // A damaged cache entry is recomputed and replaced: it holds nothing that cannot be remade.
      context.emit(message({ type: 'warning', message: `${(error as Error).message} It is computed again.` }));
    }
  }
  const untrained = buildSimSiam(config);
  try {
    const figures = await figuresOf(untrained, context, 'evaluate untrained');
    if (figures) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      writeJsonAtomic(file, { key, figures });
    }
    return figures;
  } finally {
    untrained.dispose();
  }
}

function figuresOf(model: tf.LayersModel, context: EvaluationContext, task: string): Promise<EvaluationFigures | null> {
  return evaluateModel(model, context.dataset, {
    imageSize: context.config.imageSize, cache: context.cache, onSkipped: context.onSkipped,
    onProgress: (done, total) => context.emit(message({ type: 'progress', task, done, total })),
  });
}

/** The evaluation record of `model` at (step, epoch); figures null when the dataset has no labels. */
export async function evaluationRecord(model: tf.LayersModel, at: { step: number; epoch: number },
  context: EvaluationContext): Promise<EvaluationRecord> {
  const started = Date.now();
  const figures = await figuresOf(model, context, 'final evaluation');
  const baseline = figures ? await baselineFigures(context) : null;
  return {
    kind: 'evaluation', step: at.step, epoch: at.epoch, figures, baseline,
    trainImages: context.dataset.train.length, testImages: context.dataset.test.length,
    seconds: (Date.now() - started) / 1000,
  };
}

/**
 * Evaluates a run's checkpoint (the latest intact one, or the one at `step`) and appends the
 * record to its metrics.jsonl. Holds the run's training lock: a run that trains is evaluated at
 * its end anyway, and two writers must not append to its metrics at once.
 */
export async function evaluateRun(runDir: string, step: number | undefined, emit: Emit): Promise<EvaluationRecord> {
  return withRunLock(runDir, 'training', 'evaluating', async () => {
    const record = readRun(runDir);
    const { config } = record;
    await selectBackend(config.backend);
    const checkpoint = step === undefined ? await latestCheckpoint(runDir, emit) : await loadCheckpointAt(runDir, step);
    if (!checkpoint) throw new Error(`${runDir} has no checkpoint yet: train it first.`);
    try {
      const runsDir = path.dirname(runDir);
      // The same split as training: the scan's hold-out depends on the config's seed and fraction.
      const dataset = await scanDataset(record.dataset.root, { excludeDirs: [runsDir], testFraction: config.testFraction, seed: config.seed });
      const evaluation = await evaluationRecord(checkpoint.model, checkpoint, { config, dataset, runsDir, emit });
      const metrics = new MetricsLog(runDir);
      metrics.add(evaluation);
      metrics.flush();
      emit(message({ type: 'metric', record: evaluation }));
      return evaluation;
    } finally {
      checkpoint.model.dispose();
    }
  });
}

async function latestCheckpoint(runDir: string, emit: Emit) {
  const loaded = await loadLastGoodCheckpoint(runDir, (refused) => emit(message({ type: 'warning', message: refused.problem })));
  if (!loaded) return null;
  const { optimizerState, ...checkpoint } = loaded;
  tf.dispose(Object.values(optimizerState));
  return checkpoint;
}
