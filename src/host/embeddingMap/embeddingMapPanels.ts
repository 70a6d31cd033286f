// Opens, finds and restores embedding map panels: at most one per run. "SimSiam: Open Embedding
// Map" and "SimSiam: Show Data Views" take a run (the Experiments view's row, or a run folder's
// path or URI) or nothing: then a quick pick of the runs that have a checkpoint.
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { readCheckpointPointer, RUN_FILE } from '../../training/run/runStore';
import { parseMapPanelState, type MapTab, type ViewName } from '../../webview/embeddingMapProtocol';
import type { RunCatalog } from '../runCatalog';
import { showWarning } from '../notify';
import { EmbeddingMapPanel, type MapPanelServices } from './embeddingMapPanel';

export const EMBEDDING_MAP_VIEW_TYPE = 'simsiam.embeddingMap';

/** What the commands may be given: a sidebar row (anything with a `run`), a run folder's path or URI. */
export type MapTarget = vscode.Uri | string | { run: { runDir: string } } | undefined;

export interface MapPanelsServices extends MapPanelServices {
  catalog: RunCatalog;
}

function runDirOf(target: MapTarget): string | undefined {
  if (target === undefined) return undefined;
  if (typeof target === 'string') return target;
  if (target instanceof vscode.Uri) return target.fsPath;
  return typeof target === 'object' && 'run' in target ? target.run.runDir : undefined;
}

function hasCheckpoint(runDir: string): boolean {
  try {
    return readCheckpointPointer(runDir) !== null;
  } catch {
    return false;
  }
}

export class EmbeddingMapPanels implements vscode.Disposable, vscode.WebviewPanelSerializer<unknown> {
  private readonly panels = new Map<string, EmbeddingMapPanel>();

  constructor(private readonly services: MapPanelsServices) {}

  get(runDir: string): EmbeddingMapPanel | undefined {
    return this.panels.get(path.resolve(runDir));
  }

  /** The commands: opens (or reveals) the panel of the run the target names, asking when it names none. */
  async openCommand(target: MapTarget, tab: MapTab, view?: ViewName): Promise<EmbeddingMapPanel | undefined> {
    const runDir = runDirOf(target) ?? await this.pickRun(tab);
    if (!runDir) return undefined;
    if (!fs.existsSync(path.join(runDir, RUN_FILE))) {
      void showWarning(`SimSiam: ${runDir} is not a run folder (it has no ${RUN_FILE}); pick a run in the Experiments view.`);
      return undefined;
    }
    if (!hasCheckpoint(runDir)) {
      void showWarning('SimSiam: this run has no checkpoint yet: the map and the data views need one (a run writes it at the end of its first epoch).');
      return undefined;
    }
    return this.open(runDir, tab, view);
  }

  open(runDir: string, tab: MapTab = 'map', view?: ViewName): EmbeddingMapPanel {
    const existing = this.get(runDir);
    if (existing) {
      existing.panel.reveal();
      existing.showTab(tab, view);
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(EMBEDDING_MAP_VIEW_TYPE, 'Map', { viewColumn: vscode.ViewColumn.Active });
    return this.adopt(panel, path.resolve(runDir), { tab, view });
  }

  private async pickRun(tab: MapTab): Promise<string | undefined> {
    const runs = this.services.catalog.list().filter((run) => hasCheckpoint(run.runDir));
    if (runs.length === 0) {
      void showWarning('SimSiam: no run with a checkpoint in this workspace. Train a folder first (right-click it in the Explorer: SimSiam: Train Folder).');
      return undefined;
    }
    const picked = await vscode.window.showQuickPick(
      runs.map((run) => ({ label: run.record.name, description: path.basename(run.record.dataset.root), detail: run.runDir, runDir: run.runDir })),
      { placeHolder: tab === 'map' ? 'Run whose embedding map to open' : 'Run whose data views to show' },
    );
    return picked?.runDir;
  }

  /** Brings a panel back after a window reload; the state was written by the webview, so it is checked. */
  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const restored = parseMapPanelState(state);
    const runDir = restored?.runDir;
    if (!restored || runDir === undefined || !path.isAbsolute(runDir) || !fs.existsSync(path.join(runDir, RUN_FILE)) || this.get(runDir)) {
      panel.dispose();
      return;
    }
    this.adopt(panel, path.resolve(runDir), { tab: restored.tab ?? 'map', view: restored.view });
  }

  private adopt(panel: vscode.WebviewPanel, runDir: string, initial: { tab: MapTab; view?: ViewName }): EmbeddingMapPanel {
    const mapPanel = new EmbeddingMapPanel(panel, runDir, this.services, initial);
    this.panels.set(runDir, mapPanel);
    mapPanel.onDidClose(() => this.panels.delete(runDir));
    return mapPanel;
  }

  dispose(): void {
    for (const panel of [...this.panels.values()]) panel.dispose();
  }
}
