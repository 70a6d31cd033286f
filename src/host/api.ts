// What activate() returns: the extension's own paths with the prompts answered, for tests and for
// other extensions. Nothing here bypasses a check the commands make (trust, one run per folder).
import * as path from 'path';
import * as vscode from 'vscode';
import type { EngineMessage, Neighbour } from '../training/protocol';
import type { AugmentationPreviewRendered, GalleryRenderedReport, RenderedReport } from '../webview/protocol';
import type { Commands, SweepChoices, TrainChoices } from './commands';
import type { SweepQueue } from './sweepQueue';
import type { ExperimentsView, RowStatus } from './experimentsView';
import type { SessionOutcome, TrainingManager, TrainingSession } from './training';
import type { TrainingStatusBar } from './trainingUi';
import type { ExperimentPanels } from './panel/experimentPanels';
import { runsTableApi, type RunsTableApi } from './runsTable/runsTableApi';
import { embeddingMapApi, type EmbeddingMapApi } from './embeddingMap/embeddingMapApi';
import type { EmbeddingMapPanels } from './embeddingMap/embeddingMapPanels';
import type { RunsTablePanels } from './runsTable/runsTablePanels';

export interface StartedRun {
  runDir: string;
  /** Settles when the run completes, stops or fails. */
  finished: Promise<SessionOutcome>;
}

export interface ExperimentRow { runDir: string; label: string; description: string; status: RowStatus; contextValue: string; tooltip: string }

export interface PanelProbe {
  /** Counts of messages the extension posted to the webview, by type. */
  posted: Record<string, number>;
  /** The webview's last report of what its charts show, with the latest record of each kind it holds. */
  rendered: RenderedReport | null;
  /** The webview's last report of its gallery. */
  gallery: GalleryRenderedReport | null;
  /** The webview's last report of its augmentation preview. */
  preview: AugmentationPreviewRendered | null;
}

export interface SimSiamApi extends RunsTableApi, EmbeddingMapApi {
  trainFolder(folder: string, choices?: TrainChoices): Promise<StartedRun>;
  /** "Train Folder with Variations" with its prompts answered (`parameters` required, no confirmation); resolves once queued. */
  trainWithVariations(folder: string, choices: SweepChoices): Promise<SweepQueue>;
  /** "Rename Experiment" with its input answered; false when refused (see the notification). */
  renameExperiment(runDir: string, name: string): Promise<boolean>;
  /** "Edit Experiment Note" with its input answered; an empty note removes it. */
  editExperimentNote(runDir: string, note: string): Promise<boolean>;
  stopRun(runDir: string): Promise<void>;
  resumeRun(runDir: string, epochs?: number): Promise<StartedRun>;
  findSimilar(image: string, runDir?: string): Promise<{ runDir: string; neighbours: Neighbour[] } | undefined>;
  openExperiment(runDir: string): Promise<void>;
  deleteExperiment(runDir: string): Promise<boolean>;
  /** The Experiments view's rows, as getChildren builds them now. */
  experiments(): ExperimentRow[];
  /** Fires when the Experiments view is told to redraw (runs changed on disk or in this window). */
  onDidChangeExperiments: vscode.Event<unknown>;
  /** The open panel of a run, or undefined. */
  panel(runDir: string): PanelProbe | undefined;
  /** Waits until the run's panel reports something that satisfies `test` (chart or gallery). */
  waitForPanel(runDir: string, test: (probe: PanelProbe) => boolean, timeoutMs?: number): Promise<PanelProbe>;
  statusBarText(): string;
  /** Delivers `raw` to the run's open panel as if its webview had sent it (validation included). */
  receiveFromWebview(runDir: string, raw: unknown): void;
  /** Every engine message of the trainings this window runs, with the run's folder once known. */
  onTrainingMessage(listener: (runDir: string | undefined, message: EngineMessage) => void): vscode.Disposable;
}

async function started(session: TrainingSession | undefined, what: string): Promise<StartedRun> {
  if (!session) throw new Error(`${what} did not start (see the notification or the SimSiam log).`);
  const message = await session.started;
  return { runDir: message.runDir, finished: session.finished };
}

export function createApi(commands: Commands, training: TrainingManager, view: ExperimentsView, panels: ExperimentPanels,
  statusBar: TrainingStatusBar, runsTables: RunsTablePanels, mapPanels: EmbeddingMapPanels): SimSiamApi {
  const probe = (runDir: string): PanelProbe | undefined => {
    const panel = panels.get(runDir);
    return panel && { posted: Object.fromEntries(panel.posted), rendered: panel.lastRendered, gallery: panel.lastGallery, preview: panel.lastPreview };
  };
  return {
    ...runsTableApi(runsTables),
    ...embeddingMapApi(mapPanels),
    async trainFolder(folder, choices) {
      return started(await commands.trainFolder(vscode.Uri.file(path.resolve(folder)), { preset: 'tiny', ...choices }), `Training ${folder}`);
    },
    async trainWithVariations(folder, choices) {
      if (!choices.parameters) throw new Error('trainWithVariations needs its parameters (the fields to vary and their values).');
      const queue = await commands.trainWithVariations(vscode.Uri.file(path.resolve(folder)), { preset: 'tiny', confirmed: true, ...choices });
      if (!queue) throw new Error(`The sweep of ${folder} did not start (see the notification or the SimSiam log).`);
      return queue;
    },
    renameExperiment: (runDir, name) => commands.renameExperiment(runDir, name),
    editExperimentNote: (runDir, note) => commands.editExperimentNote(runDir, note),
    stopRun: (runDir) => commands.stopTraining(runDir),
    async resumeRun(runDir, epochs) {
      return started(await commands.resumeTraining(runDir, epochs), `Resuming ${runDir}`);
    },
    findSimilar: (image, runDir) => commands.findSimilar(vscode.Uri.file(path.resolve(image)), runDir),
    openExperiment: (runDir) => commands.openExperiment(runDir),
    deleteExperiment: (runDir) => commands.deleteExperiment(runDir, true),
    experiments: () => view.getChildren().map((item) => ({
      runDir: item.run.runDir, label: String(item.label), description: String(item.description), status: item.status,
      contextValue: item.contextValue ?? '',
      tooltip: item.tooltip instanceof vscode.MarkdownString ? item.tooltip.value : String(item.tooltip ?? ''),
    })),
    onDidChangeExperiments: view.onDidChangeTreeData,
    panel: probe,
    async waitForPanel(runDir, test, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const current = probe(runDir);
        if (current && test(current)) return current;
        if (Date.now() > deadline) throw new Error(`The panel of ${runDir} did not reach the expected state in ${timeoutMs} ms: ${JSON.stringify(current)}`);
        const panel = panels.get(runDir);
        await Promise.race([panel?.nextReport(), new Promise((resolve) => setTimeout(resolve, 250))]);
      }
    },
    statusBarText: () => statusBar.text,
    receiveFromWebview(runDir, raw) {
      const panel = panels.get(runDir);
      if (!panel) throw new Error(`no open panel for ${runDir}`);
      panel.receive(raw);
    },
    onTrainingMessage: (listener) => training.onMessage(({ session, message }) => listener(session.runDir, message)),
  };
}
