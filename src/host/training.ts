// Training runs owned by this window: one engine process per run, started from a folder (train)
// or a run folder (resume). A dataset folder trains once at a time; several folders may train at
// once. Sessions publish the engine's messages and a live progress summary for the status bar,
// the notification, the Experiments view and the panel.
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { TrainConfig } from '../training/config';
import { defaultRunsDir, readRun } from '../training/run/runStore';
import type { EngineMessage, MetricRecord, ProgressMessage, StartedMessage } from '../training/protocol';
import type { EngineProcess } from './engineProcess';
import { formatKnn } from '../webview/format';
import type { LiveProgress } from '../webview/runText';
import { settingOf } from './settings';

export type EngineLauncher = (label: string) => EngineProcess;

export type SessionOutcome =
  | { status: 'completed'; runDir: string }
  /** No runDir: stopped before the run's folder existed, so nothing was created. */
  | { status: 'stopped'; runDir: string | undefined }
  | { status: 'failed'; runDir: string | undefined; message: string; /** The setting that would fix it. */ setting?: string };


/** Thrown for requests that cannot be honoured as asked; the message is for the user. */
export class TrainingRequestError extends Error {}

export class TrainingSession {
  private readonly messages = new vscode.EventEmitter<EngineMessage>();
  private readonly startedPromise: Promise<StartedMessage>;
  private readonly finishedPromise: Promise<SessionOutcome>;
  private resolveStarted!: (started: StartedMessage) => void;
  private rejectStarted!: (error: Error) => void;
  private resolveFinished!: (outcome: SessionOutcome) => void;
  private rateOrigin: { step: number; time: number } | null = null;
  private stopping = false;
  private outcome: SessionOutcome | null = null;

  /** Every engine message of this run, in order. */
  readonly onMessage = this.messages.event;
  runDir: string | undefined;
  progress: LiveProgress | null = null;
  /** The engine's current phase between steps (scanning, decoding, evaluating, indexing), until the next step. */
  phase: Omit<ProgressMessage, 'v' | 'type'> | null = null;
  /** This session's metric records as the engine sent them, each once; the file gets them once per epoch. */
  readonly records: MetricRecord[] = [];

  constructor(
    readonly datasetRoot: string,
    readonly name: string,
    private readonly engine: EngineProcess,
    knownRunDir: string | undefined,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.runDir = knownRunDir;
    this.startedPromise = new Promise((resolve, reject) => {
      this.resolveStarted = resolve;
      this.rejectStarted = reject;
    });
    this.startedPromise.catch(() => undefined); // callers that never wait must not see an unhandled rejection
    this.finishedPromise = new Promise((resolve) => (this.resolveFinished = resolve));
    engine.onMessage((m) => this.onEngineMessage(m));
    engine.onExit(({ code, signal }) => {
      if (!this.outcome) this.finish({ status: 'failed', runDir: this.runDir, message: `The training process exited unexpectedly (${signal ?? `exit code ${code}`}); see the SimSiam log.` });
    });
  }

  /** Resolves when the engine reports the run started (its folder is known then). */
  get started(): Promise<StartedMessage> {
    return this.startedPromise;
  }

