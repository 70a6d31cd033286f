// One writer per run. A run folder has two writers, each behind its own lock file there:
//   training.lock  training and resuming (run.json, status.json, metrics.jsonl, checkpoints)
//   index.lock     the retrieval index and exports (index/, export files)
// so a run can be searched while it trains, but never trained, or indexed, by two processes at once.
//
// A lock file is created atomically (O_EXCL) and holds who took it: pid, host, since when, what
// for, and the process's start time. A lock whose process is gone is stale and is taken over
// (with a note); so is one whose pid now belongs to another process (pids are reused), told apart
// by its start time: on Linux /proc/<pid>/stat's start time (with the boot id, so a reboot counts),
// elsewhere on Unix `ps -o lstart=`. On Windows, which has neither, a live pid keeps its lock: a
// lock is never taken from a process that may still own it, and the error names the file to delete
// should that pid belong to another program. A lock taken on another host (a shared disk) cannot
// be checked from here and is left alone, with the same advice.
//
// Where start times can be read, every lock this code writes has one, so a lock without it was
// not written here (by hand, or by a tool): like a lock file that does not parse, it counts as held
// only while it is new. Its pid cannot be shown to be the process that took the lock, so nothing
// signals it either (isProvenHolder): a file in a run folder never picks a process to stop.
//
// Imports no tfjs: the extension reads the locks to tell "running" from "interrupted".
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { randomUUID } from 'crypto';
import * as v from 'valibot';

export type RunLockKind = 'training' | 'index';
export const RUN_LOCK_FILES: Record<RunLockKind, string> = { training: 'training.lock', index: 'index.lock' };

/**
 * A lock file that does not parse (its writer may be between creating and writing it), or that
 * lacks the start time this machine tells (it was not written by SimSiam here), holds only while it
 * is this new: nothing that cannot be checked keeps a run locked for good.
 */
const UNPROVEN_GRACE_MS = 10_000;

const LockHolderSchema = v.object({
  pid: v.pipe(v.number(), v.integer(), v.minValue(1)),
  host: v.string(),
  /** ISO time the lock was taken. */
  since: v.string(),
  /** What the holder is doing, for people: "training", "exporting embeddings to …". */
  activity: v.string(),
  /** The process's start time as its OS tells it; absent where it cannot. */
  started: v.optional(v.string()),
  /** Tells this acquisition from any other by the same process. */
  token: v.string(),
});
export type LockHolder = v.InferOutput<typeof LockHolderSchema>;

/** A lock file as found: free, held (holder null while it is being written), or stale with why. */
export type LockState =
  | { held: false; stale?: string }
  | { held: true; holder: LockHolder | null };

export class RunLockedError extends Error {
  constructor(readonly runDir: string, readonly file: string, readonly holder: LockHolder | null, kind: RunLockKind) {
    super(holder
      ? `Run ${runDir} is busy: ${describeHolder(holder)}. ` + (!isLocal(holder)
        ? `Its host cannot be checked from here: if no SimSiam process runs there any more, delete ${file} and try again.`
        : (kind === 'training'
          ? 'Wait for it to finish, or stop it first (Ctrl-C in its terminal, or SimSiam: Stop Training in VS Code).'
          : 'Try again once it has finished.') + (holder.started === undefined
          ? ` If process ${holder.pid} is not SimSiam (its number may have been reused), delete ${file} and try again.`
          : ''))
      : `Run ${runDir} is busy: another process is just taking its lock (${file}). Try again in a few seconds.`);
  }
}

export function describeHolder(holder: LockHolder): string {
  return `process ${holder.pid} on ${isLocal(holder) ? `this machine (${holder.host})` : `host ${holder.host}`} ` +
    `has been ${holder.activity} since ${holder.since}`;
}

export const isLocal = (holder: LockHolder) => holder.host === os.hostname();

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let bootId: string | undefined;

