// The runs table of one dataset folder: its webview's lifecycle, the rows (src/training/run/
// runsReport.ts, the same as `simsiam runs`), the selected runs' overlays and config diff
// (./runSeries.ts), and the files the webview asks to save. The webview draws what it is sent and
// asks through src/webview/runsTableProtocol.ts; every message from it is validated, and every run
// it names must be one the table lists.
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { METRICS_FILE, RUN_FILE, STATUS_FILE } from '../../training/run/runStore';
import { readRunRow, readRunsReport, type RunRow, type RunsReport } from '../../training/run/runsReport';
import {
  parseFromRunsTable, runsTableMessage, RunsTableProtocolError,
  type FromRunsTableMessage, type RunsTableMessageBody, type RunsTableRendered, type SaveRequest, type ToRunsTableMessage, type XAxis,
} from '../../webview/runsTableProtocol';
import type { RunCatalog } from '../runCatalog';
import { showError, showInformation } from '../notify';
import { runsTableHtml } from './runsTableHtml';
import { selectionSeries } from './runSeries';

export interface RunsTableServices {
  extensionUri: vscode.Uri;
  catalog: RunCatalog;
  log: vscode.LogOutputChannel;
  /** Where a saved chart goes: asks the user (a save dialog) unless a test answers. */
  saveLocation?: (suggested: vscode.Uri, format: 'png' | 'csv') => Thenable<vscode.Uri | undefined>;
}

/** A burst of file changes (a flush, a checkpoint, several runs at once) is read once. */
const CHANGES_DELAY_MS = 500;

const askSaveLocation = (suggested: vscode.Uri, format: 'png' | 'csv') => vscode.window.showSaveDialog({
  defaultUri: suggested, saveLabel: 'Save', filters: format === 'png' ? { 'PNG image': ['png'] } : { CSV: ['csv'] },
});

function canonicalParent(runDir: string): string {
  const parent = path.dirname(runDir);
  try {
    return fs.realpathSync(parent);
  } catch {
    return path.resolve(parent);
  }
}

