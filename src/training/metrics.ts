// What a run reports while it trains: its metric records and its status. One record type for a
// metric, from the engine to the chart: the trainer builds it, the engine's `metric` message
// carries it (./protocol.ts), metrics.jsonl stores it, the host forwards it and the panel draws
// it, all unchanged. Imports nothing but valibot, so the panel's bundle can use it.
import * as v from 'valibot';
import { count, finite } from './versioned';

export const RUN_STATUSES = ['running', 'completed', 'stopped', 'failed', 'interrupted'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const RunStatusSchema = v.picklist(RUN_STATUSES);

// `step` is the global optimizer step a record was taken after; `epoch` is the number of epochs
// completed before it (step and eval records) or with it (epoch records).

export const StepRecordSchema = v.object({
  kind: v.literal('step'), step: count, epoch: count, loss: finite, lr: finite,
});
export const EvalRecordSchema = v.object({
  kind: v.literal('eval'), step: count, epoch: count, knnTop1: finite,
});
export const EpochRecordSchema = v.object({
  kind: v.literal('epoch'), step: count, epoch: count,
  /** Mean of the epoch's step losses. */
  meanLoss: finite,
  lr: finite,
  /** Collapse monitor: std over the batch of l2-normalised z, averaged over channels. */
  zStd: finite,
  /** 1/√d: what zStd is for a healthy, uncollapsed representation. */
  zStdReference: finite,
  knnTop1: v.nullable(finite),
  imagesPerSecond: finite,
  seconds: finite,
  /**
   * Of `seconds`, the time the training loop waited for the loader's next batch: near 0 while the
   * loader keeps ahead of training. Absent in runs recorded before it was measured.
   */
  loaderWaitSeconds: v.optional(finite),
  /** Files skipped so far because they could not be read. */
  skippedFiles: count,
});
/** The figures of one evaluation, for the trained network or for its random-init baseline. */
export const EvaluationFiguresSchema = v.object({
  /** Weighted kNN top-1 (k = 20 and 200, t = 0.1) on l2-normalised backbone features, train → test. */
  knnTop1At20: finite,
  knnTop1At200: finite,
  /** Linear probe top-1: logistic regression on frozen, normalised backbone features (docs/EVALUATION.md). */
  probeTop1: finite,
  /** Retrieval: the share of each test image's 10 nearest train images that share its class. */
  precisionAt10: finite,
});
/**
 * A full evaluation of a checkpoint (at the end of training, or on demand), beside the same
 * figures for the untrained network of the same config: what self-supervision added.
 */
export const EvaluationRecordSchema = v.object({
  kind: v.literal('evaluation'), step: count, epoch: count,
  /** null when the dataset has no class folders: there is nothing to score against. */
  figures: v.nullable(EvaluationFiguresSchema),
  baseline: v.nullable(EvaluationFiguresSchema),
  trainImages: count,
  testImages: count,
  seconds: finite,
});
export const MetricRecordSchema = v.variant('kind', [StepRecordSchema, EvalRecordSchema, EpochRecordSchema, EvaluationRecordSchema]);

export type StepRecord = v.InferOutput<typeof StepRecordSchema>;
export type EvalRecord = v.InferOutput<typeof EvalRecordSchema>;
export type EpochRecord = v.InferOutput<typeof EpochRecordSchema>;
export type EvaluationFigures = v.InferOutput<typeof EvaluationFiguresSchema>;
export type EvaluationRecord = v.InferOutput<typeof EvaluationRecordSchema>;
export type MetricRecord = v.InferOutput<typeof MetricRecordSchema>;

const KIND_ORDER: Record<MetricRecord['kind'], number> = { eval: 0, step: 1, epoch: 2, evaluation: 3 };

/**
 * The one place where overlapping metric histories are merged: one record per (kind, step), the
 * later source winning, in step order. The run's file and its live stream overlap around every
 * flush, and a resumed run rewrites its tail.
 */
export function mergeMetrics(...sources: readonly MetricRecord[][]): MetricRecord[] {
  const byKey = new Map<string, MetricRecord>();
  for (const records of sources) for (const r of records) byKey.set(`${r.kind}:${r.step}`, r);
  return [...byKey.values()].sort((a, b) => a.step - b.step || KIND_ORDER[a.kind] - KIND_ORDER[b.kind]);
}