  get finished(): Promise<SessionOutcome> {
    return this.finishedPromise;
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  get ended(): boolean {
    return this.outcome !== null;
  }

  /** The engine stops after its current step and writes a checkpoint, so the run can be resumed. */
  stop(): void {
    if (this.outcome || this.stopping) return;
    this.stopping = true;
    this.log.info(`[${this.name}] stop requested: finishing the current step and saving a checkpoint`);
    this.engine.requestStop();
  }

  private onEngineMessage(m: EngineMessage): void {
    switch (m.type) {
      case 'started':
        this.runDir = m.runDir;
        this.progress = {
          step: m.startStep, epoch: Math.floor(m.startStep / m.batchesPerEpoch), epochs: m.config.epochs,
          batchesPerEpoch: m.batchesPerEpoch, loss: null, knnTop1: null, etaSeconds: null,
        };
        this.log.info(`[${this.name}] ${m.startStep ? `resumed at step ${m.startStep}` : 'started'}: ${m.runDir} · backend ${m.backend} · ` +
          `${m.dataset.trainImages} train / ${m.dataset.testImages} test images · ${m.batchesPerEpoch} steps per epoch`);
        this.resolveStarted(m);
        break;
      case 'metric':
        this.records.push(m.record);
        if (m.record.kind === 'step') this.phase = null;
        this.followProgress(m.record);
        break;
      case 'checkpoint':
        this.log.debug(`[${this.name}] checkpoint at step ${m.step}: ${m.dir}`);
        break;
      case 'warning':
        this.log.warn(`[${this.name}] ${m.message}`);
        break;
      case 'progress':
        this.phase = { task: m.task, done: m.done, total: m.total };
        this.log.debug(`[${this.name}] ${m.task} ${m.done}/${m.total}`);
        break;
      case 'error': {
        const setting = m.field === undefined ? undefined : settingOf(m.field);
        const text = setting ? m.message.replace(/\.?$/, ` (setting ${setting}).`) : m.message;
        this.log.error(`[${this.name}] ${text}`);
        if (m.detail) this.log.debug(m.detail);
        this.rejectStarted(new Error(text));
        this.finish({ status: 'failed', runDir: this.runDir, message: text, setting });
        break;
      }
      case 'done':
        this.log.info(`[${this.name}] ${m.status} at step ${m.step} (epoch ${m.epoch}): ${m.runDir}`);
        this.finish(m.status === 'completed' ? { status: 'completed', runDir: m.runDir } : { status: 'stopped', runDir: m.runDir });
        break;
      case 'cancelled':
        this.log.info(`[${this.name}] ${m.message}`);
        this.finish({ status: 'stopped', runDir: undefined });
        break;
      case 'similarResult':
      case 'embedResult':
        break;
    }
    this.messages.fire(m);
  }

  private followProgress(r: MetricRecord): void {
    if (!this.progress) return;
    switch (r.kind) {
      case 'step':
        this.progress = {
          ...this.progress, step: r.step, epoch: r.epoch, loss: r.loss,
        };
        this.progress.etaSeconds = this.estimateEta(r.step);
        this.log.trace(`[${this.name}] step ${r.step} loss ${r.loss.toFixed(4)} lr ${r.lr.toExponential(3)}`);
        break;
      case 'eval':
        this.progress = { ...this.progress, knnTop1: r.knnTop1 };
        this.log.info(`[${this.name}] kNN top-1 at step ${r.step}: ${formatKnn(r.knnTop1)}`);
        break;
      case 'epoch':
        this.progress = { ...this.progress, knnTop1: r.knnTop1 ?? this.progress.knnTop1 };
        this.log.info(`[${this.name}] epoch ${r.epoch}/${this.progress.epochs} loss ${r.meanLoss.toFixed(4)} z-std ${r.zStd.toFixed(4)} ` +
          `(1/√d ${r.zStdReference.toFixed(4)}) kNN ${r.knnTop1 === null ? 'n/a' : formatKnn(r.knnTop1)} ` +
          `${r.imagesPerSecond.toFixed(1)} img/s ${r.seconds.toFixed(1)} s`);
        break;
    }
  }

  private estimateEta(step: number): number | null {
    const now = Date.now();
    // Measured from the first step: start-up (scan, backend, initial kNN) is not training pace.
    if (!this.rateOrigin) {
      this.rateOrigin = { step, time: now };
      return null;
    }
    const progress = this.progress!;
    const stepsDone = step - this.rateOrigin.step;
    if (stepsDone <= 0) return null;
    const secondsPerStep = (now - this.rateOrigin.time) / 1000 / stepsDone;
    return Math.max(0, (progress.epochs * progress.batchesPerEpoch - step) * secondsPerStep);
  }

  private finish(outcome: SessionOutcome): void {
    if (this.outcome) return;
    this.outcome = outcome;
    this.rejectStarted(new Error(outcome.status === 'failed' ? outcome.message : `The run ${outcome.status} before it started.`));
    this.resolveFinished(outcome);
    this.engine.dispose();
    // Subscribers see the last message first (fired after this returns), then the emitter goes.
    setTimeout(() => this.messages.dispose(), 0);
  }
}

export interface TrainOptions {
  folder: string;
  /** Resolved once by the caller (commands, from the settings); the engine checks it on receipt. */
  config: TrainConfig;
  /** Parent of run folders; default <folder>/.simsiam/runs. */
  runsDir?: string;
  name?: string;
}

function canonicalFolder(folder: string): string {
  const resolved = path.resolve(folder);
  try {
    return fs.realpathSync(resolved);
  } catch {
    return resolved;
  }
}

export class TrainingManager implements vscode.Disposable {
  private readonly sessions = new Set<TrainingSession>();
  private readonly changes = new vscode.EventEmitter<TrainingSession>();
  private readonly messages = new vscode.EventEmitter<{ session: TrainingSession; message: EngineMessage }>();

