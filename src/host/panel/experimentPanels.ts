// Opens, finds and restores experiment panels: at most one per run. VS Code hands panels that
// were open before a window reload back to the serializer registered for PANEL_VIEW_TYPE.
import * as path from 'path';
import * as vscode from 'vscode';
import { readRunSummary } from '../runCatalog';
import { parsePanelState } from '../../webview/protocol';
import { ExperimentPanel, type PanelServices } from './experimentPanel';

export const PANEL_VIEW_TYPE = 'simsiam.experiment';

export class ExperimentPanels implements vscode.Disposable, vscode.WebviewPanelSerializer<unknown> {
  private readonly panels = new Map<string, ExperimentPanel>();

  constructor(private readonly services: PanelServices) {}

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
    const runDir = parsePanelState(state)?.runDir;
    if (runDir === undefined || !path.isAbsolute(runDir) || !readRunSummary(runDir) || this.get(runDir)) {
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
