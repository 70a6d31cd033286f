/**
 * How long a run's full evaluation takes (kNN at k = 20 and 200, precision@10, linear probe) for
 * 1,000 and 10,000 images, against the time of one training epoch over as many images. The
 * evaluation embeds every image once (the embed section's rate) and scores the features (timed
 * here on clustered 128-d features, the tiny preset's size); the goal is under 10 % of an epoch.
 */
import * as tf from '@tensorflow/tfjs';
import { performance } from 'perf_hooks';
import type { BenchContext } from './context';
import type { EmbedFigures } from './embed';
import type { TrainFigures } from './train';
import { scoreFeatures } from '../src/training/evaluation/evaluate';
import { formatMs, table } from './timing';

const SIZES = [1_000, 10_000];
const QUICK_SIZES = [1_000];
const DIM = 128;
const CLASSES = 10;

export interface EvaluationFigures { images: number; scoreMs: number; embedMs: number | null; epochMs: number | null }

/** Clustered, l2-normalised features: classes the probe has to work for. */
function features(count: number, seed: number): { features: tf.Tensor2D; labels: Int32Array } {
  return tf.tidy(() => {
    const labels = Int32Array.from({ length: count }, (_, i) => i % CLASSES);
    const centres = tf.randomNormal([CLASSES, DIM], 0, 1, 'float32', 1);
    const points = tf.add(tf.gather(centres, tf.tensor1d(labels, 'int32')), tf.randomNormal([count, DIM], 0, 2, 'float32', seed));
    return { features: tf.div(points, tf.norm(points, 2, 1, true)) as tf.Tensor2D, labels };
  });
}

export async function benchEvaluation(context: BenchContext, train: TrainFigures[], embed: EmbedFigures[]): Promise<EvaluationFigures[]> {
  context.heading(`Evaluation (kNN k=20/200, precision@10, linear probe) on ${DIM}-d features, train:test 9:1, against an epoch's time`);
  const trainRate = train[0]?.imagesPerSecond.median ?? null;
  const embedRate = embed[0]?.fromFilesPerSecond.median ?? null;
  const rows = [['images', 'score', 'embed (est.)', 'evaluation', 'epoch (est.)', 'share of an epoch']];
  const results: EvaluationFigures[] = [];
  for (const images of context.quick ? QUICK_SIZES : SIZES) {
    const testCount = Math.round(images / 10);
    const trainSplit = features(images - testCount, 2);
    const testSplit = features(testCount, 3);
    const started = performance.now();
    await scoreFeatures(trainSplit, testSplit, CLASSES);
    const scoreMs = performance.now() - started;
    tf.dispose([trainSplit.features, testSplit.features]);
    const embedMs = embedRate ? (images / embedRate) * 1000 : null;
    const epochMs = trainRate ? ((images - testCount) / trainRate) * 1000 : null;
    const total = scoreMs + (embedMs ?? 0);
    rows.push([String(images), formatMs(scoreMs), embedMs === null ? '-' : formatMs(embedMs), formatMs(total),
      epochMs === null ? '-' : formatMs(epochMs), epochMs === null ? '-' : `${((100 * total) / epochMs).toFixed(1)} %`]);
    results.push({ images, scoreMs, embedMs, epochMs });
  }
  context.print(table(rows));
  context.print(`  (embed and epoch estimated from this run's ${embed[0]?.detail ?? 'embed'} and ${train[0]?.detail ?? 'train'} rates; ` +
    'without the train/embed sections they are left out)');
  return results;
}
