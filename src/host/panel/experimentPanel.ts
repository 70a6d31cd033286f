// The experiment panel of one run: its webview's lifecycle, and the wiring between the run's
// sources (the training session's engine messages, the run's files) and the webview. The webview
// only draws what it is sent and asks through the typed messages of src/webview/protocol.ts; the
// extension owns every file access. The parts: ./panelHtml.ts (the page), ./liveMetrics.ts
// (forwarding of live records), ./compareSeries.ts (the overlay), ./gallery.ts (retrieval, with
// ./pathGuard.ts checking every path the webview names).
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { readMetrics, readRun, type RunRecord } from '../../training/run/runStore';
import { mergeMetrics, type EngineMessage, type MetricRecord } from '../../training/protocol';
import { readRunSummary, type RunCatalog, type RunSummary } from '../runCatalog';
import type { TrainingManager, TrainingSession } from '../training';
import type { RetrievalClient } from '../retrieval';
import {
  parseFromWebview, webviewMessage, WebviewProtocolError,
  type FromWebviewMessage, type GalleryRenderedReport, type RenderedReport, type RunView, type ToWebviewMessage, type WebviewMessageBody,
} from '../../webview/protocol';
import { compareOptions, compareSeries, NO_COMPARISON } from './compareSeries';
import { PanelGallery, type GalleryResult } from './gallery';
import { LiveMetrics } from './liveMetrics';
import { panelHtml } from './panelHtml';

export interface PanelServices {
  extensionUri: vscode.Uri;
  /** Workspace state: remembers each run's gallery query across window reloads. */
  state: vscode.Memento;
  catalog: RunCatalog;
  training: TrainingManager;
  retrieval: RetrievalClient;
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
  private ready = false;
  private filesTimer: NodeJS.Timeout | undefined;
  private reportWaiters: (() => void)[] = [];
  private disposed = false;

  readonly onDidClose = this.closed.event;
  /** The webview's latest reports: what it actually drew (tests and diagnostics read these). */
  lastRendered: RenderedReport | null = null;
  lastGallery: GalleryRenderedReport | null = null;
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
      this.post({ type: 'status', run: this.runView() });
    });
    this.gallery = new PanelGallery({
      runDir, dataset: this.record.dataset, webview: panel.webview, retrieval: services.retrieval, state: services.state,
      post: (body) => this.post(body),
      warn: (text) => this.warn(text),
    });
    this.disposables.push(
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
    if (!this.ready) return; // the webview sends `ready` (again after being hidden) and gets a full init then
    this.posted.set(body.type, (this.posted.get(body.type) ?? 0) + 1);
    void this.panel.webview.postMessage(webviewMessage(body));
  }

  private warn(text: string): void {
    this.services.log.warn(`[panel ${this.record.name}] ${text}`);
  }

  private session(): TrainingSession | undefined {
    return this.services.training.sessionForRun(this.runDir);
  }

  /** The run's whole history: its file, and what this window's session streamed since the last flush. */
  private history(): MetricRecord[] {
    return mergeMetrics(readMetrics(this.runDir), this.session()?.records ?? []);
  }

  /** The header: the live session's progress while it trains, the run's files otherwise. */
  private runView(): RunView {
    const session = this.session();
    const training = session !== undefined && !session.ended;
    const live = training ? session.progress : null;
    const status = this.summary?.status;
    // A resume may raise the epoch budget in run.json.
    const record = this.summary?.record ?? this.record;
    return {
      runDir: this.runDir, id: record.id, name: record.name, datasetRoot: record.dataset.root,
      status: training ? 'running' : status?.status ?? 'interrupted',
      step: live?.step ?? status?.step ?? 0,
      epoch: live ? live.epoch : status?.epoch ?? 0,
      epochs: live?.epochs ?? record.config.epochs,
      batchesPerEpoch: live?.batchesPerEpoch ?? null,
      backend: record.backend, preset: record.config.preset,
      message: status?.message ?? null,
      etaSeconds: live?.etaSeconds ?? null,
    };
  }

  private postCompareOptions(): void {
    if (!this.ready) return; // listing the runs is not free, and the init carries them
    this.post({ type: 'compareOptions', options: compareOptions(this.services.catalog.list(), this.runDir) });
  }

  private onEngineMessage(message: EngineMessage): void {
    switch (message.type) {
      case 'started':
        // A resumed run rewinds its metrics to the checkpoint: redraw from the file.
        this.summary = readRunSummary(this.runDir);
        this.post({ type: 'history', records: this.history() });
        this.post({ type: 'status', run: this.runView() });
        break;
      case 'metric':
        this.live.push(message.record);
        break;
      case 'checkpoint':
        this.gallery.refreshIfStale(message.step);
        break;
      case 'done':
      case 'error':
        // The engine wrote the run's final status just before saying so.
        this.summary = readRunSummary(this.runDir);
        this.live.flush();
        this.post({ type: 'status', run: this.runView() });
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
      this.post({ type: 'status', run: this.runView() });
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
    const series = compareSeries(this.services.catalog.list(), requested);
    if (series) this.post(series);
    else this.warn(`refused to compare with an unknown run: ${requested}`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.live.dispose();
    clearTimeout(this.filesTimer);
    this.disposables.splice(0).forEach((d) => d.dispose());
    this.panel.dispose();
    this.closed.fire();
    this.closed.dispose();
  }
}
