// What a person sees of a run while it trains, outside the panel: a status-bar item (epoch, step,
// loss, kNN, and the phase in progress or the ETA; click to open the panel) and a cancellable
// progress notification that stops the run. Both word it as the panel does (src/webview/runText.ts).
import * as vscode from 'vscode';
import type { TrainingManager, TrainingSession } from './training';
import { sessionText } from '../webview/runText';

export class TrainingStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('simsiam.training', vscode.StatusBarAlignment.Left, 50);
  private readonly subscriptions: vscode.Disposable[];

  constructor(private readonly training: TrainingManager) {
    this.item.name = 'SimSiam Training';
    this.subscriptions = [
      training.onDidChange(() => this.update()),
      // A phase (loading images, a kNN evaluation) moves between steps, without a change event.
      training.onMessage(({ message }) => {
        if (message.type === 'progress') this.update();
      }),
    ];
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
    this.item.text = `$(pulse) ${shown.name}: ${sessionText(shown)}${others}`;
    this.item.tooltip = sessions.map((s) => `${s.name}: ${sessionText(s)}${s.runDir ? `\n${s.runDir}` : ''}`).join('\n\n') +
      '\n\nClick to open the experiment.';
    this.item.command = shown.runDir
      ? { title: 'Open Experiment', command: 'simsiam.openExperiment', arguments: [shown.runDir] }
      : undefined;
    this.item.show();
  }

  dispose(): void {
    this.subscriptions.forEach((s) => s.dispose());
    this.item.dispose();
  }
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
      progress.report({ message: sessionText(session), increment });
    });
    try {
      await session.finished;
    } finally {
      subscription.dispose();
    }
  });
}
