// The experiment panel: one webview per run with its live charts, a loss overlay of another run
// and the retrieval gallery. The extension side owns every file access; the webview only draws
// what it is sent and asks through the typed messages of ./protocol.ts. Paths it sends back are
// resolved by ./pathGuard.ts and must name an image inside the run's dataset.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { CHECKPOINT_POINTER, readMetrics, readRun, type MetricRecord, type RunRecord } from '../training/runStore';
import type { EngineMessage, Neighbour } from '../training/protocol';
import { readRunSummary, type RunCatalog } from '../host/runCatalog';
import type { TrainingManager, TrainingSession } from '../host/training';
import type { RetrievalClient } from '../host/retrieval';
import { topK } from '../host/settings';
import {
  parseFromWebview, webviewMessage, WebviewProtocolError,
  type CompareOption, type FromWebviewMessage, type GalleryImage, type GalleryMessage, type GalleryRenderedReport, type RenderedReport,
  type RunView, type ToWebviewMessage, type WebviewMessageBody,
} from './protocol';
import {
  BROWSER_IMAGE_PATTERN, IMAGE_FILE_PATTERN, datasetRelativePath, isPathInside, resolveDatasetImage, UnsafePathError,
} from './pathGuard';

export const PANEL_VIEW_TYPE = 'simsiam.experiment';

/** What the webview keeps in vscode.setState; the serializer reads runDir back after a reload. */
export interface PanelState { runDir: string }

/** Longest overlay curve sent to the webview; longer runs are thinned evenly. */
const MAX_COMPARE_POINTS = 5_000;
const LIVE_FLUSH_MS = 100;
const RANDOM_QUERY_MAX_FILES = 100_000;

interface Services {
  extensionUri: vscode.Uri;
  /** Workspace state: remembers each run's gallery query across window reloads. */
  state: vscode.Memento;
  catalog: RunCatalog;
  training: TrainingManager;
  retrieval: RetrievalClient;
  log: vscode.LogOutputChannel;
}

export interface GalleryResult { query: string; neighbours: Neighbour[] }

/** One record per (kind, step): the file and the live stream overlap around each flush. */
export function mergeMetrics(...sources: MetricRecord[][]): MetricRecord[] {
  const byKey = new Map<string, MetricRecord>();
  for (const records of sources) for (const r of records) byKey.set(`${r.kind}:${r.step}`, r);
  const rank = { eval: 0, step: 1, epoch: 2 } as const;
  return [...byKey.values()].sort((a, b) => a.step - b.step || rank[a.kind] - rank[b.kind]);
}

function nonce(): string {
  return crypto.randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, '');
}

