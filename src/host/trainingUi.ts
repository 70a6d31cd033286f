// What a person sees of a run while it trains, outside the panel: a status-bar item (epoch/step,
// loss, ETA; click to open the panel) and a cancellable progress notification that stops the run.
import * as vscode from 'vscode';
import type { TrainingManager, TrainingSession } from './training';
import { formatDuration } from './format';

export class TrainingStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('simsiam.training', vscode.StatusBarAlignment.Left, 50);
  private readonly subscription: vscode.Disposable;

  constructor(private readonly training: TrainingManager) {
    this.item.name = 'SimSiam Training';
    this.subscription = training.onDidChange(() => this.update());
  }

  /** The text shown now (tests read it). */
  get text(): string {
    return this.item.text;
  }

  private update(): void {
    const sessions = this.training.active.filter((s) => !s.ended);
    const shown = sessions.at(-1);
    if (!shown) {
      this.item.hide();
      return;
    }
    const others = sessions.length > 1 ? ` (+${sessions.length - 1})` : '';
    this.item.text = `$(pulse) ${shown.name}: ${describe(shown)}${others}`;
    this.item.tooltip = sessions.map((s) => `${s.name}: ${describe(s)}${s.runDir ? `\n${s.runDir}` : ''}`).join('\n\n') +
      '\n\nClick to open the experiment.';
    this.item.command = shown.runDir
      ? { title: 'Open Experiment', command: 'simsiam.openExperiment', arguments: [shown.runDir] }
      : undefined;
    this.item.show();
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}

export function describe(session: TrainingSession): string {
  if (session.isStopping) return 'stopping…';
  const p = session.progress;
  if (!p) return 'starting…';
  const parts = [`epoch ${Math.min(p.epoch + 1, p.epochs)}/${p.epochs}`, `step ${p.batch}/${p.batchesPerEpoch}`];
  if (p.loss !== null) parts.push(`loss ${p.loss.toFixed(4)}`);
  if (p.etaSeconds !== null) parts.push(`ETA ${formatDuration(p.etaSeconds)}`);
  return parts.join(' · ');
}

/** A notification for the session's whole life; Cancel stops the run (with a checkpoint). */
export function showTrainingProgress(session: TrainingSession): void {
  void vscode.window.withProgress({
    location: vscode.ProgressLocation.Notification,
    title: `SimSiam: training ${session.name}`,
    cancellable: true,
  }, async (progress, token) => {
    token.onCancellationRequested(() => session.stop());
    let reported = 0;
    const subscription = session.onMessage(() => {
      const p = session.progress;
      let increment: number | undefined;
      if (p && p.epochs * p.batchesPerEpoch > 0) {
        const fraction = (100 * p.step) / (p.epochs * p.batchesPerEpoch);
        increment = Math.max(0, fraction - reported);
        reported += increment;
      }
      progress.report({ message: describe(session), increment });
    });
    try {
      await session.finished;
    } finally {
      subscription.dispose();
    }
  });
}
