// Finds the runs on disk and says when they change. A run folder is self-describing (run.json,
// status.json, metrics.jsonl: see src/training/run/runStore.ts), so whatever wrote it — this window,
// another window, the CLI on a remote box — it shows up the same way.
//
// Where runs are looked for: <dataset>/.simsiam/runs (the engine's default) anywhere in a bounded
// walk of each workspace folder, the configured runs folder, and every runs folder this workspace
// has trained into (remembered, for datasets outside the workspace).
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { CHECKPOINT_POINTER, listRuns, METRICS_FILE, RUN_FILE, STATUS_FILE } from '../training/run/runStore';
import { runLockState } from '../training/run/runLock';
import { configuredRunsFolder } from './settings';
import { isDamaged, readRunEntry, type DamagedRun, type RunEntry, type RunSummary } from './runEntry';

export { readRunSummary, type RunSummary } from './runEntry';

const RUNS_SUBPATH = path.join('.simsiam', 'runs');
const WALK_MAX_DEPTH = 4;
const WALK_MAX_DIRECTORIES = 5_000;
const SKIPPED_DIRECTORIES = new Set(['node_modules', '.git', '.hg', '.svn', 'out', 'dist', '.vscode-test']);
const REMEMBERED_KEY = 'simsiam.runsFolders';
/** File watchers can miss changes inside folder trees created in one go; running runs are also polled. */
const RUNNING_POLL_MS = 4_000;

/** Runs folders (<x>/.simsiam/runs) under `root`, breadth first, bounded in depth and breadth. */
function findRunsFolders(root: string): string[] {
  const found: string[] = [];
  let level = [root];
  let visited = 0;
  for (let depth = 0; depth <= WALK_MAX_DEPTH && level.length; depth++) {
    const next: string[] = [];
    for (const dir of level) {
      if (++visited > WALK_MAX_DIRECTORIES) return found;
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      if (entries.some((e) => e.isDirectory() && e.name === '.simsiam') && fs.existsSync(path.join(dir, RUNS_SUBPATH))) {
        found.push(path.join(dir, RUNS_SUBPATH));
      }
      for (const entry of entries) {
        if (entry.isDirectory() && !entry.name.startsWith('.') && !SKIPPED_DIRECTORIES.has(entry.name)) {
          next.push(path.join(dir, entry.name));
        }
      }
    }
    level = next;
  }
  return found;
}

/** A created path that is a runs folder, a run folder, or a folder holding runs (created in one go). */
function mayHoldNewRuns(created: string): boolean {
  if (/[\\/](node_modules|\.git)([\\/]|$)/.test(created)) return false;
  const name = path.basename(created);
  const parent = path.basename(path.dirname(created));
  if (name === '.simsiam' || (name === 'runs' && parent === '.simsiam')) return true;
  if (parent === 'runs' && path.basename(path.dirname(path.dirname(created))) === '.simsiam') return true;
  return fs.existsSync(path.join(created, RUNS_SUBPATH));
}

/**
 * What changes while a run trains, or when it stops: its status and metrics files' times, and
 * whether its trainer still holds the run lock (a killed trainer changes no file).
 */
function runningStamp(runDir: string): string {
  const times = [STATUS_FILE, METRICS_FILE].map((file) => fs.statSync(path.join(runDir, file), { throwIfNoEntry: false })?.mtimeMs ?? 0);
  return `${times.join(':')}:${runLockState(runDir, 'training').held}`;
}

export class RunCatalog implements vscode.Disposable {
  private readonly changes = new vscode.EventEmitter<string[]>();
  private readonly watchers = new Map<string, vscode.Disposable>();
  private readonly disposables: vscode.Disposable[] = [];
  private pending = new Set<string>();
  private walked: string[] | undefined;
  private readonly workspaceWatchers: vscode.FileSystemWatcher[] = [];
  private debounce: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  /** Running runs → their runningStamp when last listed. */
  private polled = new Map<string, string>();
  /** Damaged runs → their problem, as last logged. */
  private logged = new Map<string, string>();

  /** Run folders whose files changed (debounced); an empty list means "anything may have changed". */
  readonly onDidChange = this.changes.event;

