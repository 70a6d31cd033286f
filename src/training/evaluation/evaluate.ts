// A full evaluation of a network's representation, as SSL papers report it and as the runs table
// compares runs: kNN top-1 at k = 20 and 200 (t = 0.1) and a linear probe on the frozen,
// l2-normalised backbone features of the train split, scored on the test split, and retrieval
// precision@10. The same figures for the untrained network of the same config are its baseline.
import * as tf from '@tensorflow/tfjs';
import type { DatasetScan, ImageRecord } from '../data/dataset';
import type { DecodedImageCache } from '../data/imageDecode';
import type { LoaderWarning } from '../data/batchLoader';
import { embedRecords } from '../embedding';
import { knnAccuracy } from '../monitor';
import type { EvaluationFigures } from '../metrics';
import { linearProbeTop1 } from './linearProbe';

export const KNN_TEMPERATURE = 0.1;
export const PRECISION_K = 10;

/** Labels and held-out images: without both there is nothing to score a representation against. */
export function canEvaluate(dataset: Pick<DatasetScan, 'classes' | 'test'>): boolean {
  return dataset.classes.length > 1 && dataset.test.length > 0;
}

/** Similarity scores held at once by precision@k (see monitor.ts's chunking for why). */
const SIMILARITY_CHUNK_FLOATS = 1 << 21;

/** Mean over queries of the share of their k nearest bank entries (by cosine) with the query's label. */
export async function precisionAtK(bank: tf.Tensor2D, bankLabels: Int32Array, queries: tf.Tensor2D,
  queryLabels: Int32Array, k: number): Promise<number> {
  const take = Math.min(k, bank.shape[0]);
  const count = queries.shape[0];
  if (!count || !take) return 0;
  const rowsPerChunk = Math.max(1, Math.floor(SIMILARITY_CHUNK_FLOATS / Math.max(1, bank.shape[0])));
  let hits = 0;
  for (let start = 0; start < count; start += rowsPerChunk) {
    const rows = Math.min(rowsPerChunk, count - start);
    const indices = tf.tidy(() => tf.topk(tf.matMul(tf.slice(queries, [start, 0], [rows, -1]), bank, false, true), take).indices);
    const nearest = await indices.data();
    indices.dispose();
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < take; j++) if (bankLabels[nearest[r * take + j]] === queryLabels[start + r]) hits++;
    }
  }
  return hits / (count * take);
}

export interface EmbeddedSplit { features: tf.Tensor2D; labels: Int32Array }

/** The figures of features already embedded; disposes nothing. */
export async function scoreFeatures(train: EmbeddedSplit, test: EmbeddedSplit, classes: number): Promise<EvaluationFigures> {
  const knn = (k: number) => knnAccuracy(train.features, train.labels, test.features, test.labels, { k, temperature: KNN_TEMPERATURE, classes });
  const knnTop1At20 = await knn(20);
  const knnTop1At200 = await knn(200);
  const precisionAt10 = await precisionAtK(train.features, train.labels, test.features, test.labels, PRECISION_K);
  const [dim] = train.features.shape.slice(1);
  const asProbeData = async (split: EmbeddedSplit) => ({
    features: await split.features.data() as Float32Array, labels: split.labels, count: split.labels.length, dim,
  });
  const { top1: probeTop1 } = linearProbeTop1(await asProbeData(train), await asProbeData(test), classes);
  return { knnTop1At20, knnTop1At200, probeTop1, precisionAt10 };
}

export interface EvaluateOptions {
  imageSize: number;
  cache?: DecodedImageCache;
  onSkipped?: (warning: LoaderWarning) => void;
  /** Images embedded so far out of train + test. */
  onProgress?: (done: number, total: number) => void;
}

/** Embeds both splits with `model` and scores them; null when the dataset has no labels to score against. */
export async function evaluateModel(model: tf.LayersModel, dataset: DatasetScan, options: EvaluateOptions): Promise<EvaluationFigures | null> {
  if (!canEvaluate(dataset)) return null;
  const total = dataset.train.length + dataset.test.length;
  const embed = async (records: ImageRecord[], offset: number): Promise<EmbeddedSplit> => {
    const { features, kept } = await embedRecords(model, records, options.imageSize,
      (done) => options.onProgress?.(offset + done, total), options.cache, options.onSkipped);
    return { features, labels: Int32Array.from(kept, (i) => records[i].label ?? -1) };
  };
  const train = await embed(dataset.train, 0);
  const test = await embed(dataset.test, dataset.train.length);
  try {
    return await scoreFeatures(train, test, dataset.classes.length);
  } finally {
    tf.dispose([train.features, test.features]);
  }
}
