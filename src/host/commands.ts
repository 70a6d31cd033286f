// What each SimSiam command does, prompts included. The exported API (src/host/api.ts) reaches the
// same code with the prompts' answers given, so the tests exercise the product's own paths.
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { PRESETS, PRESET_DESCRIPTIONS, type PresetName, type TrainConfig } from '../training/config';
import { defaultRunsDir, renameRun, runNameProblem, runNoteProblem, setRunNote } from '../training/run/runStore';
import { defaultRunName } from '../training/run/runNames';
import { parseSweepValues, SWEEP_FIELDS, sweepRuns, sweepSize, type SweepField, type SweepParameter, type SweepRun } from '../training/sweep';
import { SweepQueue, type SweepRunOutcome } from './sweepQueue';
import { describeHolder, isLocal, isProvenHolder, runLockState, RunLockedError, withEveryRunLock } from '../training/run/runLock';
import type { EvaluationRecord, ExportRequest, Neighbour } from '../training/protocol';
import type { EmbeddingExport } from './embeddingExport';
import { checkpointSteps } from '../training/run/runStore';
import type { CheckpointEvaluator } from './checkpointEvaluator';
import type { RunCatalog, RunSummary } from './runCatalog';
import type { RunEntry } from './runEntry';
import { isDamaged } from './runEntry';
import { TrainingRequestError, type TrainingManager, type TrainingSession } from './training';
import { showTrainingProgress } from './trainingUi';
import { configuredRunsFolder, resolveTrainingConfig, SECTION, trainingDefaults } from './settings';
import { RunItem } from './experimentsView';
import { formatKnn } from '../webview/format';
import { showError, showInformation, showWarning } from './notify';
import type { ExperimentPanels } from './panel/experimentPanels';
import { isPathInside } from './panel/pathGuard';
import { epochText, runProgress } from '../webview/runText';
import { IMAGE_EXTENSION_NAMES, isImageFileName } from '../training/data/dataset';

/** What a command may be invoked with: a tree row, a run folder path, or nothing (then it asks). */
export type RunTarget = RunItem | string | vscode.Uri | undefined;

export interface TrainChoices {
  preset?: PresetName;
  /** TrainConfig fields over the settings' defaults. */
  overrides?: Record<string, unknown>;
  name?: string;
}

export interface SweepChoices {
  preset?: PresetName;
  /** The varied fields and their values; asked for when absent. */
  parameters?: SweepParameter[];
  /** TrainConfig fields over the settings' defaults, for every run. */
  overrides?: Record<string, unknown>;
  /** Skips the "Train N runs?" question (the API's callers have decided). */
  confirmed?: boolean;
}

/** What each sweepable field is, for the quick pick. */
const SWEEP_FIELD_DESCRIPTIONS: Record<SweepField, string> = {
  baseLr: 'base learning rate (lr = base × batch / 256)',
  batchSize: 'batch size',
  epochs: 'epochs',
  imageSize: 'input image size (px)',
  seed: 'random seed: repeats of one config',
  cropScaleMin: 'random resized crop: smallest area (fraction of the image)',
  cropScaleMax: 'random resized crop: largest area',
  colorJitter: 'colour-jitter strength s',
  colorJitterP: 'probability of colour jitter',
  grayscaleP: 'probability of grayscale',
  blurP: 'probability of Gaussian blur',
  flipP: 'probability of a horizontal flip',
  backend: 'tfjs backend (compare speed)',
  replicas: 'data-parallel training threads (wasm/cpu)',
  microBatch: 'images per pass on one training thread (gradients accumulated)',
  loaderThreads: 'image loading threads',
  maxCachedImages: 'decoded images kept in memory',
};

export class Commands implements vscode.Disposable {
  private readonly sweeps = new Set<SweepQueue>();

  constructor(
    private readonly catalog: RunCatalog,
    private readonly training: TrainingManager,
    private readonly panels: ExperimentPanels,
    private readonly log: vscode.LogOutputChannel,
    private readonly evaluator: CheckpointEvaluator,
    private readonly exporter: EmbeddingExport,
  ) {}

  // ---- Train Folder --------------------------------------------------------------------------

