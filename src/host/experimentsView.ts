// The Experiments view: every run found on disk, with its status, progress and config. Runs that
// train in this window show their live progress, worded as the panel and the status bar word it
// (src/webview/runText.ts); the others refresh when their files change. A run folder whose files cannot
// be read is a row too, saying why, so that it is repaired or deleted rather than missed.
import * as path from 'path';
import * as vscode from 'vscode';
import type { RunStatus } from '../training/protocol';
import type { RunCatalog } from './runCatalog';
import { isDamaged, type DamagedRun, type RunEntry, type RunSummary } from './runEntry';
import type { TrainingManager } from './training';
import { formatStarted } from '../webview/format';
import { progressParts, runProgress } from '../webview/runText';

/** A row of the view: a run, or a run folder that cannot be read ('damaged'). */
export type RowStatus = RunStatus | 'damaged';

export class RunItem extends vscode.TreeItem {
  private constructor(readonly run: RunEntry, readonly status: RowStatus, label: string, description: string) {
    super(label, vscode.TreeItemCollapsibleState.None);
    this.id = run.runDir;
    this.description = description;
    this.iconPath = statusIcon(status);
    this.resourceUri = vscode.Uri.file(run.runDir);
  }

  static of(run: RunSummary, status: RunStatus, description: string): RunItem {
    const item = new RunItem(run, status, run.record.name, description);
    // The context value drives which actions (stop / resume) each row offers.
    item.contextValue = `simsiamRun.${status}${run.hasCheckpoint ? '.resumable' : ''}`;
    item.tooltip = tooltip(run, status);
    item.command = { title: 'Open Experiment', command: 'simsiam.openExperiment', arguments: [item] };
    return item;
  }

  /** Offers Reveal and Delete only: there is no run to open or resume until its files are repaired. */
  static damaged(run: DamagedRun): RunItem {
    // The folder is the row's label: the problem reads shorter without it (the tooltip has it whole).
    const item = new RunItem(run, 'damaged', path.basename(run.runDir), run.problem.replaceAll(run.runDir + path.sep, ''));
    item.contextValue = 'simsiamRun.damaged';
    item.tooltip = new vscode.MarkdownString(`**${escape(path.basename(run.runDir))}** — cannot be read\n\n${escape(run.problem)}\n\n` +
      'Repair or restore the file it names (run.json describes the run: its config and dataset), then refresh the view; ' +
      'or delete the experiment. Until then it cannot be opened, resumed or searched. Its checkpoints and metrics are left as they are.');
    return item;
  }
}

function statusIcon(status: RowStatus): vscode.ThemeIcon {
  switch (status) {
    case 'damaged': return new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground'));
    case 'running': return new vscode.ThemeIcon('sync~spin', new vscode.ThemeColor('charts.blue'));
    case 'completed': return new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed'));
    case 'stopped': return new vscode.ThemeIcon('debug-pause', new vscode.ThemeColor('charts.yellow'));
    case 'failed': return new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed'));
    case 'interrupted': return new vscode.ThemeIcon('warning', new vscode.ThemeColor('charts.orange'));
  }
}

function tooltip(run: RunSummary, status: RunStatus): vscode.MarkdownString {
  const { record } = run;
  const c = record.config;
  const tip = new vscode.MarkdownString(undefined, true);
  tip.appendMarkdown(`**${escape(record.name)}** — ${status}\n\n`);
  // The person's own words first: why the run exists is what its tooltip is read for.
  if (record.note) tip.appendMarkdown(`${record.note.split('\n').map(escape).join('  \n')}\n\n---\n\n`);
  if (run.status.message) tip.appendMarkdown(`${escape(run.status.message)}\n\n`);
  const rows: [string, string][] = [
    ['dataset', `${record.dataset.root} (${record.dataset.trainImages} train / ${record.dataset.testImages} test` +
      `${record.dataset.classes.length ? `, ${record.dataset.classes.length} classes` : ''})`],
    ['preset', c.preset],
    ['model', `${c.backbone} ×${c.widthMultiplier}, ${c.stem} stem, ${c.imageSize} px`],
    ['heads', `projector ${c.projectorLayers}×${c.projectorDim}, predictor ${c.predictorHiddenDim}`],
    ['optimiser', `SGD lr ${c.baseLr}×${c.batchSize}/256, momentum ${c.momentum}, wd ${c.weightDecay}`],
    ['batch × epochs', `${c.batchSize} × ${c.epochs}`],
    ['backend', record.backend],
    ['seed', String(c.seed)],
    ['folder', run.runDir],
  ];
  tip.appendMarkdown('| | |\n|---|---|\n' + rows.map(([k, v]) => `| ${k} | ${escape(v)} |`).join('\n'));
  return tip;
}

function escape(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}

export class ExperimentsView implements vscode.TreeDataProvider<RunItem>, vscode.Disposable {
  private readonly changes = new vscode.EventEmitter<RunItem | undefined>();
  private readonly disposables: vscode.Disposable[] = [];
  private lastLiveRefresh = 0;
  private liveTimer: NodeJS.Timeout | undefined;

  readonly onDidChangeTreeData = this.changes.event;

  constructor(private readonly catalog: RunCatalog, private readonly training: TrainingManager) {
    this.disposables.push(
      catalog.onDidChange(() => this.refresh()),
      // Live progress arrives per step, and phases between steps; the view redraws at most once a second for them.
      training.onDidChange(() => this.refreshLive()),
      training.onMessage(({ message }) => {
        if (message.type === 'progress') this.refreshLive();
      }),
    );
  }

  refresh(): void {
    this.changes.fire(undefined);
  }

  getTreeItem(item: RunItem): vscode.TreeItem {
    return item;
  }

  getChildren(parent?: RunItem): RunItem[] {
    if (parent) return [];
    return this.catalog.entries().map((entry) => (isDamaged(entry) ? RunItem.damaged(entry) : this.itemFor(entry)));
  }

  private itemFor(run: RunSummary): RunItem {
    const session = this.training.sessionForRun(run.runDir);
    const training = session !== undefined && !session.ended;
    // A run this window trains is running even before its first status.json lands.
    const status: RunStatus = training ? 'running' : run.status.status;
    const progress = runProgress(training ? session : null, { status: run.status, epochs: run.record.config.epochs, lastEpoch: run.lastEpoch });
    // Runs of one folder share a name: when each started tells them apart.
    const parts = [formatStarted(run.record.createdAt), ...progressParts(progress), path.basename(run.record.dataset.root)];
    return RunItem.of(run, status, parts.join(' · '));
  }

  private refreshLive(): void {
    const wait = 1000 - (Date.now() - this.lastLiveRefresh);
    if (this.liveTimer) return;
    this.liveTimer = setTimeout(() => {
      this.liveTimer = undefined;
      this.lastLiveRefresh = Date.now();
      this.refresh();
    }, Math.max(0, wait));
  }

  dispose(): void {
    clearTimeout(this.liveTimer);
    this.disposables.forEach((d) => d.dispose());
    this.changes.dispose();
  }
}