/**
 * When process `pid` started, as an opaque string that differs between two processes that had the
 * same pid; null where the OS does not say (then only the pid is checked).
 */
export function processStartTime(pid: number, platform: NodeJS.Platform = process.platform): string | null {
  try {
    if (platform === 'linux') {
      // Field 22 (starttime, clock ticks since boot); the name in field 2 may hold spaces and ")".
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ticks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
      bootId ??= fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      return ticks ? `${bootId}/${ticks}` : null;
    }
    if (platform === 'win32') return null;
    const started = execFileSync('ps', ['-o', 'lstart=', '-p', String(pid)], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, LC_ALL: 'C' },
    }).trim();
    return started || null;
  } catch {
    return null;
  }
}

/**
 * Whether `holder` is provably the live process that took its lock: on this machine, with the start
 * time it wrote matching its pid's now. The only holder another process may signal.
 */
export function isProvenHolder(holder: LockHolder): boolean {
  return isLocal(holder) && holder.started !== undefined && processStartTime(holder.pid) === holder.started;
}

/** Why `holder`, found in `file` last modified at `modified`, no longer holds its lock, or null while it may. */
function staleness(holder: LockHolder, file: string, modified: number): string | null {
  if (!isLocal(holder)) return null;
  if (!isProcessAlive(holder.pid)) return `process ${holder.pid} is no longer running`;
  const started = processStartTime(holder.pid);
  if (started === null) return null; // nothing here tells processes apart: the live pid keeps it
  if (holder.started === undefined) {
    return Date.now() - modified < UNPROVEN_GRACE_MS ? null
      : `its lock file ${file} does not say when process ${holder.pid} started, as SimSiam writes it`;
  }
  return started === holder.started ? null : `process ${holder.pid} is now another program`;
}

interface Found { state: LockState; raw: Buffer | null }

function parseHolder(raw: Buffer): LockHolder | null {
  try {
    const parsed = v.safeParse(LockHolderSchema, JSON.parse(raw.toString('utf8')));
    return parsed.success ? parsed.output : null;
  } catch {
    return null;
  }
}

function inspect(file: string): Found {
  let raw: Buffer;
  let modified: number;
  try {
    raw = fs.readFileSync(file);
    modified = fs.statSync(file).mtimeMs;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: { held: false }, raw: null };
    throw new Error(`Cannot read the lock file ${file}: ${(error as Error).message}`, { cause: error });
  }
  const holder = parseHolder(raw);
  if (!holder) {
    return Date.now() - modified < UNPROVEN_GRACE_MS
      ? { state: { held: true, holder: null }, raw }
      : { state: { held: false, stale: `its lock file ${file} was unreadable` }, raw };
  }
  const stale = staleness(holder, file, modified);
  const took = `it took the lock for ${holder.activity} at ${holder.since}`;
  return { state: stale ? { held: false, stale: `${stale} (${took})` } : { held: true, holder }, raw };
}

/** Whether a live process holds the run's lock of this kind, and which. */
export function runLockState(runDir: string, kind: RunLockKind): LockState {
  return inspect(path.join(runDir, RUN_LOCK_FILES[kind])).state;
}

/** Locks this process holds, released by the exit hook if an exit skips their finally blocks. */
const held = new Map<string, string>();
let exitHookInstalled = false;

function releaseFile(file: string, token: string): void {
  if (held.get(file) !== token) return;
  held.delete(file);
  try {
    const holder = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockHolder>;
    if (holder.token === token) fs.rmSync(file, { force: true });
  } catch {
    // gone already, or not ours any more: nothing to release
  }
}