  constructor(private readonly workspaceState: vscode.Memento, private readonly log: vscode.LogOutputChannel) {
    this.disposables.push(
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.rescan()),
      vscode.workspace.onDidChangeConfiguration((e) => e.affectsConfiguration('simsiam.runsFolder') && this.fire([])),
    );
  }

  /**
   * Watches the workspace for runs that appear anywhere in it (a dataset trained from the CLI, say).
   * The workbench reports a new folder tree as the creation of its top folder only, so every created
   * entry is checked for being, or holding, a runs folder: one existsSync per created file.
   */
  private watchWorkspace(): void {
    if (this.workspaceWatchers.length) return;
    const runFiles = vscode.workspace.createFileSystemWatcher(`**/.simsiam/runs/*/{${RUN_FILE},${STATUS_FILE}}`);
    const onRunFile = (uri: vscode.Uri) => {
      const runDir = path.dirname(uri.fsPath);
      if (this.walked && !this.walked.includes(path.dirname(runDir))) this.walked = undefined;
      this.fire([runDir]);
    };
    runFiles.onDidCreate(onRunFile);
    runFiles.onDidChange(onRunFile);
    runFiles.onDidDelete(onRunFile);
    const created = vscode.workspace.createFileSystemWatcher('**/*', false, true, true);
    created.onDidCreate((uri) => {
      if (mayHoldNewRuns(uri.fsPath)) {
        this.walked = undefined;
        this.fire([]);
      }
    });
    this.workspaceWatchers.push(runFiles, created);
  }

  /** Remembers a runs folder this workspace trained into, so its runs are listed from now on. */
  async remember(runsFolder: string): Promise<void> {
    const known = this.workspaceState.get<string[]>(REMEMBERED_KEY, []);
    if (!known.includes(runsFolder)) await this.workspaceState.update(REMEMBERED_KEY, [...known, runsFolder]);
    this.watch(runsFolder);
    this.fire([]);
  }

  /** Forgets the walk's result: the next list() looks through the workspace folders again. */
  rescan(): void {
    this.walked = undefined;
    this.fire([]);
  }

  runsFolders(): string[] {
    this.watchWorkspace();
    // The walk is the only costly part of listing, so it runs once until something invalidates it.
    this.walked ??= (vscode.workspace.workspaceFolders ?? [])
      .filter((workspaceFolder) => workspaceFolder.uri.scheme === 'file')
      .flatMap((workspaceFolder) => findRunsFolders(workspaceFolder.uri.fsPath));
    const folders = new Set<string>(this.walked);
    const configured = configuredRunsFolder();
    if (configured) folders.add(configured);
    for (const remembered of this.workspaceState.get<string[]>(REMEMBERED_KEY, [])) folders.add(remembered);
    return [...folders].filter((folder) => fs.existsSync(folder));
  }

  /** Every run folder found: the damaged ones first (by folder), then the runs, newest first. */
  entries(): RunEntry[] {
    const found = new Map<string, RunEntry>();
    for (const folder of this.runsFolders()) {
      this.watch(folder);
      for (const runDir of listRuns(folder)) {
        const entry = readRunEntry(runDir);
        if (entry) found.set(runDir, entry);
      }
    }
    const damaged = [...found.values()].filter(isDamaged).sort((a, b) => a.runDir.localeCompare(b.runDir));
    const runs = [...found.values()].filter((entry): entry is RunSummary => !isDamaged(entry))
      .sort((a, b) => b.record.createdAt.localeCompare(a.record.createdAt));
    this.logDamaged(damaged);
    this.pollRunning(runs.filter((run) => run.status.status === 'running').map((run) => run.runDir));
    return [...damaged, ...runs];
  }

  /** Every run that can be opened, trained or searched, newest first. */
  list(): RunSummary[] {
    return this.entries().filter((entry): entry is RunSummary => !isDamaged(entry));
  }

  /** The run, damaged or not, in `runDir`. */
  find(runDir: string): RunEntry | undefined {
    return this.entries().find((entry) => path.resolve(entry.runDir) === path.resolve(runDir));
  }

  /** Each damaged run once, and again only if what is wrong with it changes. */
  private logDamaged(damaged: DamagedRun[]): void {
    for (const run of damaged) {
      if (this.logged.get(run.runDir) !== run.problem) this.log.warn(`Run ${run.runDir} cannot be read, so it cannot be opened or resumed: ${run.problem}`);
    }
    this.logged = new Map(damaged.map((run) => [run.runDir, run.problem]));
  }

  private pollRunning(runDirs: string[]): void {
    // A change seen first by this listing (a run finished, say) is news to the other listeners.
    for (const [runDir, seen] of this.polled) if (runningStamp(runDir) !== seen) this.fire([runDir]);
    this.polled = new Map(runDirs.map((runDir) => [runDir, runningStamp(runDir)]));
    if (runDirs.length === 0) {
      clearInterval(this.pollTimer);
      this.pollTimer = undefined;
      return;
    }
    this.pollTimer ??= setInterval(() => {
      for (const [runDir, seen] of this.polled) {
        const now = runningStamp(runDir);
        if (now !== seen) {
          this.polled.set(runDir, now);
          this.fire([runDir]);
        }
      }
    }, RUNNING_POLL_MS);
  }

  /** Called when something outside the files (a live engine message) changed a run. */
  notify(runDir: string): void {
    this.fire([runDir]);
  }

  private watch(runsFolder: string): void {
    if (this.watchers.has(runsFolder)) return;
    const pattern = new vscode.RelativePattern(vscode.Uri.file(runsFolder), `*/{${RUN_FILE},${STATUS_FILE},${METRICS_FILE},${CHECKPOINT_POINTER}}`);
    const watcher = vscode.workspace.createFileSystemWatcher(pattern);
    const onFile = (uri: vscode.Uri) => this.fire([path.dirname(uri.fsPath)]);
    // A deleted run folder reports its files gone; a new runs folder appears as a new file below it.
    watcher.onDidChange(onFile);
    watcher.onDidCreate(onFile);
    watcher.onDidDelete(onFile);
    this.watchers.set(runsFolder, watcher);
  }

  private fire(runDirs: string[]): void {
    if (runDirs.length === 0) this.pending.add('');
    for (const runDir of runDirs) this.pending.add(runDir);
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      const changed = [...this.pending];
      this.pending = new Set();
      this.changes.fire(changed.includes('') ? [] : changed);
    }, 250);
  }

  dispose(): void {
    clearTimeout(this.debounce);
    clearInterval(this.pollTimer);
    this.workspaceWatchers.forEach((watcher) => watcher.dispose());
    for (const watcher of this.watchers.values()) watcher.dispose();
    this.disposables.forEach((d) => d.dispose());
    this.changes.dispose();
  }
}
