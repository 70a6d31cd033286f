// The experiment panel of one run: its webview's lifecycle, and the wiring between the run's
// sources (the training session's engine messages, the run's files) and the webview. The webview
// only draws what it is sent and asks through the typed messages of src/webview/protocol.ts; the
// extension owns every file access. The parts: ./panelHtml.ts (the page), ./liveMetrics.ts
// (forwarding of live records), ./compareSeries.ts (the overlay), ./gallery.ts (retrieval, with
// ./pathGuard.ts checking every path the webview names), ./augmentationPreview.ts (the views training renders).
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { readMetrics, readRun, type RunRecord } from '../../training/run/runStore';
import { mergeMetrics, type EngineMessage, type MetricRecord } from '../../training/protocol';
import { readRunSummary, type RunCatalog, type RunSummary } from '../runCatalog';
import type { TrainingManager, TrainingSession } from '../training';
import { runProgress } from '../../webview/runText';
import type { RetrievalClient } from '../retrieval';
import {
  parseFromWebview, webviewMessage, WebviewProtocolError,
  type AugmentationPreviewRendered, type FromWebviewMessage, type GalleryRenderedReport, type RenderedReport, type RunView,
  type ToWebviewMessage, type WebviewMessageBody,
} from '../../webview/protocol';
import { compareOptions, compareSeries, NO_COMPARISON } from './compareSeries';
import { PanelAugmentationPreview, type PreviewSource } from './augmentationPreview';
import { PanelGallery, type GalleryResult } from './gallery';
import { LIVE_FLUSH_MS, LiveMetrics } from './liveMetrics';
import { panelHtml } from './panelHtml';

export interface PanelServices {
  extensionUri: vscode.Uri;
  /** Workspace state: remembers each run's gallery query across window reloads. */
  state: vscode.Memento;
  catalog: RunCatalog;
  training: TrainingManager;
  retrieval: RetrievalClient;
  /** Renders the augmentation preview (an engine process); without it the preview says it is unavailable. */
  preview?: PreviewSource;
  log: vscode.LogOutputChannel;
}

/** A burst of file changes (a flush, a checkpoint) is read once. */
const FILES_CHANGED_DELAY_MS = 1000;