  /**
   * The walkthrough's first run: the sample shipped in the extension (1,200 Fashion-MNIST images),
   * trained with the tiny preset. Runs are written beside a dataset, and the extension's own folder
   * is replaced on every update, so the sample is first copied into the extension's storage.
   */
  async trainSample(bundledSample: string, storage: string): Promise<TrainingSession | undefined> {
    if (!this.requireTrust('Training')) return undefined;
    const folder = path.join(storage, path.basename(bundledSample));
    try {
      if (!fs.existsSync(folder)) {
        // Copied under another name and renamed, so an interrupted copy is never taken for the sample.
        const partial = `${folder}.partial`;
        await fs.promises.rm(partial, { recursive: true, force: true });
        await fs.promises.cp(bundledSample, partial, { recursive: true, filter: (source) => !source.includes('.simsiam') });
        await fs.promises.rename(partial, folder);
      }
    } catch (error) {
      void showError(`SimSiam: could not copy the sample to ${folder}: ${(error as Error).message}`);
      return undefined;
    }
    return this.trainFolder(vscode.Uri.file(folder), { preset: 'tiny' });
  }

  async trainFolder(folderUri?: vscode.Uri, choices: TrainChoices = {}): Promise<TrainingSession | undefined> {
    if (!this.requireTrust('Training')) return undefined;
    const folder = folderUri?.fsPath ?? (await this.pickFolder());
    if (!folder) return undefined;
    const busy = this.training.sessionForFolder(folder);
    if (busy) {
      const open = 'Open Experiment';
      const stop = 'Stop It';
      void showInformation(`${path.basename(folder)} is already training. One run per folder at a time.`, open, stop)
        .then((answer) => {
          if (answer === open && busy.runDir) this.panels.open(busy.runDir);
          if (answer === stop) busy.stop();
        });
      return undefined;
    }
    const defaults = trainingDefaults(vscode.Uri.file(folder));
    const preset = choices.preset ?? (await this.pickPreset(defaults.preset, defaults.overrides));
    if (!preset) return undefined;
    let config: TrainConfig;
    try {
      config = resolveTrainingConfig(preset, { ...defaults.overrides, ...choices.overrides });
    } catch (error) {
      const invalid = (error as Error).message;
      this.log.error(invalid);
      void showError(`SimSiam: ${invalid}`, 'Open Settings')
        .then((answer) => answer && vscode.commands.executeCommand('workbench.action.openSettings', SECTION));
      return undefined;
    }
    const runsDir = configuredRunsFolder(vscode.Uri.file(folder)) ?? defaultRunsDir(folder);
    let session: TrainingSession;
    try {
      // Named here rather than by the engine so the notifications and the status bar use the run's name too.
      session = this.training.train({ folder, config, runsDir, name: choices.name ?? defaultRunName(folder, config, runsDir) });
    } catch (error) {
      void showError(`SimSiam: ${(error as Error).message}`);
      return undefined;
    }
    void this.catalog.remember(runsDir);
    this.follow(session);
    return session;
  }

  /** Progress notification, the panel once the run exists, and a word when it ends. */
  private follow(session: TrainingSession): void {
    showTrainingProgress(session);
    session.started.then((started) => {
      this.catalog.notify(started.runDir);
      this.panels.open(started.runDir, { preserveFocus: true });
    }, () => undefined);
    void session.finished.then((outcome) => {
      if (outcome.runDir) this.catalog.notify(outcome.runDir);
      const open = 'Open Experiment';
      const onAnswer = (answer: string | undefined) => {
        if (answer === open && outcome.runDir) this.panels.open(outcome.runDir);
        if (answer === 'Show Log') this.log.show(true);
        if (answer === openSettings && outcome.status === 'failed') {
          void vscode.commands.executeCommand('workbench.action.openSettings', outcome.setting);
        }
      };
      const openSettings = 'Open Settings';
      if (outcome.status === 'completed') {
        const knn = session.progress?.knnTop1;
        void showInformation(
          `SimSiam: ${session.name} finished${knn !== null && knn !== undefined ? ` (kNN ${formatKnn(knn)})` : ''}. ` +
          'Right-click an image of the folder to find similar ones.', open).then(onAnswer);
      } else if (outcome.status === 'stopped' && !outcome.runDir) {
        void showInformation(`SimSiam: ${session.name} stopped before training started; no run was created.`);
      } else if (outcome.status === 'stopped') {
        void showInformation(`SimSiam: ${session.name} stopped with a checkpoint; resume it any time.`, open).then(onAnswer);
      } else {
        void showError(`SimSiam: ${session.name} failed: ${outcome.message}`,
          ...(outcome.setting ? [openSettings] : []), 'Show Log', ...(outcome.runDir ? [open] : []))
          .then(onAnswer);
      }
    });
  }

