// The run's metrics as the panel holds them. History and live records overlap (the extension
// sends a full history when the run starts, resumes or its files change, and live records as they
// arrive); they are merged by the protocol's mergeMetrics, the one place that de-duplicates
// metric histories. Free of the DOM, so a unit test can apply messages to it.
import { mergeMetrics, type EpochRecord, type EvalRecord, type EvaluationRecord, type MetricRecord, type StepRecord } from '../../src/training/protocol';

export interface ChartCounts { stepPoints: number; epochPoints: number; comparePoints: number }

export class MetricStore {
  /** Each view holds one record per step, in step order. */
  steps: StepRecord[] = [];
  epochs: EpochRecord[] = [];
  evals: EvalRecord[] = [];
  /** Full evaluations (kNN at k = 20 and 200, linear probe, precision@10) beside their random-init baseline. */
  evaluations: EvaluationRecord[] = [];
  compare: { label: string; steps: number[]; losses: number[] } | null = null;

  /** A whole history: what the panel held before is dropped. */
  replace(records: MetricRecord[]): void {
    this.steps = [];
    this.epochs = [];
    this.evals = [];
    this.evaluations = [];
    this.append(records);
  }

  append(records: MetricRecord[]): void {
    if (!records.length) return;
    // Held records before the earliest incoming step cannot collide with it, so only the tails are
    // merged: a long run holds ~10⁵ records and takes an append every 100 ms.
    const from = records.reduce((min, r) => Math.min(min, r.step), Number.POSITIVE_INFINITY);
    const tail = (view: MetricRecord[]) => view.splice(firstAtOrAfter(view, from));
    for (const record of mergeMetrics(tail(this.steps), tail(this.epochs), tail(this.evals), tail(this.evaluations), records)) {
      if (record.kind === 'step') this.steps.push(record);
      else if (record.kind === 'epoch') this.epochs.push(record);
      else if (record.kind === 'eval') this.evals.push(record);
      else this.evaluations.push(record);
    }
  }

  /** The last record of each kind, by step. */
  latest(): MetricRecord[] {
    return [this.evals.at(-1), this.steps.at(-1), this.epochs.at(-1), this.evaluations.at(-1)].filter((r): r is MetricRecord => r !== undefined);
  }

  counts(): ChartCounts {
    return { stepPoints: this.steps.length, epochPoints: this.epochs.length, comparePoints: this.compare?.steps.length ?? 0 };
  }
}

/** Index of the first of `records` (in step order) whose step is at least `step`. */
function firstAtOrAfter(records: readonly MetricRecord[], step: number): number {
  let low = 0;
  let high = records.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (records[middle].step < step) low = middle + 1;
    else high = middle;
  }
  return low;
}