/** Creates the lock file with `holder` in it; false when one exists. */
function tryCreate(file: string, holder: LockHolder): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new Error(`Cannot create the lock file ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    fs.writeSync(fd, JSON.stringify(holder, null, 2) + '\n');
  } catch (error) {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
    throw new Error(`Cannot write the lock file ${file}: ${(error as Error).message}`, { cause: error });
  }
  fs.closeSync(fd);
  return true;
}

/**
 * Removes the stale lock file if it still holds `raw`. It is first moved to a name of its own and
 * read there: what was moved is either the stale lock, removed, or a lock another process took in
 * the meantime, put back with a hard link, which (unlike a rename) never replaces a file. So a lock
 * file is never overwritten, and a fresh lock is never removed while the path is free to put it
 * back. Not guaranteed: when a third process creates a lock while the fresh one is moved aside
 * (three takeovers of one stale lock within microseconds), or the file system has no hard links,
 * the moved lock is dropped and its holder keeps running without its file.
 */
function removeIfUnchanged(file: string, raw: Buffer): void {
  const moved = `${file}.stale-${process.pid}-${randomUUID()}`;
  try {
    fs.renameSync(file, moved);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  let unchanged = false;
  try {
    unchanged = fs.readFileSync(moved).equals(raw);
  } finally {
    try {
      if (!unchanged) fs.linkSync(moved, file);
    } catch {
      // EEXIST: a lock created at `file` meanwhile stands (or no hard links here): the moved one is dropped
    }
    fs.rmSync(moved, { force: true });
  }
}

export interface RunLock {
  readonly file: string;
  readonly holder: LockHolder;
  /** Set when a stale lock was taken over: whose it was, for the log. */
  readonly note: string | undefined;
  /** Removes the lock file if it is still this one; safe to call more than once. */
  release(): void;
}

/**
 * Takes the run's lock of this kind for `activity`, taking over a stale one; throws
 * RunLockedError, naming the holder, while another live process holds it.
 */
export function acquireRunLock(runDir: string, kind: RunLockKind, activity: string): RunLock {
  const file = path.join(runDir, RUN_LOCK_FILES[kind]);
  const started = processStartTime(process.pid);
  const holder: LockHolder = {
    pid: process.pid, host: os.hostname(), since: new Date().toISOString(), activity,
    ...(started === null ? {} : { started }), token: randomUUID(),
  };
  let note: string | undefined;
  // Each round either creates the lock, finds it held, or clears a stale one; a few rounds cover
  // other processes clearing and taking it at the same moment.
  for (let round = 0; round < 5; round++) {
    if (tryCreate(file, holder)) {
      held.set(file, holder.token);
      if (!exitHookInstalled) {
        exitHookInstalled = true;
        process.on('exit', () => [...held].forEach(([lockFile, token]) => releaseFile(lockFile, token)));
      }
      return { file, holder, note, release: () => releaseFile(file, holder.token) };
    }
    const found = inspect(file);
    if (found.state.held) throw new RunLockedError(runDir, file, found.state.holder, kind);
    if (found.state.stale && found.raw) {
      removeIfUnchanged(file, found.raw);
      note = `Took over the lock of run ${runDir}: ${found.state.stale}.`;
    }
  }
  throw new RunLockedError(runDir, file, null, kind);
}

/**
 * Runs `work` holding every lock of the run, released however `work` ends: for what changes the
 * whole run (deleting it), which no process may train or index meanwhile. Throws RunLockedError,
 * naming the holder, while another process holds either lock.
 */
export function withEveryRunLock<T>(runDir: string, activity: string, work: () => T): T {
  const locks: RunLock[] = [];
  try {
    for (const kind of Object.keys(RUN_LOCK_FILES) as RunLockKind[]) locks.push(acquireRunLock(runDir, kind, activity));
    return work();
  } finally {
    locks.forEach((lock) => lock.release());
  }
}

/** Runs `work` holding the run's lock of this kind, released however `work` ends. */
export async function withRunLock<T>(runDir: string, kind: RunLockKind, activity: string, work: (lock: RunLock) => Promise<T>): Promise<T> {
  const lock = acquireRunLock(runDir, kind, activity);
  try {
    return await work(lock);
  } finally {
    lock.release();
  }
}