export class ExperimentPanel implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private readonly closed = new vscode.EventEmitter<void>();
  private record: RunRecord;
  private ready = false;
  private liveQueue: MetricRecord[] = [];
  private liveTimer: NodeJS.Timeout | undefined;
  private historyTimer: NodeJS.Timeout | undefined;
  private galleryQuery: string | undefined;
  /** Re-sent when the webview reloads (hidden and shown again, or opened while a search ran). */
  private lastGalleryMessage: WebviewMessageBody<GalleryMessage> | undefined;
  private galleryCheckpointStep: number | null = null;
  private galleryWork: Promise<unknown> = Promise.resolve();
  private galleryRequests = 0;
  private imageList: { at: number; files: string[] } | undefined;
  private renderedWaiters: (() => void)[] = [];

  readonly onDidClose = this.closed.event;
  /** The webview's latest reports: what it actually drew (tests and diagnostics read these). */
  lastRendered: RenderedReport | null = null;
  lastGallery: GalleryRenderedReport | null = null;
  readonly posted = new Map<string, number>();

  constructor(readonly panel: vscode.WebviewPanel, readonly runDir: string, private readonly services: Services) {
    this.record = readRun(runDir);
    panel.webview.options = {
      enableScripts: true,
      enableCommandUris: false,
      localResourceRoots: [vscode.Uri.joinPath(services.extensionUri, 'media'), vscode.Uri.file(this.record.dataset.root)],
    };
    panel.iconPath = vscode.Uri.joinPath(services.extensionUri, 'media', 'simsiam.svg');
    panel.title = `SimSiam: ${this.record.name}`;
    panel.webview.html = this.html();
    this.galleryQuery = services.state.get<string>(galleryStateKey(runDir));
    this.disposables.push(
      panel.webview.onDidReceiveMessage((raw) => this.receive(raw)),
      panel.onDidDispose(() => this.dispose()),
      services.training.onMessage(({ session, message }) => {
        if (session.runDir && path.resolve(session.runDir) === path.resolve(runDir)) this.onEngineMessage(session, message);
      }),
      services.catalog.onDidChange((runDirs) => {
        if (runDirs.length === 0 || runDirs.some((dir) => path.resolve(dir) === path.resolve(runDir))) this.onFilesChanged();
        else this.postCompareOptions();
      }),
    );
  }

  // ---- messages to the webview ---------------------------------------------------------------

  private post(body: WebviewMessageBody<ToWebviewMessage>): void {
    if (!this.ready) return; // the webview sends `ready` (again after being hidden) and gets a full init then
    this.posted.set(body.type, (this.posted.get(body.type) ?? 0) + 1);
    void this.panel.webview.postMessage(webviewMessage(body));
  }

  private session(): TrainingSession | undefined {
    return this.services.training.sessionForRun(this.runDir);
  }

  private history(): MetricRecord[] {
    // The file wins where both have a record: it carries fields the live messages lack (skippedFiles).
    return mergeMetrics(this.session()?.records ?? [], readMetrics(this.runDir));
  }

  private runView(): RunView {
    const summary = readRunSummary(this.runDir);
    if (summary) this.record = summary.record;
    const session = this.session();
    const live = session && !session.ended ? session.progress : null;
    const status = session && !session.ended ? 'running' : summary?.status.status ?? 'interrupted';
    return {
      runDir: this.runDir, id: this.record.id, name: this.record.name, datasetRoot: this.record.dataset.root,
      status,
      step: live?.step ?? summary?.status.step ?? 0,
      epoch: live ? live.epoch : summary?.status.epoch ?? 0,
      epochs: live?.epochs ?? this.record.config.epochs,
      batchesPerEpoch: live?.batchesPerEpoch ?? null,
      backend: this.record.backend, preset: this.record.config.preset,
      message: summary?.status.message ?? null,
      etaSeconds: live?.etaSeconds ?? null,
    };
  }

  private compareOptions(): CompareOption[] {
    return this.services.catalog.list()
      .filter((run) => path.resolve(run.runDir) !== path.resolve(this.runDir))
      .map((run) => ({ runDir: run.runDir, label: `${run.record.name} · ${run.status.status} · ${path.basename(run.runDir)}` }));
  }

  private postCompareOptions(): void {
    if (this.ready) this.post({ type: 'compareOptions', options: this.compareOptions() });
  }

  private sendInit(): void {
    this.post({
      type: 'init', run: this.runView(), history: this.history(), compareOptions: this.compareOptions(),
      galleryQuery: this.galleryQuery ?? null,
    });
    if (this.lastGalleryMessage) this.post(this.lastGalleryMessage);
  }

  private onEngineMessage(session: TrainingSession, message: EngineMessage): void {
    switch (message.type) {
      case 'started':
        // A resumed run rewinds its metrics to the checkpoint: redraw from the file.
        this.post({ type: 'history', records: this.history() });
        this.post({ type: 'status', run: this.runView() });
        break;
      case 'step':
      case 'epoch': {
        const latest = session.records.at(-1);
        if (latest) this.liveQueue.push(latest);
        this.liveTimer ??= setTimeout(() => this.flushLive(), LIVE_FLUSH_MS);
        break;
      }
      case 'checkpoint':
        this.refreshGalleryIfStale(message.step);
        break;
      case 'done':
      case 'error':
        this.flushLive();
        this.post({ type: 'status', run: this.runView() });
        break;
      default:
        break;
    }
  }

  private flushLive(): void {
    clearTimeout(this.liveTimer);
    this.liveTimer = undefined;
    if (this.liveQueue.length) this.post({ type: 'append', records: this.liveQueue });
    this.liveQueue = [];
    this.post({ type: 'status', run: this.runView() });
  }

  /** Files of this run changed (another process trains it, or it finished): redraw, at most once a second. */
  private onFilesChanged(): void {
    if (this.historyTimer) return;
    this.historyTimer = setTimeout(() => {
      this.historyTimer = undefined;
      if (!fs.existsSync(this.runDir)) {
        this.panel.dispose();
        return;
      }
      if (!this.session()) this.post({ type: 'history', records: this.history() });
      this.post({ type: 'status', run: this.runView() });
      this.postCompareOptions();
      const pointer = this.checkpointStep();
      if (pointer !== null) this.refreshGalleryIfStale(pointer);
    }, 1000);
  }

  // ---- messages from the webview -------------------------------------------------------------

  /** Handles one message from the webview: validated first, dropped and logged when malformed. */
  receive(raw: unknown): void {
    let message: FromWebviewMessage;
    try {
      message = parseFromWebview(raw);
    } catch (error) {
      if (!(error instanceof WebviewProtocolError)) throw error;
      this.services.log.warn(`[panel ${this.record.name}] dropped a webview message: ${error.message}`);
      return;
    }
    switch (message.type) {
      case 'ready':
        this.ready = true;
        this.sendInit();
        // After a window reload: search again for the query the gallery showed before.
        if (this.galleryQuery && !this.lastGalleryMessage && this.galleryRequests === 0) {
          void this.showSimilar(this.galleryQuery).catch(() => undefined);
        }
        break;
      case 'compare':
        this.sendCompare(message.runDir);
        break;
      case 'query':
        void this.onQuery(message.source, message.path).catch(() => undefined);
        break;
      case 'openImage':
        this.openImage(message.path);
        break;
      case 'rendered':
        this.lastRendered = message;
        this.renderedWaiters.splice(0).forEach((wake) => wake());
        break;
      case 'galleryRendered':
        this.lastGallery = message;
        this.renderedWaiters.splice(0).forEach((wake) => wake());
        break;
      case 'log':
        this.services.log[message.level](`[panel ${this.record.name}] ${message.message}`);
        break;
    }
  }

  /** Resolves when the webview next reports what it drew (chart or gallery). */
  nextReport(): Promise<void> {
    return new Promise((resolve) => this.renderedWaiters.push(resolve));
  }

  private sendCompare(requested: string | null): void {
    if (requested === null) {
      this.post({ type: 'compareSeries', runDir: null, label: '', steps: [], losses: [] });
      return;
    }
    // Only a run the catalog lists may be read: the webview names it, the catalog vouches for it.
    const run = this.services.catalog.list().find((r) => r.runDir === requested);
    if (!run) {
      this.services.log.warn(`[panel ${this.record.name}] refused to compare with an unknown run: ${requested}`);
      return;
    }
    const steps = readMetrics(run.runDir).filter((r): r is Extract<MetricRecord, { kind: 'step' }> => r.kind === 'step');
    const stride = Math.max(1, Math.ceil(steps.length / MAX_COMPARE_POINTS));
    const kept = steps.filter((_, i) => i % stride === 0);
    this.post({ type: 'compareSeries', runDir: run.runDir, label: run.record.name, steps: kept.map((r) => r.step), losses: kept.map((r) => r.loss) });
  }

  private openImage(requested: string): void {
    try {
      const file = resolveDatasetImage(this.record.dataset.root, requested);
      void vscode.commands.executeCommand('vscode.open', vscode.Uri.file(file), { viewColumn: vscode.ViewColumn.Beside, preview: true });
    } catch (error) {
      this.refusePath(error, requested);
    }
  }

  private refusePath(error: unknown, requested: string): void {
    if (!(error instanceof UnsafePathError)) throw error;
    this.services.log.warn(`[panel ${this.record.name}] refused path ${JSON.stringify(requested)}: ${error.message}`);
  }

  private async onQuery(source: 'random' | 'pick' | 'path', requested?: string): Promise<void> {
    if (!vscode.workspace.isTrusted) {
      this.post({ type: 'galleryError', message: 'Indexing is disabled in Restricted Mode: trust the workspace to search for similar images.' });
      return;
    }
    let image: string | undefined;
    if (source === 'random') image = this.randomImage();
    else if (source === 'pick') {
      const picked = await vscode.window.showOpenDialog({
        defaultUri: vscode.Uri.file(this.record.dataset.root), canSelectMany: false, openLabel: 'Find Similar',
        title: `Query image from ${path.basename(this.record.dataset.root)}`,
        filters: { Images: ['jpg', 'jpeg', 'png', 'webp', 'gif', 'tif', 'tiff', 'bmp'] },
      });
      image = picked?.[0]?.fsPath;
    } else image = requested;
    if (!image) {
      if (source === 'random') this.post({ type: 'galleryError', message: 'The dataset has no images left to pick from.' });
      return;
    }
    try {
      await this.showSimilar(image);
    } catch (error) {
      if (error instanceof UnsafePathError) {
        this.refusePath(error, image);
        this.post({ type: 'galleryError', message: `${image} is not an image of this run's dataset.` });
      }
    }
  }

  private randomImage(): string | undefined {
    if (!this.imageList || Date.now() - this.imageList.at > 60_000) {
      this.imageList = { at: Date.now(), files: listImages(this.record.dataset.root, RANDOM_QUERY_MAX_FILES) };
    }
    const files = this.imageList.files;
    return files.length ? datasetRelativePath(this.record.dataset.root, files[Math.floor(Math.random() * files.length)]) : undefined;
  }

  // ---- gallery -------------------------------------------------------------------------------

  private checkpointStep(): number | null {
    try {
      const pointer = JSON.parse(fs.readFileSync(path.join(this.runDir, CHECKPOINT_POINTER), 'utf8')) as { step?: unknown };
      return typeof pointer.step === 'number' ? pointer.step : null;
    } catch {
      return null;
    }
  }

  private refreshGalleryIfStale(step: number): void {
    if (this.galleryQuery && this.galleryCheckpointStep !== step) {
      void this.showSimilar(this.galleryQuery).catch(() => undefined);
    }
  }

  /**
   * Indexes the dataset with the run's latest checkpoint if needed, then shows `image` and its
   * nearest neighbours. `image` is dataset-relative or absolute and must lie inside the dataset.
   * Queued: a newer request runs after the one in progress.
   */
  showSimilar(image: string, onProgress?: (text: string) => void): Promise<GalleryResult> {
    this.galleryRequests += 1;
    const work = this.galleryWork.then(() => this.runQuery(image, onProgress)).finally(() => (this.galleryRequests -= 1));
    this.galleryWork = work.catch(() => undefined);
    return work;
  }

  private async runQuery(image: string, onProgress?: (text: string) => void): Promise<GalleryResult> {
    const root = this.record.dataset.root;
    const file = resolveDatasetImage(root, image);
    const relative = this.relativeToDataset(file);
    this.galleryQuery = relative;
    const step = this.checkpointStep();
    if (step === null) {
      const text = 'This run has no checkpoint yet: the gallery fills in after its first epoch.';
      this.post({ type: 'galleryError', message: text });
      throw new Error(text);
    }
    const busy = (text: string) => {
      this.post({ type: 'galleryBusy', text });
      onProgress?.(text);
    };
    busy(`Searching with the checkpoint of step ${step}…`);
    try {
      const k = topK();
      const found = await this.services.retrieval.similar(this.runDir, file, k + 1,
        (p) => busy(p.task === 'embed' ? `Indexing images ${p.done}/${p.total}…` : `${p.task} ${p.done}/${p.total}…`));
      const neighbours = found.filter((n) => !samePath(root, n.path, file)).slice(0, k);
      this.galleryCheckpointStep = step;
      this.lastGalleryMessage = {
        type: 'gallery',
        query: this.galleryImage(file, null, this.labelOf(relative)),
        neighbours: neighbours.map((n) => this.galleryImage(absoluteIn(root, n.path), n.score, n.label)),
        checkpointStep: step,
      };
      this.post(this.lastGalleryMessage);
      void this.services.state.update(galleryStateKey(this.runDir), relative);
      return { query: file, neighbours };
    } catch (error) {
      const text = (error as Error).message;
      this.post({ type: 'galleryError', message: text });
      throw error;
    }
  }

  private galleryImage(file: string, score: number | null, label: string | null): GalleryImage {
    const webviewUri = this.panel.webview.asWebviewUri(vscode.Uri.file(file)).toString();
    return {
      path: this.relativeToDataset(file),
      src: BROWSER_IMAGE_PATTERN.test(file) ? webviewUri : '',
      label, score,
    };
  }

  /** Dataset-relative form of an image path, whether it came through the root's real path or not. */
  private relativeToDataset(file: string): string {
    const root = this.record.dataset.root;
    if (isPathInside(root, file)) return datasetRelativePath(root, file);
    return datasetRelativePath(fs.realpathSync(root), file);
  }

  /** The class folder an image sits in, when the dataset has classes (root/<class>/…, root/train/<class>/…). */
  private labelOf(relative: string): string | null {
    const parts = relative.split('/');
    if (['train', 'test', 'val'].includes(parts[0]?.toLowerCase()) && parts.length > 2) parts.shift();
    return parts.length > 1 && this.record.dataset.classes.includes(parts[0]) ? parts[0] : null;
  }

  private html(): string {
    const webview = this.panel.webview;
    const media = (...parts: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(this.services.extensionUri, 'media', ...parts));
    const scriptNonce = nonce();
    const csp = [
      "default-src 'none'",
      `img-src ${webview.cspSource}`,
      `style-src ${webview.cspSource}`,
      `font-src ${webview.cspSource}`,
      `script-src 'nonce-${scriptNonce}'`,
    ].join('; ');
    const state: PanelState = { runDir: this.runDir };
    const escapeAttribute = (text: string) => text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${media('dist', 'uPlot.min.css')}">
<link rel="stylesheet" href="${media('panel.css')}">
<title>${escapeAttribute(this.record.name)}</title>
</head>
<body>
<main id="app" data-state="${escapeAttribute(JSON.stringify(state))}"></main>
<script nonce="${scriptNonce}" src="${media('dist', 'panel.js')}"></script>
</body>
</html>`;
  }

  private disposed = false;

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.liveTimer);
    clearTimeout(this.historyTimer);
    this.disposables.splice(0).forEach((d) => d.dispose());
    this.panel.dispose();
    this.closed.fire();
    this.closed.dispose();
  }
}

function galleryStateKey(runDir: string): string {
  return `simsiam.galleryQuery:${runDir}`;
}

function absoluteIn(root: string, file: string): string {
  return path.isAbsolute(file) ? file : path.join(root, file);
}

function samePath(root: string, candidate: string, file: string): boolean {
  const absolute = absoluteIn(root, candidate);
  if (path.resolve(absolute) === path.resolve(file)) return true;
  try {
    return fs.realpathSync(absolute) === file;
  } catch {
    return false;
  }
}

/** Image files below `root`, skipping hidden folders (runs live in .simsiam). */
function listImages(root: string, limit: number): string[] {
  const found: string[] = [];
  const stack = [root];
  while (stack.length && found.length < limit) {
    const dir = stack.pop()!;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) stack.push(full);
      else if (entry.isFile() && IMAGE_FILE_PATTERN.test(entry.name)) found.push(full);
    }
  }
  return found;
}

/** Opens, finds and restores panels: at most one per run. */
export class ExperimentPanels implements vscode.Disposable, vscode.WebviewPanelSerializer<PanelState> {
  private readonly panels = new Map<string, ExperimentPanel>();

  constructor(private readonly services: Services) {}

  get(runDir: string): ExperimentPanel | undefined {
    return this.panels.get(path.resolve(runDir));
  }

  open(runDir: string, options: { preserveFocus?: boolean } = {}): ExperimentPanel {
    const existing = this.get(runDir);
    if (existing) {
      existing.panel.reveal(undefined, options.preserveFocus);
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(PANEL_VIEW_TYPE, 'SimSiam', {
      viewColumn: vscode.ViewColumn.Active, preserveFocus: options.preserveFocus,
    });
    return this.adopt(panel, path.resolve(runDir));
  }

  close(runDir: string): void {
    this.get(runDir)?.dispose();
  }

  /** Brings a panel back after a window reload; the state was written by the webview itself, so it is checked. */
  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const runDir = (state as Partial<PanelState> | undefined)?.runDir;
    if (typeof runDir !== 'string' || !path.isAbsolute(runDir) || !readRunSummary(runDir) || this.get(runDir)) {
      panel.dispose();
      return;
    }
    this.adopt(panel, path.resolve(runDir));
  }

  private adopt(panel: vscode.WebviewPanel, runDir: string): ExperimentPanel {
    const experiment = new ExperimentPanel(panel, runDir, this.services);
    this.panels.set(runDir, experiment);
    experiment.onDidClose(() => this.panels.delete(runDir));
    return experiment;
  }

  dispose(): void {
    for (const panel of [...this.panels.values()]) panel.dispose();
  }
}
