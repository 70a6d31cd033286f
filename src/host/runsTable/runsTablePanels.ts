// Opens, finds and restores runs tables: at most one per dataset folder. "SimSiam: Open Runs Table"
// takes a folder (Explorer), a run (the Experiments view's row, or a run folder's path) meaning its
// dataset, or nothing: then a quick pick of the dataset folders that have runs.
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { RUN_FILE } from '../../training/run/runStore';
import { parseRunsTableState, type XAxis } from '../../webview/runsTableProtocol';
import { isDamaged, readRunSummary, type RunEntry } from '../runEntry';
import { showWarning } from '../notify';
import { RunsTablePanel, type RunsTableServices } from './runsTablePanel';

export const RUNS_TABLE_VIEW_TYPE = 'simsiam.runsTable';

/** What the command may be given: an Explorer folder, a sidebar row (anything with a `run`), a path. */
export type RunsTableTarget = vscode.Uri | string | { run: RunEntry } | undefined;

/** Canonical, so that one dataset reached through two paths has one table. */
function canonical(folder: string): string {
  try {
    return fs.realpathSync(folder);
  } catch {
    return path.resolve(folder);
  }
}

/** The dataset a run folder belongs to: its run.json's, or for a damaged run the folder holding <dataset>/.simsiam/runs/<run>. */
export function datasetOfRun(runDir: string): string | undefined {
  const summary = readRunSummary(runDir);
  if (summary) return summary.record.dataset.root;
  const runs = path.dirname(runDir);
  return path.basename(runs) === 'runs' && path.basename(path.dirname(runs)) === '.simsiam' ? path.dirname(path.dirname(runs)) : undefined;
}

/** The dataset folder a target names, or undefined when it names none. */
export function datasetOfTarget(target: RunsTableTarget): string | undefined {
  if (target === undefined) return undefined;
  if (typeof target === 'object' && 'run' in target) {
    return isDamaged(target.run) ? datasetOfRun(target.run.runDir) : target.run.record.dataset.root;
  }
  const folder = typeof target === 'string' ? target : target.fsPath;
  return fs.existsSync(path.join(folder, RUN_FILE)) ? datasetOfRun(folder) : folder;
}

export class RunsTablePanels implements vscode.Disposable, vscode.WebviewPanelSerializer<unknown> {
  private readonly panels = new Map<string, RunsTablePanel>();

  constructor(private readonly services: RunsTableServices) {}

  get(datasetRoot: string): RunsTablePanel | undefined {
    return this.panels.get(canonical(datasetRoot));
  }

  /** The command: opens (or reveals) the table of the dataset the target names, asking when it names none. */
  async openCommand(target?: RunsTableTarget): Promise<RunsTablePanel | undefined> {
    const named = datasetOfTarget(target);
    if (target !== undefined && named === undefined) {
      void showWarning('SimSiam: that run folder does not say which dataset it belongs to; open the runs table from the dataset folder instead.');
      return undefined;
    }
    const folder = named ?? await this.pickDataset();
    if (!folder) return undefined;
    if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) {
      void showWarning(`SimSiam: ${folder} is not a folder; open the runs table of a dataset folder.`);
      return undefined;
    }
    return this.open(folder);
  }

  open(datasetRoot: string, view?: { selected?: string[]; axis?: XAxis }): RunsTablePanel {
    const root = canonical(datasetRoot);
    let table = this.panels.get(root);
    if (table) {
      table.panel.reveal();
    } else {
      const panel = vscode.window.createWebviewPanel(RUNS_TABLE_VIEW_TYPE, 'Runs', { viewColumn: vscode.ViewColumn.Active });
      table = this.adopt(panel, root);
    }
    if (view) table.setView(view);
    return table;
  }

  /** Dataset folders that have runs, from the catalog, with how many each has. */
  private async pickDataset(): Promise<string | undefined> {
    const counts = new Map<string, number>();
    for (const run of this.services.catalog.list()) {
      const root = canonical(run.record.dataset.root);
      counts.set(root, (counts.get(root) ?? 0) + 1);
    }
    if (counts.size === 0) {
      void showWarning('SimSiam: no runs found in this workspace. Train a folder first (right-click it in the Explorer: SimSiam: Train Folder).');
      return undefined;
    }
    const picked = await vscode.window.showQuickPick(
      [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([root, runs]) => ({
        label: path.basename(root), description: `${runs} run${runs === 1 ? '' : 's'}`, detail: root, root,
      })),
      { placeHolder: 'Dataset folder whose runs to compare' },
    );
    return picked?.root;
  }

  /** Brings a table back after a window reload; the state was written by the webview, so it is checked. */
  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const root = parseRunsTableState(state)?.datasetRoot;
    if (root === undefined || !path.isAbsolute(root) || !fs.existsSync(root) || this.get(root)) {
      panel.dispose();
      return;
    }
    this.adopt(panel, canonical(root));
  }

  private adopt(panel: vscode.WebviewPanel, root: string): RunsTablePanel {
    const table = new RunsTablePanel(panel, root, this.services);
    this.panels.set(root, table);
    table.onDidClose(() => this.panels.delete(root));
    return table;
  }

  dispose(): void {
    for (const table of [...this.panels.values()]) table.dispose();
  }
}
