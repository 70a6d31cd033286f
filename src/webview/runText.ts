// How a run's progress reads, in words: one meaning per number, worded the same in the panel's
// header, the status bar, the progress notification and the Experiments view. The step is always
// the global step; the epoch counter says whether it counts the epoch in progress or those done;
// a loss says whether it is the last step's or an epoch's mean. Free of `vscode`, Node and the DOM,
// so the panel's script bundles it too.
import type { Phase, RunProgress } from './protocol';
import { formatDuration, formatKnn } from './format';

/** A training session's progress as the engine's messages tell it (TrainingSession keeps one). */
export interface LiveProgress {
  step: number;
  /** Epochs completed before the latest step. */
  epoch: number;
  epochs: number;
  batchesPerEpoch: number;
  loss: number | null;
  knnTop1: number | null;
  etaSeconds: number | null;
}

/** What a training session of this window knows (TrainingSession has this shape). */
export interface LiveState {
  progress: LiveProgress | null;
  phase: Phase | null;
}

/** What a run's files say: its status.json, its epoch budget and the last epoch record of metrics.jsonl. */
export interface RunFiles {
  status: { status: string; step: number; epoch: number };
  epochs: number;
  lastEpoch: { step: number; epoch: number; meanLoss: number; knnTop1: number | null } | null;
}

/** A phase is shown while it runs; one that reached its total is over. */
function activePhase(phase: Phase | null): Phase | null {
  return phase && phase.done < phase.total ? phase : null;
}

/** A session's progress, or null before the engine said the run started. */
function liveProgress(live: LiveState): RunProgress | null {
  const p = live.progress;
  if (!p) return null;
  return {
    running: true, step: p.step, epochsDone: p.epoch, epochs: p.epochs, batchesPerEpoch: p.batchesPerEpoch,
    loss: p.loss === null ? null : { of: 'step', value: p.loss },
    knnTop1: p.knnTop1, phase: activePhase(live.phase), etaSeconds: p.etaSeconds,
  };
}

/**
 * A run's progress: a session's of this window while it trains (`live`), else as the run's files
 * tell it (a run another process trains, one that ended, or one whose session has not started
 * yet, whose phase is then all the session can add).
 */
export function runProgress(live: LiveState | null, files: RunFiles): RunProgress {
  const fromSession = live && liveProgress(live);
  if (fromSession) return fromSession;
  const { status, lastEpoch } = files;
  return {
    running: live !== null || status.status === 'running', step: status.step, epochsDone: status.epoch, epochs: files.epochs,
    batchesPerEpoch: lastEpoch && lastEpoch.epoch > 0 && lastEpoch.step % lastEpoch.epoch === 0 ? lastEpoch.step / lastEpoch.epoch : null,
    loss: lastEpoch ? { of: 'epoch', value: lastEpoch.meanLoss } : null,
    knnTop1: lastEpoch?.knnTop1 ?? null, phase: live && activePhase(live.phase), etaSeconds: null,
  };
}

/** While a run trains, the epoch in progress ("epoch 2/3"); otherwise the epochs it completed ("2/3 epochs done"). */
export function epochText(p: Pick<RunProgress, 'running' | 'epochsDone' | 'epochs'>): string {
  return p.running ? `epoch ${Math.min(p.epochsDone + 1, p.epochs)}/${p.epochs}` : `${p.epochsDone}/${p.epochs} epochs done`;
}

/** The global step, out of the run's total when the steps per epoch are known. */
export function stepText(p: Pick<RunProgress, 'step' | 'epochs' | 'batchesPerEpoch'>): string {
  return p.batchesPerEpoch === null ? `step ${p.step}` : `step ${p.step}/${p.epochs * p.batchesPerEpoch}`;
}

const PHASE_NAMES = new Map([
  ['decode', 'loading images'], ['evaluate', 'evaluating kNN'], ['embed', 'indexing images'], ['measure memory', 'measuring memory'],
  ['final evaluation', 'evaluating (kNN, linear probe)'], ['evaluate untrained', 'evaluating the untrained network'],
  ['compile', 'compiling CUDA kernels for this GPU (first run only, can take minutes)'],
]);

/** "loading images 12/42"; a task this version does not know is named as the engine sent it. */
export function phaseText(phase: Phase): string {
  return `${PHASE_NAMES.get(phase.task) ?? phase.task} ${phase.done}/${phase.total}`;
}

export function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The parts of a progress line, in order; while a phase runs it stands where the ETA would (the pace says nothing about it). */
export function progressParts(p: RunProgress): string[] {
  const parts = [epochText(p), stepText(p)];
  if (p.loss) parts.push(`${p.loss.of === 'step' ? 'step loss' : 'epoch-mean loss'} ${p.loss.value.toFixed(4)}`);
  if (p.knnTop1 !== null) parts.push(`kNN ${formatKnn(p.knnTop1)}`);
  if (p.running && p.phase) parts.push(phaseText(p.phase));
  else if (p.running && p.etaSeconds !== null) parts.push(`ETA ${formatDuration(p.etaSeconds)}`);
  return parts;
}

/** A session of this window in one line: the status bar, its tooltip and the progress notification. */
export function sessionText(live: LiveState & { isStopping: boolean }): string {
  if (live.isStopping) return 'stopping…';
  const progress = liveProgress(live);
  if (progress) return progressParts(progress).join(' · ');
  const phase = activePhase(live.phase);
  return phase ? `starting: ${phaseText(phase)}` : 'starting…';
}
