// The embedding map panel of one run: a tab with the 2-D map of its images (PCA or UMAP, computed
// by the search engine through ../retrieval.ts) and a tab of data views (near-duplicates, possible
// label issues, outliers, most redundant). The webview draws what it is sent and asks through the
// typed messages of src/webview/embeddingMapProtocol.ts; every path it names goes through
// ../panel/pathGuard.ts before a file is opened, revealed or searched.
import * as path from 'path';
import * as vscode from 'vscode';
import { readRun, type RunRecord } from '../../training/run/runStore';
import { labelOfRelativePath } from '../../training/data/dataset';
import type { RetrievalClient, ProgressReport } from '../retrieval';
import type { ExperimentPanels } from '../panel/experimentPanels';
import { datasetRelativePath, isPathInside, resolveDatasetImage, UnsafePathError } from '../panel/pathGuard';
import { capitalised, phaseText } from '../../webview/runText';
import {
  mapMessage, parseFromMapWebview, MapProtocolError,
  type FromMapWebviewMessage, type MapRenderedReport, type MapTab, type Method, type ToMapWebviewMessage, type ViewName, type ViewMessage,
} from '../../webview/embeddingMapProtocol';
import type { MessageBody } from '../../training/versioned';
import { embeddingMapHtml } from './embeddingMapHtml';

export interface MapPanelServices {
  extensionUri: vscode.Uri;
  retrieval: RetrievalClient;
  experiments: ExperimentPanels;
  log: vscode.LogOutputChannel;
}

/** Images a ranked data view lists. */
export const VIEW_LIMIT = 100;

