// What the runs table's overlays get of each selected run, read from its metrics file, and the
// config diff of the selection. Free of `vscode`, so it is unit-tested as it is.
import { readMetrics, readRun } from '../../training/run/runStore';
import { configDiff, type RunRow } from '../../training/run/runsReport';
import type { MetricRecord } from '../../training/metrics';
import type { RunRowShape, RunSeries, SeriesMessage, RunsTableMessageBody } from '../../webview/runsTableProtocol';

// The protocol's row schema and runsReport's row must describe the same thing: this fails to compile otherwise.
const rowsAgree: [RunRow extends RunRowShape ? true : false, RunRowShape extends RunRow ? true : false] = [true, true];
void rowsAgree;

/** Longest step curve sent per run; longer ones are thinned evenly, the last point always kept. */
export const MAX_STEP_POINTS = 5_000;

/** Every `stride`-th index of `length` items, and the last one: the legend shows the latest value. */
function thinnedIndices(length: number, max: number): number[] {
  const stride = Math.max(1, Math.ceil(length / max));
  const kept: number[] = [];
  for (let i = 0; i < length; i += stride) kept.push(i);
  if (length && kept.at(-1) !== length - 1) kept.push(length - 1);
  return kept;
}

/**
 * Steps per epoch, from the last epoch record (its step is epochs × steps per epoch); null before
 * the first epoch ends, or when a record does not divide evenly.
 */
export function stepsPerEpoch(records: readonly MetricRecord[]): number | null {
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i];
    if (r.kind !== 'epoch' || r.epoch === 0) continue;
    const perEpoch = r.step / r.epoch;
    return Number.isInteger(perEpoch) && perEpoch > 0 ? perEpoch : null;
  }
  return null;
}

/** The overlays' data for one run, from its records (in step order, as readMetrics gives them). */
export function runSeries(runDir: string, name: string, batchSize: number, records: readonly MetricRecord[], maxStepPoints = MAX_STEP_POINTS): RunSeries {
  const steps = records.filter((r) => r.kind === 'step');
  const kept = thinnedIndices(steps.length, maxStepPoints).map((i) => steps[i]);
  const epochs = records.filter((r) => r.kind === 'epoch');
  // The kNN monitor: eval records (step 0, and between epochs) and the epochs' own figure, one per step.
  const knn = new Map<number, { step: number; epoch: number; top1: number }>();
  for (const r of records) {
    if (r.kind === 'eval') knn.set(r.step, { step: r.step, epoch: r.epoch, top1: r.knnTop1 });
    if (r.kind === 'epoch' && r.knnTop1 !== null) knn.set(r.step, { step: r.step, epoch: r.epoch, top1: r.knnTop1 });
  }
  const knnPoints = [...knn.values()].sort((a, b) => a.step - b.step);
  return {
    runDir, name, batchSize, stepsPerEpoch: stepsPerEpoch(records),
    steps: { step: kept.map((r) => r.step), epoch: kept.map((r) => r.epoch), loss: kept.map((r) => r.loss), lr: kept.map((r) => r.lr) },
    epochs: {
      step: epochs.map((r) => r.step), epoch: epochs.map((r) => r.epoch), meanLoss: epochs.map((r) => r.meanLoss),
      // z-std as a fraction of 1/√d: 1 is a healthy, uncollapsed representation whatever d is.
      zStdRatio: epochs.map((r) => r.zStd / r.zStdReference),
    },
    knn: { step: knnPoints.map((p) => p.step), epoch: knnPoints.map((p) => p.epoch), top1: knnPoints.map((p) => p.top1) },
    evaluations: records.filter((r) => r.kind === 'evaluation'),
  };
}

/**
 * The overlays and config diff of the runs `runDirs`, in that order. Only runs among `rows` (what
 * the table lists) are read: the webview names runs, the table vouches for them. A run whose files
 * cannot be read is left out and named in `problems`.
 */
export function selectionSeries(rows: readonly RunRow[], runDirs: readonly string[]): { message: RunsTableMessageBody<SeriesMessage>; problems: string[] } {
  const runs: RunSeries[] = [];
  const configs: Record<string, unknown>[] = [];
  const problems: string[] = [];
  for (const runDir of runDirs) {
    const row = rows.find((r) => r.runDir === runDir);
    if (!row) {
      problems.push(`${runDir} is not a run of this table`);
      continue;
    }
    if (row.status === 'damaged') continue;
    try {
      const record = readRun(runDir);
      runs.push(runSeries(runDir, record.name, record.config.batchSize, readMetrics(runDir)));
      configs.push({ ...record.config });
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  return { message: { type: 'series', runs, diff: configDiff(configs) }, problems };
}
