// A sweep's runs, trained one after another through the TrainingManager: one engine at a time, so
// the runs do not compete for the cores and each one's images/s means something. Each run is
// named just before it starts (sweepRunName: unique among the runs on disk by then). A run that
// fails is recorded and the next one starts; a run that is stopped — Cancel, "Stop Training" on
// its row, the window closing — ends the sweep: the rest are skipped, never started behind the
// person's back.
import * as path from 'path';
import * as vscode from 'vscode';
import type { PresetName } from '../training/config';
import { takenRunNames } from '../training/run/runNames';
import { sweepRunName, type SweepRun } from '../training/sweep';
import type { TrainingManager, TrainingSession } from './training';

export interface SweepPlan {
  folder: string;
  runsDir: string;
  preset: PresetName;
  runs: SweepRun[];
}

/** How one run of the sweep ended; 'skipped' runs never started (the sweep was cancelled first). */
export interface SweepRunOutcome {
  name: string;
  label: string;
  status: 'completed' | 'stopped' | 'failed' | 'skipped';
  runDir?: string;
  message?: string;
}

/** Run `index` (0-based) of `total` has just been handed to an engine. */
export interface SweepRunStart {
  index: number;
  total: number;
  name: string;
  session: TrainingSession;
}

export class SweepQueue implements vscode.Disposable {
  private readonly starts = new vscode.EventEmitter<SweepRunStart>();
  private readonly outcomes: SweepRunOutcome[] = [];
  private cancelled = false;
  private current: TrainingSession | undefined;
  /** Fires as each run starts (its folder exists once `session.started` resolves). */
  readonly onDidStartRun = this.starts.event;
  /** Every run's outcome, in order, once the last one ended or the sweep was cancelled. */
  readonly finished: Promise<SweepRunOutcome[]>;

  constructor(private readonly training: TrainingManager, readonly plan: SweepPlan) {
    // Started on the next turn, so a caller subscribes to onDidStartRun before the first run starts.
    this.finished = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.runAll());
  }

  get total(): number {
    return this.plan.runs.length;
  }

  /** The outcomes so far. */
  get results(): readonly SweepRunOutcome[] {
    return this.outcomes;
  }

  get isCancelled(): boolean {
    return this.cancelled;
  }

  /** Stops the current run (it saves a checkpoint) and drops the runs not started yet. */
  cancel(): void {
    this.cancelled = true;
    this.current?.stop();
  }

  private async runAll(): Promise<SweepRunOutcome[]> {
    const { folder, runsDir, preset, runs } = this.plan;
    try {
      for (const [index, run] of runs.entries()) {
        // A run of this folder started elsewhere in the window (one per folder at a time) is waited for.
        for (let busy = this.training.sessionForFolder(folder); busy && !this.cancelled; busy = this.training.sessionForFolder(folder)) {
          await busy.finished;
        }
        const name = sweepRunName(folder, preset, run, takenRunNames(runsDir));
        if (this.cancelled) {
          this.outcomes.push({ name, label: run.label, status: 'skipped' });
          continue;
        }
        const outcome = await this.train(index, run, name);
        this.outcomes.push(outcome);
        if (outcome.status === 'stopped') this.cancelled = true;
      }
      return [...this.outcomes];
    } finally {
      this.current = undefined;
      this.starts.dispose();
    }
  }

  private async train(index: number, run: SweepRun, name: string): Promise<SweepRunOutcome> {
    const { folder, runsDir } = this.plan;
    let session: TrainingSession;
    try {
      session = this.training.train({ folder, config: run.config, runsDir, name });
    } catch (error) {
      return { name, label: run.label, status: 'failed', message: (error as Error).message };
    }
    this.current = session;
    this.starts.fire({ index, total: this.total, name, session });
    const ended = await session.finished;
    this.current = undefined;
    return {
      name, label: run.label, status: ended.status, ...(ended.runDir ? { runDir: path.resolve(ended.runDir) } : {}),
      ...(ended.status === 'failed' ? { message: ended.message } : {}),
    };
  }

  /** The window is closing: nothing more starts (the manager stops the current run itself). */
  dispose(): void {
    this.cancel();
  }
}