  private async pickFolder(): Promise<string | undefined> {
    const workspaceFolders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
    type FolderItem = vscode.QuickPickItem & { folder?: string };
    const browse: FolderItem = { label: '$(folder-opened) Choose a folder…', description: 'any folder of images' };
    const items: FolderItem[] = [
      ...workspaceFolders.map((f) => ({ label: `$(root-folder) ${f.name}`, description: f.uri.fsPath, folder: f.uri.fsPath })),
      browse,
    ];
    const picked = workspaceFolders.length
      ? await vscode.window.showQuickPick(items, { title: 'SimSiam: Train Folder', placeHolder: 'Folder of images to train on' })
      : browse;
    if (!picked) return undefined;
    if (picked.folder) return picked.folder;
    const chosen = await vscode.window.showOpenDialog({
      canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Train on This Folder',
      defaultUri: workspaceFolders[0]?.uri,
    });
    return chosen?.[0]?.fsPath;
  }

  private async pickPreset(preferred: PresetName, overrides: Record<string, unknown>): Promise<PresetName | undefined> {
    const names = (Object.keys(PRESETS) as PresetName[]).sort((a, b) => Number(b === preferred) - Number(a === preferred));
    const fromSettings = Object.entries(overrides).map(([k, v]) => `${k} ${v}`).join(', ');
    // Each preset as the settings would train it.
    const items = names.map((name) => {
      let resolved = '';
      try {
        const config = resolveTrainingConfig(name, overrides);
        resolved = `${config.epochs} epochs · batch ${config.batchSize} · ${config.imageSize} px`;
      } catch (error) {
        resolved = `settings invalid: ${(error as Error).message}`;
      }
      return {
        label: name, description: PRESET_DESCRIPTIONS[name],
        detail: `${resolved}${fromSettings ? ` · from settings: ${fromSettings}` : ''}`, name,
      };
    });
    const picked = await vscode.window.showQuickPick(items, { title: 'SimSiam: Train Folder', placeHolder: 'Preset' });
    return picked?.name;
  }

  // ---- Train Folder with Variations ----------------------------------------------------------

  /**
   * A sweep: the folder, the preset, the fields to vary and their values, then "Train N runs?";
   * the runs train one after another (SweepQueue) under one cancellable notification.
   */
  async trainWithVariations(folderUri?: vscode.Uri, choices: SweepChoices = {}): Promise<SweepQueue | undefined> {
    if (!this.requireTrust('Training')) return undefined;
    const folder = folderUri?.fsPath ?? (await this.pickFolder());
    if (!folder) return undefined;
    const defaults = trainingDefaults(vscode.Uri.file(folder));
    const preset = choices.preset ?? (await this.pickPreset(defaults.preset, defaults.overrides));
    if (!preset) return undefined;
    const base = { ...defaults.overrides, ...choices.overrides };
    let runs: SweepRun[];
    try {
      const parameters = choices.parameters ?? (await this.pickVariations(preset, base));
      if (!parameters) return undefined;
      runs = sweepRuns(preset, base, parameters, resolveTrainingConfig);
    } catch (error) {
      const invalid = (error as Error).message;
      this.log.error(invalid);
      void showError(`SimSiam: ${invalid}`);
      return undefined;
    }
    if (!choices.confirmed) {
      const train = `Train ${runs.length} Runs`;
      const answer = await showInformation(`Train ${runs.length} runs of ${path.basename(folder)} (${preset}), one after another?`, {
        modal: true, detail: runs.map((r, i) => `${i + 1}. ${r.label}`).join('\n'),
      }, train);
      if (answer !== train) return undefined;
    }
    const runsDir = configuredRunsFolder(vscode.Uri.file(folder)) ?? defaultRunsDir(folder);
    const queue = new SweepQueue(this.training, { folder, runsDir, preset, runs });
    this.sweeps.add(queue);
    void this.catalog.remember(runsDir);
    this.followSweep(queue);
    void queue.finished.finally(() => this.sweeps.delete(queue));
    return queue;
  }

