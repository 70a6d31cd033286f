// "SimSiam: Evaluate Checkpoint": the engine's full evaluation of one checkpoint (kNN at k = 20 and
// 200, linear probe, precision@10, beside the untrained network's), in an engine process of its
// own. The engine appends the record to the run's metrics.jsonl, so the panel and the runs table
// pick it up from there like any other metric.
import * as vscode from 'vscode';
import type { EngineMessage, EvaluationRecord } from '../training/protocol';
import type { EngineLauncher } from './training';
import { formatKnn } from '../webview/format';
import { showError, showInformation } from './notify';

export class CheckpointEvaluator {
  constructor(private readonly launch: EngineLauncher, private readonly log: vscode.LogOutputChannel) {}

  /** Evaluates the checkpoint at `step` of the run (the latest when undefined) with progress; undefined when it failed. */
  async evaluate(runDir: string, name: string, step: number | undefined): Promise<EvaluationRecord | undefined> {
    try {
      const record = await vscode.window.withProgress({
        location: vscode.ProgressLocation.Notification, title: `SimSiam: evaluating ${name}`, cancellable: false,
      }, (progress) => this.run(runDir, step, (text) => progress.report({ message: text })));
      void showInformation(`SimSiam: ${name} at step ${record.step}: ${summary(record)}`);
      return record;
    } catch (error) {
      void showError(`SimSiam: could not evaluate ${name}: ${(error as Error).message}`);
      return undefined;
    }
  }

  private run(runDir: string, step: number | undefined, onProgress: (text: string) => void): Promise<EvaluationRecord> {
    const engine = this.launch('evaluate');
    return new Promise<EvaluationRecord>((resolve, reject) => {
      engine.onMessage((m: EngineMessage) => {
        if (m.type === 'progress') onProgress(`${m.task} ${m.done}/${m.total}`);
        else if (m.type === 'warning') this.log.warn(`[evaluate] ${m.message}`);
        else if (m.type === 'metric' && m.record.kind === 'evaluation') resolve(m.record);
        else if (m.type === 'error') reject(new Error(m.message));
      });
      engine.onExit((exit) => reject(new Error(`the engine exited before it answered (${exit.signal ?? `code ${exit.code}`}); see SimSiam: Show Log`)));
      engine.send({ type: 'evaluate', runDir, ...(step === undefined ? {} : { step }) });
    }).finally(() => engine.dispose());
  }
}

/** "kNN@20 46.0 % (untrained 47.0 %) · kNN@200 … · probe …", or why there are no figures. */
export function summary(record: EvaluationRecord): string {
  const { figures, baseline } = record;
  if (!figures) return 'no labels (no class folders): only unsupervised figures, see the loss and z-std';
  const pair = (name: string, key: keyof typeof figures) =>
    `${name} ${formatKnn(figures[key])}${baseline ? ` (untrained ${formatKnn(baseline[key])})` : ''}`;
  return [pair('kNN@20', 'knnTop1At20'), pair('kNN@200', 'knnTop1At200'), pair('probe', 'probeTop1'), pair('precision@10', 'precisionAt10')].join(' · ');
}