export class ExperimentPanel implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private readonly closed = new vscode.EventEmitter<void>();
  private readonly record: RunRecord;
  /** The run as its files last said; read when they change, never per live message. */
  private summary: RunSummary | null;
  private readonly live: LiveMetrics;
  private readonly gallery: PanelGallery;
  private readonly augmentation: PanelAugmentationPreview;
  private ready = false;
  private filesTimer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  /** The training session of this window last seen for this run. */
  private followed: TrainingSession | undefined;
  /** How that session said it trains: the backend with its training threads, which run.json does not record. */
  private trainedOn: string | null = null;
  /**
   * Why that session failed after it started, with the status.json it left (updatedAt): the engine
   * may have died before writing a status, and a later status (a resume elsewhere) supersedes it.
   */
  private failure: { message: string; statusAt: string | undefined } | null = null;
  /** Why the run's metrics file could not be read, when it could not. */
  private historyProblem: string | null = null;
  private reportWaiters: (() => void)[] = [];
  private disposed = false;

  readonly onDidClose = this.closed.event;
  /** The webview's latest reports: what it actually drew (tests and diagnostics read these). */
  lastRendered: RenderedReport | null = null;
  lastGallery: GalleryRenderedReport | null = null;
  lastPreview: AugmentationPreviewRendered | null = null;
  readonly posted = new Map<string, number>();

  constructor(readonly panel: vscode.WebviewPanel, readonly runDir: string, private readonly services: PanelServices) {
    this.record = readRun(runDir);
    this.summary = readRunSummary(runDir);
    panel.webview.options = {
      enableScripts: true,
      enableCommandUris: false,
      localResourceRoots: [vscode.Uri.joinPath(services.extensionUri, 'media'), vscode.Uri.file(this.record.dataset.root)],
    };
    panel.iconPath = vscode.Uri.joinPath(services.extensionUri, 'media', 'simsiam.svg');
    panel.title = `SimSiam: ${this.record.name}`;
    panel.webview.html = panelHtml(panel.webview, services.extensionUri, this.record.name, { runDir });
    this.live = new LiveMetrics((append) => {
      this.post(append);
      this.postStatus();
    });
    this.gallery = new PanelGallery({
      runDir, dataset: this.record.dataset, webview: panel.webview, retrieval: services.retrieval, state: services.state,
      split: { testFraction: this.record.config.testFraction, seed: this.record.config.seed },
      post: (body) => this.post(body),
      warn: (text) => this.warn(text),
    });
    this.augmentation = new PanelAugmentationPreview({
      runDir, datasetRoot: this.record.dataset.root, runConfig: this.record.config, source: services.preview,
      post: (body) => this.post(body),
      warn: (text) => this.warn(text),
    });
    this.disposables.push(
      this.augmentation,
      panel.webview.onDidReceiveMessage((raw) => this.receive(raw)),
      panel.onDidDispose(() => this.dispose()),
      services.training.onMessage(({ session, message }) => {
        if (session.runDir && path.resolve(session.runDir) === path.resolve(runDir)) this.onEngineMessage(message);
      }),
      services.catalog.onDidChange((runDirs) => {
        if (runDirs.length === 0 || runDirs.some((dir) => path.resolve(dir) === path.resolve(runDir))) this.onFilesChanged();
        else this.postCompareOptions();
      }),
    );
    this.follow(this.session());
  }

  /** See PanelGallery.showSimilar. */
  showSimilar(image: string, onProgress?: (text: string) => void): Promise<GalleryResult> {
    return this.gallery.showSimilar(image, onProgress);
  }

  /** Resolves when the webview next reports what it drew (chart or gallery). */
  nextReport(): Promise<void> {
    return new Promise((resolve) => this.reportWaiters.push(resolve));
  }

  // ---- messages to the webview ---------------------------------------------------------------

  private post(body: WebviewMessageBody<ToWebviewMessage>): void {
    // The webview sends `ready` (again after being hidden) and gets a full init then; a closed one gets nothing.
    if (!this.ready || this.disposed) return;
    this.posted.set(body.type, (this.posted.get(body.type) ?? 0) + 1);
    void this.panel.webview.postMessage(webviewMessage(body));
  }

  private warn(text: string): void {
    this.services.log.warn(`[panel ${this.record.name}] ${text}`);
  }

  private session(): TrainingSession | undefined {
    return this.services.training.sessionForRun(this.runDir);
  }

  /**
   * The run's whole history: its file, and what this window's session streamed since the last
   * flush. A damaged metrics file is said in the header (what the session streamed still shows).
   */
  private history(): MetricRecord[] {
    let stored: MetricRecord[] = [];
    try {
      stored = readMetrics(this.runDir);
      this.historyProblem = null;
    } catch (error) {
      this.historyProblem = (error as Error).message;
      this.warn(this.historyProblem);
    }
    return mergeMetrics(stored, this.session()?.records ?? []);
  }

  /** The header: the live session's progress while it trains, the run's files otherwise. */
  private runView(): RunView {
    const session = this.session();
    const training = session !== undefined && !session.ended;
    const status = this.summary?.status;
    // A resume may raise the epoch budget in run.json.
    const record = this.summary?.record ?? this.record;
    const failure = this.failure && this.failure.statusAt === status?.updatedAt ? this.failure.message : null;
    const runStatus = training ? 'running' : failure !== null ? 'failed' : status?.status ?? 'interrupted';
    const progress = runProgress(training ? session : null, {
      status: { step: status?.step ?? 0, epoch: status?.epoch ?? 0, status: runStatus },
      epochs: record.config.epochs, lastEpoch: this.summary?.lastEpoch ?? null,
    });
    return {
      runDir: this.runDir, id: record.id, name: record.name, datasetRoot: record.dataset.root,
      status: runStatus, progress,
      backend: this.trainedOn ?? record.backend, preset: record.config.preset,
      // A message from an earlier end of the run is old news while it trains again.
      message: this.historyProblem ?? (training ? null : failure ?? status?.message ?? null),
    };
  }

  private postStatus(): void {
    this.post({ type: 'status', run: this.runView() });
  }

  /** Phases report far more often than a person reads: one header update per interval. */
  private schedulePostStatus(): void {
    this.statusTimer ??= setTimeout(() => {
      this.statusTimer = undefined;
      this.postStatus();
    }, LIVE_FLUSH_MS);
  }

  /** Learns how a session of this window trains the run, and how it ended if it failed after starting. */
  private follow(session: TrainingSession | undefined): void {
    if (!session || session === this.followed) return;
    this.followed = session;
    this.failure = null;
    session.started.then((started) => {
      this.trainedOn = started.backend;
      this.postStatus();
    }, () => undefined);
    void session.finished.then((outcome) => {
      // A session that failed before it started (a refused resume) left the run as it was.
      if (outcome.status !== 'failed' || session.progress === null) return;
      this.summary = readRunSummary(this.runDir);
      this.failure = { message: outcome.message, statusAt: this.summary?.status.updatedAt };
      this.postStatus();
    });
  }

  private postCompareOptions(): void {
    if (!this.ready) return; // listing the runs is not free, and the init carries them
    this.post({ type: 'compareOptions', options: compareOptions(this.services.catalog.list(), this.runDir) });
  }

  private onEngineMessage(message: EngineMessage): void {
    this.follow(this.session());
    switch (message.type) {
      case 'started':
        // A resumed run rewinds its metrics to the checkpoint: redraw from the file.
        this.summary = readRunSummary(this.runDir);
        this.post({ type: 'history', records: this.history() });
        this.postStatus();
        break;
      case 'metric':
        this.live.push(message.record);
        break;
      case 'progress':
        this.schedulePostStatus();
        break;
      case 'checkpoint':
        this.gallery.refreshIfStale(message.step);
        break;
      case 'done':
      case 'error':
        // The engine wrote the run's final status just before saying so.
        this.summary = readRunSummary(this.runDir);
        this.live.flush();
        this.postStatus();
        break;
      default:
        break;
    }
  }

  /** Files of this run changed (another process trains it, or it finished): redraw, at most once a second. */
  private onFilesChanged(): void {
    if (this.filesTimer) return;
    this.filesTimer = setTimeout(() => {
      this.filesTimer = undefined;
      if (!fs.existsSync(this.runDir)) {
        this.panel.dispose();
        return;
      }
      this.summary = readRunSummary(this.runDir);
      if (!this.session()) this.post({ type: 'history', records: this.history() });
      this.postStatus();
      this.postCompareOptions();
      this.gallery.refreshFromDisk();
    }, FILES_CHANGED_DELAY_MS);
  }

  // ---- messages from the webview -------------------------------------------------------------

  /** Handles one message from the webview: validated first, dropped and logged when malformed. */
  receive(raw: unknown): void {
    let message: FromWebviewMessage;
    try {
      message = parseFromWebview(raw);
    } catch (error) {
      if (!(error instanceof WebviewProtocolError)) throw error;
      this.warn(`dropped a webview message: ${error.message}`);
      return;
    }
    switch (message.type) {
      case 'ready':
        this.ready = true;
        this.post({
          type: 'init', run: this.runView(), history: this.history(),
          compareOptions: compareOptions(this.services.catalog.list(), this.runDir), galleryQuery: this.gallery.query,
        });
        this.gallery.restore();
        this.augmentation.restore();
        break;
      case 'compare':
        this.sendCompare(message.runDir);
        break;
      case 'query':
        void this.gallery.onQuery(message).catch(() => undefined);
        break;
      case 'openImage':
        this.gallery.open(message.path);
        break;
      case 'rendered':
        this.lastRendered = message;
        this.reportWaiters.splice(0).forEach((wake) => wake());
        break;
      case 'galleryRendered':
        this.lastGallery = message;
        this.reportWaiters.splice(0).forEach((wake) => wake());
        break;
      case 'augmentationPreviewRequest':
        void this.augmentation.render(message.epoch);
        break;
      case 'augmentationPreviewRendered':
        this.lastPreview = message;
        this.reportWaiters.splice(0).forEach((wake) => wake());
        break;
      case 'log':
        this.services.log[message.level](`[panel ${this.record.name}] ${message.message}`);
        break;
    }
  }

  private sendCompare(requested: string | null): void {
    if (requested === null) {
      this.post(NO_COMPARISON);
      return;
    }
    let series;
    try {
      series = compareSeries(this.services.catalog.list(), requested);
    } catch (error) {
      this.warn(`cannot overlay ${requested}: ${(error as Error).message}`);
      this.post(NO_COMPARISON);
      return;
    }
    if (series) this.post(series);
    else this.warn(`refused to compare with an unknown run: ${requested}`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.live.dispose();
    clearTimeout(this.filesTimer);
    clearTimeout(this.statusTimer);
    this.disposables.splice(0).forEach((d) => d.dispose());
    this.panel.dispose();
    this.closed.fire();
    this.closed.dispose();
  }
}