  /** The fields to vary (a multi-select), then each one's values, checked as they are typed. */
  private async pickVariations(preset: PresetName, base: Record<string, unknown>): Promise<SweepParameter[] | undefined> {
    const current = resolveTrainingConfig(preset, base);
    const picked = await vscode.window.showQuickPick(SWEEP_FIELDS.map((field) => ({
      label: field, description: `now ${current[field]}`, detail: SWEEP_FIELD_DESCRIPTIONS[field], field,
    })), { title: 'SimSiam: Train Folder with Variations', placeHolder: 'Parameters to vary (each value of each makes the runs)', canPickMany: true });
    if (!picked?.length) return undefined;
    const parameters: SweepParameter[] = [];
    for (const [i, { field }] of picked.entries()) {
      const others = sweepSize(parameters);
      const text = await vscode.window.showInputBox({
        title: `SimSiam: values of ${field} (${i + 1} of ${picked.length})`,
        prompt: `${SWEEP_FIELD_DESCRIPTIONS[field]}: comma-separated values, e.g. ${current[field]},…`,
        value: String(current[field]),
        validateInput: (typed) => {
          try {
            const count = parseSweepValues(field, typed).length;
            return { message: `${count} value${count === 1 ? '' : 's'} → ${others * count} runs so far`, severity: vscode.InputBoxValidationSeverity.Info };
          } catch (error) {
            return (error as Error).message;
          }
        },
      });
      if (text === undefined) return undefined;
      parameters.push({ field, values: parseSweepValues(field, text) });
    }
    return parameters;
  }