export class RunsTablePanel implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private readonly closed = new vscode.EventEmitter<void>();
  private ready = false;
  private disposed = false;
  private report: RunsReport;
  /** Rows of runs that are not training, by folder, with the file times they were read at. */
  private readonly rowCache = new Map<string, { stamp: string; row: RunRow }>();
  /** What the webview last asked to overlay. */
  private selected: string[] = [];
  private changesTimer: NodeJS.Timeout | undefined;
  private changedRuns = new Set<string>();
  private reportWaiters: (() => void)[] = [];
  /** A view asked for before the webview was ready. */
  private pendingView: { selected?: string[]; axis?: XAxis } | null = null;

  readonly onDidClose = this.closed.event;
  /** The webview's latest report of what it shows (tests and diagnostics read it). */
  lastRendered: RunsTableRendered | null = null;
  readonly posted = new Map<string, number>();

  constructor(readonly panel: vscode.WebviewPanel, readonly datasetRoot: string, private readonly services: RunsTableServices) {
    this.report = this.read();
    panel.webview.options = { enableScripts: true, enableCommandUris: false, localResourceRoots: [vscode.Uri.joinPath(services.extensionUri, 'media')] };
    panel.iconPath = vscode.Uri.joinPath(services.extensionUri, 'media', 'simsiam.svg');
    panel.title = `Runs: ${path.basename(datasetRoot)}`;
    panel.webview.html = runsTableHtml(panel.webview, services.extensionUri, panel.title, { datasetRoot });
    this.disposables.push(
      panel.webview.onDidReceiveMessage((raw) => this.receive(raw)),
      panel.onDidDispose(() => this.dispose()),
      services.catalog.onDidChange((runDirs) => this.onRunsChanged(runDirs)),
    );
  }

  /** The rows as last read. */
  get rows(): readonly RunRow[] {
    return this.report.rows;
  }

  /** Resolves when the webview next reports what it drew. */
  nextReport(): Promise<void> {
    return new Promise((resolve) => this.reportWaiters.push(resolve));
  }

  /** Selects runs and sets the x axis, as a person would in the webview (once it is ready, if it is not yet). */
  setView(view: { selected?: string[]; axis?: XAxis }): void {
    if (this.ready) this.post({ type: 'view', ...view });
    else this.pendingView = view;
  }

  private post(body: RunsTableMessageBody<ToRunsTableMessage>): void {
    if (!this.ready || this.disposed) return;
    this.posted.set(body.type, (this.posted.get(body.type) ?? 0) + 1);
    void this.panel.webview.postMessage(runsTableMessage(body));
  }

  private warn(text: string): void {
    this.services.log.warn(`[runs table ${this.datasetRoot}] ${text}`);
  }

  // ---- the rows --------------------------------------------------------------------------------

  private read(): RunsReport {
    // The catalog's runs folders are the settings' and every one this workspace trained into;
    // listing through it also makes it watch them, so this table hears of their changes.
    this.services.catalog.entries();
    return readRunsReport(this.datasetRoot, this.services.catalog.runsFolders(), (runDir) => this.cachedRow(runDir));
  }

  /** A run's row, read again only when one of its files changed; a training run is always read again. */
  private cachedRow(runDir: string): RunRow {
    const stamp = [RUN_FILE, STATUS_FILE, METRICS_FILE]
      .map((file) => {
        const stat = fs.statSync(path.join(runDir, file), { throwIfNoEntry: false });
        return stat ? `${stat.mtimeMs}:${stat.size}` : '-';
      }).join('|');
    const cached = this.rowCache.get(runDir);
    if (cached && cached.stamp === stamp) return cached.row;
    const row = readRunRow(runDir);
    if (row.status === 'running') this.rowCache.delete(runDir);
    else this.rowCache.set(runDir, { stamp, row });
    return row;
  }

  private postRows(): void {
    this.post({ type: 'rows', datasetRoot: this.report.datasetRoot, runsFolders: this.report.runsFolders, rows: this.report.rows });
  }

  private onRunsChanged(runDirs: string[]): void {
    const folders = this.report.runsFolders;
    // The report's folders are canonical (links resolved); the watchers report paths as they were watched.
    const ours = runDirs.length === 0 || runDirs.some((runDir) => folders.includes(canonicalParent(runDir)) || this.rows.some((r) => r.runDir === runDir));
    if (!ours) return;
    if (runDirs.length === 0) this.changedRuns.add('');
    runDirs.forEach((runDir) => this.changedRuns.add(path.join(canonicalParent(runDir), path.basename(runDir))));
    this.changesTimer ??= setTimeout(() => {
      this.changesTimer = undefined;
      const changed = this.changedRuns;
      this.changedRuns = new Set();
      this.report = this.read();
      this.postRows();
      if (changed.has('') || this.selected.some((runDir) => changed.has(runDir))) this.postSeries();
    }, CHANGES_DELAY_MS);
  }

  private postSeries(): void {
    const { message, problems } = selectionSeries(this.rows, this.selected);
    problems.forEach((problem) => this.warn(`cannot overlay: ${problem}`));
    this.post(message);
  }

  // ---- messages from the webview ---------------------------------------------------------------

  /** Handles one message from the webview: validated first, dropped and logged when malformed. */
  receive(raw: unknown): void {
    let message: FromRunsTableMessage;
    try {
      message = parseFromRunsTable(raw);
    } catch (error) {
      if (!(error instanceof RunsTableProtocolError)) throw error;
      this.warn(`dropped a webview message: ${error.message}`);
      return;
    }
    switch (message.type) {
      case 'ready':
        this.ready = true;
        this.report = this.read();
        this.postRows();
        if (this.pendingView) this.post({ type: 'view', ...this.pendingView });
        this.pendingView = null;
        break;
      case 'select':
        this.selected = message.runDirs.filter((runDir) => this.rows.some((r) => r.runDir === runDir));
        if (this.selected.length < message.runDirs.length) this.warn('ignored runs the table does not list in a selection');
        this.postSeries();
        break;
      case 'openRun':
        if (this.rows.some((r) => r.runDir === message.runDir && r.status !== 'damaged')) {
          void vscode.commands.executeCommand('simsiam.openExperiment', message.runDir);
        } else {
          this.warn(`refused to open a run the table does not list: ${message.runDir}`);
        }
        break;
      case 'save':
        void this.save(message);
        break;
      case 'rendered':
        this.lastRendered = message;
        this.reportWaiters.splice(0).forEach((wake) => wake());
        break;
      case 'log':
        this.services.log[message.level](`[runs table ${this.datasetRoot}] ${message.message}`);
        break;
    }
  }

  /** Writes a chart (PNG) or its data (CSV) where the user says; the webview only suggests a name. */
  private async save(request: SaveRequest): Promise<void> {
    const suggested = vscode.Uri.file(path.join(this.datasetRoot, request.name));
    const target = await (this.services.saveLocation ?? askSaveLocation)(suggested, request.format);
    if (!target) return;
    const bytes = request.format === 'png'
      ? Buffer.from(request.data.slice(request.data.indexOf(',') + 1), 'base64')
      : Buffer.from(request.data, 'utf8');
    try {
      await vscode.workspace.fs.writeFile(target, bytes);
      void showInformation(`SimSiam: saved ${target.fsPath}`);
    } catch (error) {
      void showError(`SimSiam: could not save ${target.fsPath}: ${(error as Error).message}. Choose another folder and save again.`);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.changesTimer);
    this.disposables.splice(0).forEach((d) => d.dispose());
    this.panel.dispose();
    this.closed.fire();
    this.closed.dispose();
  }
}