export class EmbeddingMapPanel implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private readonly closed = new vscode.EventEmitter<void>();
  private readonly record: RunRecord;
  private ready = false;
  private disposed = false;
  private pendingTab: { tab: MapTab; view?: ViewName } | undefined;
  private reportWaiters: (() => void)[] = [];

  readonly onDidClose = this.closed.event;
  /** The webview's latest report of what it drew (tests and diagnostics read it). */
  lastRendered: MapRenderedReport | null = null;
  readonly posted = new Map<string, number>();

  constructor(readonly panel: vscode.WebviewPanel, readonly runDir: string, private readonly services: MapPanelServices,
    initial: { tab: MapTab; view?: ViewName }) {
    this.record = readRun(runDir);
    panel.webview.options = {
      enableScripts: true,
      enableCommandUris: false,
      localResourceRoots: [vscode.Uri.joinPath(services.extensionUri, 'media'), vscode.Uri.file(this.record.dataset.root)],
    };
    panel.iconPath = vscode.Uri.joinPath(services.extensionUri, 'media', 'simsiam.svg');
    panel.title = `Map: ${this.record.name}`;
    panel.webview.html = embeddingMapHtml(panel.webview, services.extensionUri, this.record.name, { runDir, ...initial });
    this.pendingTab = initial;
    this.disposables.push(
      panel.webview.onDidReceiveMessage((raw) => this.receive(raw)),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  /** Shows a tab (and a data view) once the webview is ready. */
  showTab(tab: MapTab, view?: ViewName): void {
    if (this.ready) this.post({ type: 'showTab', tab, ...(view ? { view } : {}) });
    else this.pendingTab = { tab, view };
  }

  /** Resolves when the webview next reports what it drew. */
  nextReport(): Promise<void> {
    return new Promise((resolve) => this.reportWaiters.push(resolve));
  }

  private post(body: MessageBody<ToMapWebviewMessage>): void {
    if (!this.ready || this.disposed) return;
    this.posted.set(body.type, (this.posted.get(body.type) ?? 0) + 1);
    void this.panel.webview.postMessage(mapMessage(body));
  }

  /** A message from the webview (or a test standing in for it), validated first. */
  receive(raw: unknown): void {
    let m: FromMapWebviewMessage;
    try {
      m = parseFromMapWebview(raw);
    } catch (error) {
      if (error instanceof MapProtocolError) {
        this.services.log.warn(`[map] ignored a message from the embedding map of ${this.runDir}: ${error.message}`);
        return;
      }
      throw error;
    }
    switch (m.type) {
      case 'ready':
        this.ready = true;
        this.post({
          type: 'init', runName: this.record.name, classes: this.record.dataset.classes,
          imageBase: this.panel.webview.asWebviewUri(vscode.Uri.file(this.record.dataset.root)).toString(),
        });
        if (this.pendingTab) this.post({ type: 'showTab', ...this.pendingTab });
        this.pendingTab = undefined;
        break;
      case 'requestMap':
        if (this.trusted('map')) void this.sendMap(m.method);
        break;
      case 'requestView':
        if (this.trusted('views')) void this.sendView(m.view, m.k, m.threshold);
        break;
      case 'image':
        void this.onImage(m.action, m.path);
        break;
      case 'rendered':
        this.lastRendered = m;
        for (const waiter of this.reportWaiters.splice(0)) waiter();
        break;
    }
  }

  /** Indexing runs the engine on the workspace's files: not in Restricted Mode, as the gallery. */
  private trusted(target: MapTab): boolean {
    if (vscode.workspace.isTrusted) return true;
    this.post({ type: 'error', target, message: 'Indexing is disabled in Restricted Mode: trust the workspace to see the map and the data views.' });
    return false;
  }

  private busy(target: MapTab): (p: ProgressReport) => void {
    return (p) => this.post({ type: 'busy', target, text: `${capitalised(phaseText(p))}…` });
  }

  private async sendMap(method: Method): Promise<void> {
    this.post({ type: 'busy', target: 'map', text: `Laying out the ${method.toUpperCase()} map…` });
    try {
      const map = await this.services.retrieval.map(this.runDir, method, this.busy('map'));
      this.post({
        type: 'map', method: map.method, checkpointStep: map.checkpointStep, cached: map.cached, classes: map.classes,
        paths: map.paths, labels: map.labels, splits: map.splits, x: map.x, y: map.y,
      });
    } catch (error) {
      this.post({ type: 'error', target: 'map', message: (error as Error).message });
    }
  }

  private async sendView(view: ViewName, k: number, threshold: number): Promise<void> {
    this.post({ type: 'busy', target: 'views', text: 'Searching the index…' });
    const relative = (file: string) => this.relativeToDataset(file);
    try {
      let body: MessageBody<ViewMessage>;
      if (view === 'duplicates') {
        const result = await this.services.retrieval.duplicates(this.runDir, threshold, this.busy('views'));
        const classOf = (relPath: string) => labelOfRelativePath(relPath, this.record.dataset.classes);
        body = {
          type: 'view', view, checkpointStep: result.checkpointStep, k, threshold,
          groups: result.groups.map((g) => ({
            minScore: g.minScore,
            items: g.paths.map((p) => ({ path: relative(p), label: classOf(relative(p)), score: g.minScore, suggested: null })),
          })),
        };
      } else {
        const result = await this.services.retrieval.dataView(this.runDir, view, k, VIEW_LIMIT, this.busy('views'));
        body = {
          type: 'view', view, checkpointStep: result.checkpointStep, k: result.k, threshold: null,
          groups: result.items.map((item) => ({ minScore: null, items: [{ ...item, path: relative(item.path) }] })),
        };
      }
      this.post(body);
    } catch (error) {
      this.post({ type: 'error', target: 'views', message: (error as Error).message });
    }
  }

  private async onImage(action: 'open' | 'reveal' | 'gallery', requested: string): Promise<void> {
    let file: string;
    try {
      file = resolveDatasetImage(this.record.dataset.root, requested);
    } catch (error) {
      if (!(error instanceof UnsafePathError)) throw error;
      this.services.log.warn(`[map] refused path ${JSON.stringify(requested)}: ${error.message}`);
      return;
    }
    const uri = vscode.Uri.file(file);
    if (action === 'open') {
      await vscode.commands.executeCommand('vscode.open', uri, { viewColumn: vscode.ViewColumn.Beside, preview: true });
    } else if (action === 'reveal') {
      await vscode.commands.executeCommand('revealInExplorer', uri);
    } else {
      // The experiment panel's gallery: the image and its nearest neighbours under the latest checkpoint.
      const experiment = this.services.experiments.open(this.runDir);
      await experiment.showSimilar(file).catch((error: Error) => this.services.log.warn(`[map] gallery of ${file}: ${error.message}`));
    }
  }

  private relativeToDataset(file: string): string {
    const root = this.record.dataset.root;
    return isPathInside(root, file) ? datasetRelativePath(root, file) : path.basename(file);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.closed.fire();
    this.closed.dispose();
    this.panel.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
    for (const waiter of this.reportWaiters.splice(0)) waiter();
  }
}
