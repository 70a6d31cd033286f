// SimSiam Lab's extension entry: wiring only. Activation registers commands, the Experiments view,
// the panel serializer and the status bar; nothing is scanned, forked or loaded until used. The
// engine (tfjs, sharp) runs in forked processes: this bundle never imports it.
import * as vscode from 'vscode';
import { EngineProcess } from './host/engineProcess';
import { printableLog } from './host/printableLog';
import { BACKENDS_DIR_ENV, WASM_DIR_ENV, type ExportRequest } from './training/protocol';
import { RunCatalog } from './host/runCatalog';
import { TrainingManager } from './host/training';
import { RetrievalClient } from './host/retrieval';
import { ExperimentsView } from './host/experimentsView';
import { TrainingStatusBar } from './host/trainingUi';
import { Commands, type RunTarget } from './host/commands';
import { createApi, type SimSiamApi } from './host/api';
import { ExperimentPanels, PANEL_VIEW_TYPE } from './host/panel/experimentPanels';
import type { NativeVariant } from './host/nativeBackendInstaller';
import { backendsDir, setUpNativeBackend } from './host/nativeBackendSetup';
import { EnvironmentCheck } from './host/environmentCheck';
import { CheckpointEvaluator } from './host/checkpointEvaluator';
import { EmbeddingExport } from './host/embeddingExport';
import { RunsTablePanels, RUNS_TABLE_VIEW_TYPE, type RunsTableTarget } from './host/runsTable/runsTablePanels';
import { EmbeddingMapPanels, EMBEDDING_MAP_VIEW_TYPE, type MapTarget } from './host/embeddingMap/embeddingMapPanels';

export function activate(context: vscode.ExtensionContext): SimSiamApi {
  const log = printableLog(vscode.window.createOutputChannel('SimSiam', { log: true }));
  const distDir = vscode.Uri.joinPath(context.extensionUri, 'dist').fsPath;
  const launch = (label: string) => new EngineProcess({
    script: vscode.Uri.joinPath(context.extensionUri, 'dist', 'engineProcess.js').fsPath,
    // The bundle ships tfjs' wasm binaries next to the engine (scripts/build.mjs copies them);
    // native backends are installed into global storage by "SimSiam: Set Up Native Backend".
    env: { [WASM_DIR_ENV]: distDir, [BACKENDS_DIR_ENV]: backendsDir(context) },
    log, label,
  });

  const catalog = new RunCatalog(context.workspaceState, log);
  const training = new TrainingManager(launch, log);
  const retrieval = new RetrievalClient(launch, log);
  const panels = new ExperimentPanels({ extensionUri: context.extensionUri, state: context.workspaceState, catalog, training, retrieval, preview: retrieval, log });
  const runsTables = new RunsTablePanels({ extensionUri: context.extensionUri, catalog, log });
  const mapPanels = new EmbeddingMapPanels({ extensionUri: context.extensionUri, catalog, retrieval, experiments: panels, log });
  const view = new ExperimentsView(catalog, training);
  const statusBar = new TrainingStatusBar(training);
  const commands = new Commands(catalog, training, panels, log, new CheckpointEvaluator(launch, log), new EmbeddingExport(retrieval));
  const environment = new EnvironmentCheck(launch, log);

  const treeView = vscode.window.createTreeView('simsiam.experiments', { treeDataProvider: view, showCollapseAll: false });
  const register = (id: string, handler: (...args: never[]) => unknown) => vscode.commands.registerCommand(id, handler);
  context.subscriptions.push(
    log, catalog, training, retrieval, panels, view, statusBar, treeView, commands,
    vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, panels),
    runsTables, vscode.window.registerWebviewPanelSerializer(RUNS_TABLE_VIEW_TYPE, runsTables),
    register('simsiam.openRunsTable', (target?: RunsTableTarget) => runsTables.openCommand(target)),
    mapPanels, vscode.window.registerWebviewPanelSerializer(EMBEDDING_MAP_VIEW_TYPE, mapPanels),
    register('simsiam.openEmbeddingMap', (target?: MapTarget) => mapPanels.openCommand(target, 'map')),
    register('simsiam.showDataViews', (target?: MapTarget) => mapPanels.openCommand(target, 'views')),
    // Explorer menus pass (clicked uri, selected uris); only the clicked one is used.
    register('simsiam.trainFolder', (folder?: vscode.Uri) => commands.trainFolder(folder)),
    register('simsiam.trainWithVariations', (folder?: vscode.Uri) => commands.trainWithVariations(folder)),
    register('simsiam.renameExperiment', (target?: RunTarget) => commands.renameExperiment(target)),
    register('simsiam.editExperimentNote', (target?: RunTarget) => commands.editExperimentNote(target)),
    register('simsiam.stopTraining', (target?: RunTarget) => commands.stopTraining(target)),
    register('simsiam.resumeTraining', (target?: RunTarget) => commands.resumeTraining(target)),
    register('simsiam.openExperiment', (target?: RunTarget) => commands.openExperiment(target)),
    register('simsiam.findSimilar', (image?: vscode.Uri) => commands.findSimilar(image)),
    register('simsiam.deleteExperiment', (target?: RunTarget) => commands.deleteExperiment(target)),
    register('simsiam.revealExperiment', (target?: RunTarget) => commands.revealRun(target)),
    register('simsiam.refreshExperiments', () => catalog.rescan()),
    register('simsiam.showLog', () => log.show()),
    register('simsiam.setupNativeBackend', (variant?: NativeVariant) => setUpNativeBackend(context, log, variant)),
    register('simsiam.showEnvironment', () => environment.show()),
    register('simsiam.evaluateCheckpoint', (target?: RunTarget, step?: number) => commands.evaluateCheckpoint(target, step)),
    register('simsiam.exportEmbeddings', (target?: RunTarget, format?: ExportRequest['format'], out?: string) => commands.exportEmbeddings(target, format, out)),
    register('simsiam.trainSample', () => commands.trainSample(
      vscode.Uri.joinPath(context.extensionUri, 'sample', 'fashion-mnist').fsPath, context.globalStorageUri.fsPath)),
    vscode.workspace.onDidGrantWorkspaceTrust(() => view.refresh()),
  );
  // On shutdown the disposables stop running trainings (each saves a checkpoint) and close the engines.
  return createApi(commands, training, view, panels, statusBar, runsTables, mapPanels);
}
