// The compare overlay: another run's step losses drawn over this run's loss chart.
import * as path from 'path';
import { readMetrics } from '../../training/run/runStore';
import type { StepRecord } from '../../training/protocol';
import type { RunSummary } from '../runCatalog';
import type { CompareOption, CompareSeriesMessage, WebviewMessageBody } from '../../webview/protocol';

/** Longest overlay curve sent to the webview; longer runs are thinned evenly. */
const MAX_COMPARE_POINTS = 5_000;

export const NO_COMPARISON: WebviewMessageBody<CompareSeriesMessage> = { type: 'compareSeries', runDir: null, label: '', steps: [], losses: [] };

/** Every listed run but the panel's own, labelled for the compare picker. */
export function compareOptions(runs: readonly RunSummary[], runDir: string): CompareOption[] {
  return runs
    .filter((run) => path.resolve(run.runDir) !== path.resolve(runDir))
    .map((run) => ({ runDir: run.runDir, label: `${run.record.name} · ${run.status.status} · ${path.basename(run.runDir)}` }));
}

/**
 * The loss curve of `requested`, or null when the catalog does not list it: the webview names
 * the run, the catalog vouches for it, and only then is its folder read.
 */
export function compareSeries(runs: readonly RunSummary[], requested: string): WebviewMessageBody<CompareSeriesMessage> | null {
  const run = runs.find((r) => r.runDir === requested);
  if (!run) return null;
  const steps = readMetrics(run.runDir).filter((r): r is StepRecord => r.kind === 'step');
  const stride = Math.max(1, Math.ceil(steps.length / MAX_COMPARE_POINTS));
  const kept = steps.filter((_, i) => i % stride === 0);
  return { type: 'compareSeries', runDir: run.runDir, label: run.record.name, steps: kept.map((r) => r.step), losses: kept.map((r) => r.loss) };
}