  /** A session started, reported progress or ended. */
  readonly onDidChange = this.changes.event;
  /** Every engine message of every session. */
  readonly onMessage = this.messages.event;

  constructor(private readonly launch: EngineLauncher, private readonly log: vscode.LogOutputChannel) {}

  get active(): TrainingSession[] {
    return [...this.sessions];
  }

  sessionForRun(runDir: string): TrainingSession | undefined {
    const wanted = path.resolve(runDir);
    return this.active.find((s) => s.runDir !== undefined && path.resolve(s.runDir) === wanted);
  }

  sessionForFolder(folder: string): TrainingSession | undefined {
    const wanted = canonicalFolder(folder);
    return this.active.find((s) => s.datasetRoot === wanted);
  }

  /** Starts a new run; refuses a folder that is already training in this window. */
  train(options: TrainOptions): TrainingSession {
    const folder = canonicalFolder(options.folder);
    if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) {
      throw new TrainingRequestError(`${folder} is not a folder.`);
    }
    this.refuseBusy(folder);
    const name = options.name ?? path.basename(folder);
    const engine = this.launch(name);
    const session = new TrainingSession(folder, name, engine, undefined, this.log);
    this.adopt(session);
    engine.send({ type: 'train', folder, config: options.config, runsDir: options.runsDir ?? defaultRunsDir(folder), name: options.name });
    return session;
  }

  /** One run per dataset folder at a time, whichever way it was started. */
  private refuseBusy(folder: string): void {
    const busy = this.sessionForFolder(folder);
    if (busy) {
      throw new TrainingRequestError(`${path.basename(folder)} is already training (${busy.runDir ?? 'starting'}): ` +
        'one run per folder at a time. Stop that run first, or wait for it to finish.');
    }
  }

  /** Continues a stopped or interrupted run (or extends a finished one to `epochs`). */
  resume(runDir: string, epochs?: number): TrainingSession {
    const resolvedRun = path.resolve(runDir);
    const record = readRun(resolvedRun);
    if (this.sessionForRun(resolvedRun)) throw new TrainingRequestError(`${record.name} is already training in this window.`);
    const folder = canonicalFolder(record.dataset.root);
    this.refuseBusy(folder);
    const engine = this.launch(record.name);
    const session = new TrainingSession(folder, record.name, engine, resolvedRun, this.log);
    this.adopt(session);
    engine.send({ type: 'resume', runDir: resolvedRun, epochs });
    return session;
  }

  private adopt(session: TrainingSession): void {
    this.sessions.add(session);
    void vscode.commands.executeCommand('setContext', 'simsiam.trainingActive', true);
    session.onMessage((message) => {
      this.messages.fire({ session, message });
      if (message.type !== 'progress') this.changes.fire(session);
    });
    void session.finished.then(() => {
      this.sessions.delete(session);
      void vscode.commands.executeCommand('setContext', 'simsiam.trainingActive', this.sessions.size > 0);
      this.changes.fire(session);
    });
    this.changes.fire(session);
  }

  /** Window closing: every run stops with a checkpoint (the engines exit after saving). */
  dispose(): void {
    for (const session of this.sessions) session.stop();
    this.changes.dispose();
    this.messages.dispose();
  }
}