  /** "run k of N" with Cancel; each run shows in the Experiments view as it starts; a summary at the end. */
  private followSweep(queue: SweepQueue): void {
    const title = `SimSiam: sweep of ${path.basename(queue.plan.folder)}`;
    void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (progress, token) => {
      token.onCancellationRequested(() => queue.cancel());
      progress.report({ message: `${queue.total} runs queued` });
      queue.onDidStartRun(({ index, total, name, session }) => {
        progress.report({ message: `run ${index + 1} of ${total}: ${name}` });
        session.started.then((started) => this.catalog.notify(started.runDir), () => undefined);
        void session.finished.then((outcome) => {
          progress.report({ increment: 100 / total });
          if (outcome.runDir) this.catalog.notify(outcome.runDir);
        });
      });
      return queue.finished;
    });
    void queue.finished.then((outcomes) => this.reportSweep(queue, outcomes));
  }

  private reportSweep(queue: SweepQueue, outcomes: SweepRunOutcome[]): void {
    const count = (status: SweepRunOutcome['status']) => outcomes.filter((o) => o.status === status).length;
    const parts = [`${count('completed')} of ${outcomes.length} runs completed`,
      ...(['stopped', 'failed', 'skipped'] as const).flatMap((status) => (count(status) ? [`${count(status)} ${status}`] : []))];
    const table = 'Open Runs Table';
    const text = `SimSiam: sweep of ${path.basename(queue.plan.folder)} ended: ${parts.join(', ')}.`;
    for (const failed of outcomes.filter((o) => o.status === 'failed')) this.log.error(`[sweep] ${failed.name} failed: ${failed.message}`);
    const answer = count('failed') ? showWarning(text, table, 'Show Log') : showInformation(text, table);
    void answer.then((chosen) => {
      if (chosen === table) void vscode.commands.executeCommand('simsiam.openRunsTable', queue.plan.folder);
      if (chosen === 'Show Log') this.log.show(true);
    });
  }

  // ---- Rename / Note -------------------------------------------------------------------------

  /**
   * Renames a run in its run.json. Allowed while it trains: the engine writes run.json only as a
   * run starts or resumes, and the name is only shown (the folder, which the engine writes to,
   * keeps its name). The moment a run of this window is starting is refused, as the engine may
   * be about to write the file.
   */
  async renameExperiment(target?: RunTarget, newName?: string): Promise<boolean> {
    const run = await this.resolveEditable(target, 'Experiment to rename', 'renamed');
    if (!run || this.refuseWhileStarting(run.runDir, run.record.name)) return false;
    const name = newName ?? await vscode.window.showInputBox({
      title: `SimSiam: rename ${run.record.name}`, prompt: 'New name (stored in the run\'s run.json; its folder keeps its name)',
      value: run.record.name, valueSelection: [0, run.record.name.length],
      validateInput: (text) => runNameProblem(text),
    });
    if (name === undefined || name.trim() === run.record.name) return false;
    return this.updateRun(run.runDir, () => renameRun(run.runDir, name));
  }

  /** A free-text note in run.json, shown in the run's tooltip; an empty note removes it. */
  async editExperimentNote(target?: RunTarget, newNote?: string): Promise<boolean> {
    const run = await this.resolveEditable(target, 'Experiment to annotate', 'annotated');
    if (!run || this.refuseWhileStarting(run.runDir, run.record.name)) return false;
    const stored = run.record.note ?? '';
    // The input box holds one line: a note written with line breaks (by hand, in run.json) is shown joined.
    const multiline = stored.includes('\n');
    const note = newNote ?? await vscode.window.showInputBox({
      title: `SimSiam: note on ${run.record.name}`,
      prompt: `What this run is for, what to compare it with… Shown in its tooltip; empty removes it.${multiline ? ' (Its line breaks are shown as spaces.)' : ''}`,
      value: multiline ? stored.replace(/\s*\n\s*/g, ' ') : stored,
      validateInput: (text) => runNoteProblem(text),
    });
    if (note === undefined || (!multiline && note === stored)) return false;
    return this.updateRun(run.runDir, () => setRunNote(run.runDir, note));
  }

  /** A whole run to change; a damaged one is refused with what is wrong with it (its run.json is never rewritten). */
  private async resolveEditable(target: RunTarget, placeHolder: string, done: string): Promise<RunSummary | undefined> {
    const entry = await this.resolveEntry(target, placeHolder);
    if (entry && isDamaged(entry)) {
      void showWarning(`SimSiam: ${path.basename(entry.runDir)} cannot be ${done}: ${entry.problem} ` +
        'Repair or restore its run.json first; it was left as it is.');
      return undefined;
    }
    return entry;
  }

  private refuseWhileStarting(runDir: string, name: string): boolean {
    const session = this.training.sessionForRun(runDir);
    if (!session || session.ended || session.progress) return false;
    void showInformation(`SimSiam: ${name} is starting; change it once it trains.`);
    return true;
  }

  private updateRun(runDir: string, write: () => void): boolean {
    try {
      write();
      return true;
    } catch (error) {
      void showError(`SimSiam: ${(error as Error).message}`);
      return false;
    } finally {
      this.catalog.notify(runDir);
    }
  }

  /** The window is closing: queued sweeps start nothing more. */
  dispose(): void {
    for (const sweep of this.sweeps) sweep.dispose();
  }

  // ---- Stop / Resume -------------------------------------------------------------------------

  async stopTraining(target?: RunTarget): Promise<void> {
    let runDir = runDirOf(target);
    if (!runDir) {
      const sessions = this.training.active.filter((s) => !s.ended);
      if (sessions.length === 0) {
        void showInformation('SimSiam: no run is training in this window.');
        return;
      }
      if (sessions.length === 1 && !sessions[0].runDir) {
        sessions[0].stop();
        return;
      }
      const picked = sessions.length === 1 ? sessions[0] : (await vscode.window.showQuickPick(
        sessions.map((s) => ({ label: s.name, description: s.runDir, session: s })), { placeHolder: 'Run to stop' }))?.session;
      if (!picked) return;
      if (!picked.runDir) {
        picked.stop();
        return;
      }
      runDir = picked.runDir;
    }
    const session = this.training.sessionForRun(runDir);
    if (session) {
      session.stop();
      return;
    }
    const name = this.catalog.list().find((r) => path.resolve(r.runDir) === path.resolve(runDir!))?.record.name ?? runDir;
    // The run lock says who trains it; status.json may name a process long gone, or a pid reused since.
    const lock = runLockState(runDir, 'training');
    if (!lock.held) {
      void showInformation(`SimSiam: ${name} is not training.`);
      return;
    }
    const { holder } = lock;
    if (!holder) {
      void showInformation(`SimSiam: ${name} is just starting in another process; try again in a moment.`);
      return;
    }
    if (!isLocal(holder)) {
      void showWarning(`SimSiam: ${name} is training on host ${holder.host} (process ${holder.pid}): stop it there.`);
      return;
    }
    // The lock file is data from the run folder: it may name any process. Only one shown to be the
    // process that took the lock (its start time matches) is signalled, and only in a trusted workspace.
    if (!this.requireTrust('Stopping a training that another process runs', 'It signals a process that a file in the workspace names')) return;
    const stopItThere = 'stop it in its own window (SimSiam: Stop Training) or terminal (Ctrl-C).';
    if (!isProvenHolder(holder)) {
      void showWarning(`SimSiam: ${name} is training in another process: ${describeHolder(holder)}. ` +
        `Its lock file does not show that process ${holder.pid} is the one that took it, so SimSiam does not signal it: ${stopItThere}`);
      return;
    }
    // Another window or the CLI owns it; both stop gracefully (with a checkpoint) on SIGTERM.
    const answer = await showWarning(
      `${name} is training in another process: ${describeHolder(holder)}. Stop it? It saves a checkpoint first.`, { modal: true }, 'Stop');
    if (answer !== 'Stop') return;
    // The question waited on a person: signal the process only if it still holds this very lock.
    const now = runLockState(runDir, 'training');
    if (!now.held || now.holder?.token !== holder.token || !isProvenHolder(now.holder)) {
      void showInformation(`SimSiam: ${name} is no longer training.`);
      return;
    }
    try {
      process.kill(holder.pid, 'SIGTERM');
    } catch (error) {
      void showError(`SimSiam: could not stop process ${holder.pid}: ${(error as Error).message}`);
    }
  }

  async resumeTraining(target?: RunTarget, epochs?: number): Promise<TrainingSession | undefined> {
    if (!this.requireTrust('Training')) return undefined;
    const run = await this.resolveRun(target, 'Run to resume', (r) => r.status.status !== 'running' && r.hasCheckpoint);
    if (!run) return undefined;
    if (run.status.status === 'running') {
      void showInformation(`SimSiam: ${run.record.name} is already training.`);
      return undefined;
    }
    if (!run.hasCheckpoint) {
      void showWarning(`SimSiam: ${run.record.name} stopped before its first checkpoint; train the folder again instead.`);
      return undefined;
    }
    let totalEpochs = epochs;
    const reached = run.lastEpoch?.epoch ?? run.status.epoch;
    if (totalEpochs === undefined && reached >= run.record.config.epochs) {
      const answer = await vscode.window.showInputBox({
        title: `SimSiam: ${run.record.name} finished its ${run.record.config.epochs} epochs`,
        prompt: 'Continue training to how many epochs in total?',
        value: String(run.record.config.epochs * 2),
        validateInput: (text) => (Number.isInteger(Number(text)) && Number(text) > reached ? undefined : `A whole number above ${reached}.`),
      });
      if (!answer) return undefined;
      totalEpochs = Number(answer);
    }
    let session: TrainingSession;
    try {
      session = this.training.resume(run.runDir, totalEpochs);
    } catch (error) {
      const text = error instanceof TrainingRequestError ? error.message : `could not resume: ${(error as Error).message}`;
      void showError(`SimSiam: ${text}`);
      return undefined;
    }
    this.follow(session);
    return session;
  }

  // ---- Evaluate ------------------------------------------------------------------------------

  /** Evaluates a checkpoint of a run: the one at `step`, else the latest, or one picked when there are several. */
  async evaluateCheckpoint(target?: RunTarget, step?: number): Promise<EvaluationRecord | undefined> {
    const run = await this.resolveRun(target, 'Experiment to evaluate', (r) => checkpointSteps(r.runDir).length > 0);
    if (!run) return undefined;
    const steps = checkpointSteps(run.runDir);
    if (!steps.length) {
      void showInformation(`SimSiam: ${run.record.name} has no checkpoint yet: train it first.`);
      return undefined;
    }
    let chosen = step;
    if (chosen === undefined && steps.length > 1) {
      const picked = await vscode.window.showQuickPick(steps.map((s, i) => ({
        label: `step ${s}`, description: i === 0 ? 'latest' : undefined, step: s,
      })), { placeHolder: `Checkpoint of ${run.record.name} to evaluate` });
      if (!picked) return undefined;
      chosen = picked.step;
    }
    return this.evaluator.evaluate(run.runDir, run.record.name, chosen ?? steps[0]);
  }

  /** Writes a run's embeddings as npy, CSV or a TensorBoard projector folder (asked when not given). */
  async exportEmbeddings(target?: RunTarget, format?: ExportRequest['format'], out?: string): Promise<string[] | undefined> {
    if (!this.requireTrust('Exporting embeddings')) return undefined;
    const run = await this.resolveRun(target, 'Experiment whose embeddings to export', (r) => checkpointSteps(r.runDir).length > 0);
    return run && this.exporter.run(run.runDir, run.record.name, format, out);
  }

  // ---- Open / Delete / Reveal ----------------------------------------------------------------

  async openExperiment(target?: RunTarget): Promise<void> {
    const run = await this.resolveRun(target, 'Experiment to open', () => true);
    if (run) this.panels.open(run.runDir);
  }

  async deleteExperiment(target?: RunTarget, confirmed = false): Promise<boolean> {
    // A row or a path may name a damaged run (run.json unreadable); the picker offers whole runs only.
    const named = runDirOf(target);
    const run = named ? this.catalog.find(named) : await this.resolveRun(target, 'Experiment to delete', () => true);
    if (!run) {
      if (named) void showWarning(`SimSiam: ${named} is not a run folder.`);
      return false;
    }
    const name = isDamaged(run) ? path.basename(run.runDir) : run.record.name;
    const trainingHere = () => this.training.sessionForRun(run.runDir) !== undefined;
    if (trainingHere() || (!isDamaged(run) && run.status.status === 'running')) {
      void showWarning(`SimSiam: ${name} is training; stop it before deleting it.`);
      return false;
    }
    if (!confirmed) {
      const answer = await showWarning(
        `Delete the experiment "${name}"?`,
        { modal: true, detail: `This removes ${run.runDir} with its checkpoints, metrics and index. The images are not touched.` },
        'Delete');
      if (answer !== 'Delete') return false;
    }
    // The answer may come long after the listing: the run is deleted holding both of its locks, so a
    // process that trains or indexes it now (another window, the CLI) stops the deletion, named.
    if (trainingHere()) {
      void showWarning(`SimSiam: ${name} started training in this window; stop it before deleting it.`);
      return false;
    }
    try {
      withEveryRunLock(run.runDir, 'deleting the run', () => {
        this.panels.close(run.runDir);
        fs.rmSync(run.runDir, { recursive: true, force: true });
      });
    } catch (error) {
      void showWarning(error instanceof RunLockedError
        ? `SimSiam: ${name} was not deleted. ${error.message}`
        : `SimSiam: could not delete all of ${run.runDir}: ${(error as Error).message}`);
      return false;
    } finally {
      this.catalog.notify(run.runDir);
    }
    return true;
  }

  async revealRun(target?: RunTarget): Promise<void> {
    const run = await this.resolveEntry(target, 'Experiment to reveal');
    if (!run) return;
    const uri = vscode.Uri.file(run.runDir);
    if (vscode.workspace.getWorkspaceFolder(uri)) {
      await vscode.commands.executeCommand('revealInExplorer', uri);
    } else if (!vscode.env.remoteName) {
      await vscode.commands.executeCommand('revealFileInOS', uri);
    } else {
      const copy = 'Copy Path';
      if (await showInformation(`SimSiam: the run folder is ${run.runDir}`, copy) === copy) {
        await vscode.env.clipboard.writeText(run.runDir);
      }
    }
  }

  // ---- Find Similar Images -------------------------------------------------------------------

  async findSimilar(imageUri?: vscode.Uri, runDir?: string): Promise<{ runDir: string; neighbours: Neighbour[] } | undefined> {
    if (!this.requireTrust('Indexing')) return undefined;
    const image = imageUri?.fsPath ?? (await this.pickImage());
    if (!image) return undefined;
    const covering = this.catalog.list().filter((r) => isPathInside(r.record.dataset.root, image) &&
      !isPathInside(path.dirname(r.runDir), image));
    let run: RunSummary | undefined;
    if (runDir) run = covering.find((r) => path.resolve(r.runDir) === path.resolve(runDir));
    else {
      const usable = covering.filter((r) => r.hasCheckpoint);
      if (usable.length === 0) {
        await this.offerTraining(image, covering.length > 0);
        return undefined;
      }
      run = usable.length === 1 ? usable[0] : (await vscode.window.showQuickPick(usable.map((r, i) => ({
        label: r.record.name,
        description: `${i === 0 ? 'latest · ' : ''}${r.status.status} · ${epochsText(r)}`,
        detail: r.runDir, run: r,
      })), { title: 'SimSiam: Find Similar Images', placeHolder: 'Several runs cover this image: which model?' }))?.run;
    }
    if (!run) return undefined;
    const panel = this.panels.open(run.runDir);
    try {
      const result = await vscode.window.withProgress({
        location: vscode.ProgressLocation.Notification, title: `SimSiam: similar to ${path.basename(image)}`,
      }, (progress) => panel.showSimilar(image, (text) => progress.report({ message: text })));
      return { runDir: run.runDir, neighbours: result.neighbours };
    } catch (error) {
      void showError(`SimSiam: ${(error as Error).message}`);
      return undefined;
    }
  }

  private async offerTraining(image: string, onlyWithoutCheckpoint: boolean): Promise<void> {
    const folder = path.dirname(image);
    const train = 'Train a Folder…';
    const text = onlyWithoutCheckpoint
      ? `SimSiam: the runs covering ${path.basename(image)} have no checkpoint yet. Wait for their first epoch, or train another.`
      : `SimSiam: no trained model covers ${path.basename(folder)}. Train one on its folder first.`;
    if (await showInformation(text, train) !== train) return;
    const workspaceFolder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(image));
    const chosen = await vscode.window.showOpenDialog({
      canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Train on This Folder',
      defaultUri: vscode.Uri.file(workspaceFolder?.uri.fsPath ?? folder),
    });
    if (chosen?.[0]) await this.trainFolder(chosen[0]);
  }

  private async pickImage(): Promise<string | undefined> {
    const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    const active = input instanceof vscode.TabInputCustom || input instanceof vscode.TabInputText ? input.uri : undefined;
    if (active?.scheme === 'file' && isImageFileName(active.fsPath)) return active.fsPath;
    const picked = await vscode.window.showOpenDialog({
      canSelectMany: false, openLabel: 'Find Similar', title: 'SimSiam: Find Similar Images',
      filters: { Images: [...IMAGE_EXTENSION_NAMES] },
      defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
    });
    return picked?.[0]?.fsPath;
  }

  // ---- shared --------------------------------------------------------------------------------

  /** Restricted Mode: the engine decodes arbitrary image files with native code, so it waits for trust. */
  private requireTrust(what: string, why = "It runs a native image decoder and a training process over this workspace's files"): boolean {
    if (vscode.workspace.isTrusted) return true;
    const manage = 'Manage Workspace Trust';
    void showWarning(
      `SimSiam: ${what} is disabled in Restricted Mode. ${why}; trust the workspace to enable it. Existing experiments can still be opened.`, manage)
      .then((answer) => answer === manage && vscode.commands.executeCommand('workbench.trust.manage'));
    return false;
  }

  /** The run a row or path names, damaged or not; else a picked whole run. */
  private async resolveEntry(target: RunTarget, placeHolder: string): Promise<RunEntry | undefined> {
    const named = runDirOf(target);
    if (!named) return this.resolveRun(target, placeHolder, () => true);
    const found = this.catalog.find(named);
    if (!found) void showWarning(`SimSiam: ${named} is not a run folder.`);
    return found;
  }

  private async resolveRun(target: RunTarget, placeHolder: string, offer: (run: RunSummary) => boolean): Promise<RunSummary | undefined> {
    const runs = this.catalog.list();
    const runDir = runDirOf(target);
    if (runDir) {
      const found = runs.find((r) => path.resolve(r.runDir) === path.resolve(runDir));
      if (!found) void showWarning(`SimSiam: ${runDir} is not a run folder.`);
      return found;
    }
    const offered = runs.filter(offer);
    if (offered.length === 0) {
      void showInformation(runs.length ? 'SimSiam: no experiment fits this action.' : 'SimSiam: no experiments yet. Train a folder first.');
      return undefined;
    }
    const picked = await vscode.window.showQuickPick(offered.map((r) => ({
      label: r.record.name,
      description: `${r.status.status} · ${epochsText(r)} · ${path.basename(r.record.dataset.root)}`,
      detail: r.runDir, run: r,
    })), { placeHolder });
    return picked?.run;
  }
}

/** A run's epochs in the words the panel, status bar and Experiments view use. */
function epochsText(run: RunSummary): string {
  return epochText(runProgress(null, { status: run.status, epochs: run.record.config.epochs, lastEpoch: run.lastEpoch }));
}

function runDirOf(target: RunTarget): string | undefined {
  if (target instanceof RunItem) return target.run.runDir;
  if (target instanceof vscode.Uri) return target.fsPath;
  return typeof target === 'string' ? target : undefined;
}
