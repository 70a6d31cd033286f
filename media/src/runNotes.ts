// What the panel says where the charts are: the run's failure (or why it stopped) above them, and
// in each chart without points why it has none. Pure, so a unit test can check the words.
import type { RunView } from '../../src/webview/protocol';
import { capitalised, phaseText } from '../../src/webview/runText';

export const WAITING_NOTE = 'Waiting for data…';

/** The message shown above the charts, or null when there is none. */
export function runBanner(run: RunView): { text: string; error: boolean } | null {
  if (run.status === 'failed') return { text: `Training failed: ${run.message ?? 'the engine gave no reason; see the SimSiam log.'}`, error: true };
  return run.message ? { text: run.message, error: false } : null;
}

const ENDED: Record<Exclude<RunView['status'], 'running'>, string> = {
  completed: 'completed', stopped: 'was stopped', interrupted: 'was interrupted', failed: 'failed',
};

/**
 * Why a chart has no points. `chartNote` is the chart's own explanation (the kNN chart needs class
 * folders), which holds unless the run failed.
 */
export function emptyChartNote(run: RunView | null, chartNote?: string): string {
  if (!run || run.status === 'running') {
    if (chartNote) return chartNote;
    const phase = run?.progress.phase;
    return phase ? `${capitalised(phaseText(phase))}…` : WAITING_NOTE;
  }
  if (run.status === 'failed') return 'No data: the run failed before this chart got any (the reason is above).';
  return chartNote ?? `No data: the run ${ENDED[run.status]} before this chart got any.`;
}
