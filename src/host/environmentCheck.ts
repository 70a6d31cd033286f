// "SimSiam: Show Environment": the engine's doctor report (`simsiam doctor`), run in an engine
// process of its own because it loads every backend, shown as a text document and written to the
// log, so a person can paste it into a bug report as it is.
import * as vscode from 'vscode';
import type { EngineMessage, EnvironmentMessage } from '../training/protocol';
import type { EngineLauncher } from './training';
import { showError } from './notify';

export class EnvironmentCheck {
  constructor(private readonly launch: EngineLauncher, private readonly log: vscode.LogOutputChannel) {}

  /** Runs the check with progress, opens the report; resolves to it (undefined when it failed). */
  async show(): Promise<EnvironmentMessage | undefined> {
    try {
      const report = await vscode.window.withProgress({
        location: vscode.ProgressLocation.Notification, title: 'SimSiam: checking the environment', cancellable: false,
      }, (progress) => this.run((done, total) => progress.report({ message: `backend ${done} of ${total} checked` })));
      for (const line of report.lines) this.log.info(`[environment] ${line}`);
      const document = await vscode.workspace.openTextDocument({ content: report.lines.join('\n') + '\n', language: 'plaintext' });
      await vscode.window.showTextDocument(document, { preview: false });
      return report;
    } catch (error) {
      void showError(`SimSiam: the environment check failed: ${(error as Error).message}`);
      return undefined;
    }
  }

  private run(onProgress: (done: number, total: number) => void): Promise<EnvironmentMessage> {
    const engine = this.launch('environment');
    return new Promise<EnvironmentMessage>((resolve, reject) => {
      engine.onMessage((m: EngineMessage) => {
        if (m.type === 'progress') onProgress(m.done, m.total);
        else if (m.type === 'environment') resolve(m);
        else if (m.type === 'error') reject(new Error(m.message));
      });
      engine.onExit((exit) => reject(new Error(`the engine exited before it answered (${exit.signal ?? `code ${exit.code}`}); see SimSiam: Show Log`)));
      engine.send({ type: 'environment' });
    }).finally(() => engine.dispose());
  }
}
