// A run is a folder: <runsDir>/<timestamp>-<name>/ holding
//   run.json       name, note, resolved config, dataset, backend — written at start (and resume);
//                  renameRun and setRunNote rewrite its name and note, atomically, at any time
//   status.json    running | completed | stopped | failed (+ pid, step, message); rewritten atomically;
//                  "running" only counts while training.lock is held
//   metrics.jsonl  one JSON record per step and per epoch, appended and flushed each epoch
//   checkpoint.json → checkpoints/step-N/ (model.json + weights.bin, optimizer state)
//   training.lock, index.lock  held by the process training the run, and by the one indexing it (./runLock.ts)
// Nothing else is needed to list, chart, resume or query a run, by the CLI or by the extension.
import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';
import * as v from 'valibot';
import { DatasetSummarySchema, RunStatusSchema } from '../protocol';
import { MetricRecordSchema, type MetricRecord } from '../metrics';
import { count, describeIssue } from '../versioned';
import { runLockState, type LockHolder } from './runLock';
import { storedConfig, type TrainConfig } from '../config';

export const RUN_FILE = 'run.json';
export const STATUS_FILE = 'status.json';
export const METRICS_FILE = 'metrics.jsonl';
/** Names the latest checkpoint folder (checkpoint.ts writes it); read here so tfjs-free readers share it. */
export const CHECKPOINT_POINTER = 'checkpoint.json';

const RunRecordSchema = v.object({
  id: v.string(),
  /** What people call the run; the folder (id) never changes, so a rename moves nothing. */
  name: v.string(),
  createdAt: v.string(),
  config: v.unknown(),
  dataset: DatasetSummarySchema,
  backend: v.string(),
  /** Free text from the person who ran it (why, what to compare it with); absent when empty. */
  note: v.optional(v.string()),
});
export type RunRecord = Omit<v.InferOutput<typeof RunRecordSchema>, 'config'> & { config: TrainConfig };

export const CheckpointPointerSchema = v.object({
  /** Relative to the run folder. */
  dir: v.string(),
  step: v.pipe(v.number(), v.integer(), v.minValue(0)),
  epoch: v.pipe(v.number(), v.integer(), v.minValue(0)),
});
export type CheckpointPointer = v.InferOutput<typeof CheckpointPointerSchema>;

const StatusFileSchema = v.object({
  status: RunStatusSchema,
  step: count,
  epoch: count,
  updatedAt: v.string(),
  /** The process that wrote a running status; the run's lock, not this, says whether it still trains. */
  pid: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  message: v.optional(v.string()),
});
export type StatusRecord = v.InferOutput<typeof StatusFileSchema> & {
  /** Who trains the run, when it is running and the lock says (readStatus only). */
  holder?: LockHolder;
};

/** Default parent of run folders: hidden inside the dataset so scans and file pickers skip it. */
export function defaultRunsDir(datasetRoot: string): string {
  return path.join(datasetRoot, '.simsiam', 'runs');
}

const writeFailed = (file: string, error: unknown) =>
  // A failed write(2) — a full disk, an I/O error — names no file: say which one, and that the old one stands.
  new Error(`Could not write ${file} (any previous version is left as it was): ${(error as Error).message}`, { cause: error });

/**
 * Fills a new temporary file beside `file` through `fill` and returns its name, for moveIntoPlace.
 * It is created exclusively under an unguessable name, so it never writes through a link planted
 * there; on failure it is removed and the error names `file`.
 */
export function writeTemporary(file: string, fill: (append: (data: string | Uint8Array) => void) => void): string {
  const temporary = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let fd: number;
  try {
    fd = fs.openSync(temporary, 'wx');
  } catch (error) {
    throw writeFailed(file, error); // nothing was created, so nothing is removed
  }
  try {
    try {
      fill((data) => {
        const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
        for (let offset = 0; offset < bytes.byteLength;) offset += fs.writeSync(fd, bytes, offset, bytes.byteLength - offset);
      });
    } finally {
      fs.closeSync(fd);
    }
    return temporary;
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw writeFailed(file, error);
  }
}

/** Renames a temporary of writeTemporary over `file`; on failure it is removed and `file` left as it was. */
export function moveIntoPlace(temporary: string, file: string): void {
  try {
    fs.renameSync(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw writeFailed(file, error);
  }
}

/** Writes through a temporary file and a rename, so readers never see half a file. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  moveIntoPlace(writeTemporary(file, (append) => append(data)), file);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

export function readJson<T>(file: string): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (error) {
    throw new Error(`Cannot read ${file}: ${(error as Error).message}`);
  }
}

function timestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

const slug = (name: string) => name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'run';

export function createRunDir(runsDir: string, name: string, now = new Date()): { dir: string; id: string } {
  fs.mkdirSync(runsDir, { recursive: true });
  const base = `${timestamp(now)}-${slug(name)}`;
  for (let attempt = 0; ; attempt++) {
    const id = attempt ? `${base}-${attempt + 1}` : base;
    const dir = path.join(runsDir, id);
    try {
      fs.mkdirSync(dir); // fails if it exists: two runs started in the same second get distinct folders
      return { dir, id };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/** status.json as written, checked; an error names the file and what is wrong with it. */
export function readStoredStatus(runDir: string): StatusRecord {
  const file = path.join(runDir, STATUS_FILE);
  if (!fs.existsSync(file)) throw new Error(`${file} is missing.`);
  try {
    return readChecked(file, StatusFileSchema);
  } catch (error) {
    // Ends as a sentence: callers go on to say what they do about it.
    const text = (error as Error).message;
    throw new Error(text.endsWith('.') ? text : `${text}.`, { cause: error });
  }
}

/**
 * The status as a reader should show it. Whether a run trains is the run lock's to say, not
 * status.json's: a run is running while a live process holds its lock, whatever the file says;
 * without one, a "running" status.json (its trainer killed, its pid perhaps reused since) and a
 * missing or unreadable one read as interrupted, the latter with what is wrong and what to do.
 */
export function readStatus(runDir: string): StatusRecord {
  const lock = runLockState(runDir, 'training');
  let stored: StatusRecord | null = null;
  let problem = '';
  try {
    stored = readStoredStatus(runDir);
  } catch (error) {
    problem = (error as Error).message;
  }
  // When a status.json that is not there was written: never, so the folder's time stands in.
  const folderTime = () => fs.statSync(runDir).mtime.toISOString();
  // A holder that already wrote how its run ended is only letting go of the lock.
  const endedByHolder = lock.held && lock.holder !== null && stored !== null && stored.status !== 'running' &&
    Date.parse(stored.updatedAt) >= Date.parse(lock.holder.since);
  if (lock.held && !endedByHolder) {
    const base = stored ?? { step: 0, epoch: 0, updatedAt: folderTime() };
    return { ...base, status: 'running', pid: lock.holder?.pid, message: undefined, ...(lock.holder ? { holder: lock.holder } : {}) };
  }
  if (stored) return stored.status === 'running' ? { ...stored, status: 'interrupted', pid: undefined } : stored;
  let pointer: CheckpointPointer | null = null;
  try {
    pointer = readCheckpointPointer(runDir);
  } catch {
    // its own problem, reported by whoever loads the checkpoint
  }
  return {
    status: 'interrupted', step: pointer?.step ?? 0, epoch: pointer?.epoch ?? 0,
    updatedAt: folderTime(),
    message: `${problem} ` + (pointer
      ? `Resuming the run continues from its checkpoint at step ${pointer.step} and rewrites the file.`
      : 'The run has no checkpoint to resume from: train the folder again.'),
  };
}

export function writeStatus(runDir: string, record: Omit<StatusRecord, 'updatedAt'>): void {
  writeJsonAtomic(path.join(runDir, STATUS_FILE), { ...record, updatedAt: new Date().toISOString() });
}

/** Parses `file` as JSON and checks it against `schema`; an error names the file and the field. */
export function readChecked<S extends v.GenericSchema>(file: string, schema: S): v.InferOutput<S> {
  const result = v.safeParse(schema, readJson<unknown>(file));
  if (!result.success) throw new Error(`${file} is not a valid ${path.basename(file)}: ${describeIssue(result.issues)}.`);
  return result.output;
}

export function readRun(runDir: string): RunRecord {
  const file = path.join(runDir, RUN_FILE);
  const record = readChecked(file, RunRecordSchema);
  return { ...record, config: storedConfig(record.config, file) };
}

/** Longest name a run may be given: it is a tree row's label and a table cell. */
export const MAX_RUN_NAME_LENGTH = 120;
/** A note is a few paragraphs, not a document. */
export const MAX_RUN_NOTE_LENGTH = 10_000;

// Control characters would steer a terminal that prints the name (`simsiam runs`); a note may break lines.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;

/** What is wrong with `name` as a run's name, or undefined when it will do (it is trimmed first). */
export function runNameProblem(name: string): string | undefined {
  const trimmed = name.trim();
  if (!trimmed) return 'A run name cannot be empty.';
  if (trimmed.length > MAX_RUN_NAME_LENGTH) return `A run name has at most ${MAX_RUN_NAME_LENGTH} characters (this one has ${trimmed.length}).`;
  if (CONTROL.test(trimmed)) return 'A run name cannot hold control characters (line breaks, tabs, escapes).';
  return undefined;
}

/** What is wrong with `note` as a run's note, or undefined when it will do. */
export function runNoteProblem(note: string): string | undefined {
  if (note.length > MAX_RUN_NOTE_LENGTH) return `A note has at most ${MAX_RUN_NOTE_LENGTH} characters (this one has ${note.length}).`;
  if (CONTROL_BUT_LINES.test(note)) return 'A note cannot hold control characters other than line breaks and tabs.';
  return undefined;
}

/**
 * Rewrites run.json with `change` applied to it as stored. The file is checked first, as readRun
 * checks it: a damaged one is refused, named, and left exactly as it is (a rewrite would lose
 * what is left of it). Fields this version does not know are kept. The rename of a temporary file
 * means a reader sees the old file or the new one, never half of one.
 */
function updateRunFile(runDir: string, what: string, change: (stored: Record<string, unknown>) => void): RunRecord {
  const file = path.join(runDir, RUN_FILE);
  if (!fs.existsSync(file)) throw new Error(`Cannot ${what}: ${file} does not exist (is ${runDir} a run folder?).`);
  let stored: Record<string, unknown>;
  try {
    readRun(runDir);
    stored = readJson<Record<string, unknown>>(file);
  } catch (error) {
    throw new Error(`Cannot ${what}: ${(error as Error).message} The file was left as it is: repair or restore it first.`, { cause: error });
  }
  change(stored);
  writeJsonAtomic(file, stored);
  return readRun(runDir);
}

/** Gives the run a new name (trimmed), in its run.json; the folder keeps its name. */
export function renameRun(runDir: string, name: string): RunRecord {
  const problem = runNameProblem(name);
  if (problem) throw new Error(`Cannot rename ${runDir}: ${problem}`);
  return updateRunFile(runDir, `rename ${runDir}`, (stored) => {
    stored.name = name.trim();
  });
}

/** Sets the run's note; an empty (or blank) note removes it. */
export function setRunNote(runDir: string, note: string): RunRecord {
  const text = note.replace(/\r\n?/g, '\n'); // pasted from Windows
  const problem = runNoteProblem(text);
  if (problem) throw new Error(`Cannot set the note of ${runDir}: ${problem}`);
  return updateRunFile(runDir, `set the note of ${runDir}`, (stored) => {
    if (text.trim()) stored.note = text.replace(/\s+$/, '');
    else delete stored.note;
  });
}

/** The folder of a run's checkpoints, each `step-<8-digit step>` (run/checkpoint.ts writes and reads them). */
export const CHECKPOINTS_DIR = 'checkpoints';
const CHECKPOINT_NAME = /^step-(\d+)$/;

/** The checkpoint folders on disk, newest first (checked when loaded, not here). */
export function checkpointFoldersOnDisk(runDir: string): { name: string; step: number }[] {
  const checkpointsDir = path.join(runDir, CHECKPOINTS_DIR);
  if (!fs.existsSync(checkpointsDir)) return [];
  return fs.readdirSync(checkpointsDir).flatMap((name) => {
    const match = CHECKPOINT_NAME.exec(name);
    return match ? [{ name, step: Number(match[1]) }] : [];
  }).sort((a, b) => b.step - a.step);
}

/** Steps of the checkpoints on disk (a run keeps its last few), newest first. */
export function checkpointSteps(runDir: string): number[] {
  return checkpointFoldersOnDisk(runDir).map((folder) => folder.step);
}

/** The latest checkpoint, or null before the first one. */
export function readCheckpointPointer(runDir: string): CheckpointPointer | null {
  const file = path.join(runDir, CHECKPOINT_POINTER);
  return fs.existsSync(file) ? readChecked(file, CheckpointPointerSchema) : null;
}

/**
 * Every record of metrics.jsonl. A last line without its line feed is a write a crash cut short
 * and is left out; any other line that is not a metric record is an error naming the file and the
 * line, never silently dropped (a resume would otherwise rewrite the history without it).
 */
export function readMetrics(runDir: string): MetricRecord[] {
  const file = path.join(runDir, METRICS_FILE);
  if (!fs.existsSync(file)) return [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  return lines.flatMap((line, i) => {
    if (!line.trim()) return [];
    const checked = checkMetricLine(line);
    if ('record' in checked) return [checked.record];
    if (i === lines.length - 1) return [];
    throw new Error(`${file}, line ${i + 1}, is not a metric record (${checked.problem}): correct or delete that line. ` +
      'The run\'s checkpoints are not affected.');
  });
}

/** One line of metrics.jsonl as a record; null for a blank, torn (after a crash) or malformed line. */
export function parseMetricLine(line: string): MetricRecord | null {
  const checked = line.trim() ? checkMetricLine(line) : null;
  return checked && 'record' in checked ? checked.record : null;
}

function checkMetricLine(line: string): { record: MetricRecord } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return { problem: `not JSON: ${(error as Error).message}` };
  }
  const parsed = v.safeParse(MetricRecordSchema, value);
  return parsed.success ? { record: parsed.output } : { problem: describeIssue(parsed.issues) };
}

/** Run folders directly under runsDir, newest first. */
export function listRuns(runsDir: string): string[] {
  if (!fs.existsSync(runsDir)) return [];
  return fs.readdirSync(runsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && fs.existsSync(path.join(runsDir, entry.name, RUN_FILE)))
    .map((entry) => path.join(runsDir, entry.name))
    .sort()
    .reverse();
}

/**
 * Append-only metrics log. Records are buffered and appended once per epoch (and at stop), so the
 * file holds exactly the steps covered by a checkpoint or about to be; `rewindTo` drops records
 * past the checkpoint a resumed run continues from, so history has no duplicated steps.
 */
export class MetricsLog {
  private pending: MetricRecord[] = [];
  private readonly file: string;

  constructor(runDir: string) {
    this.file = path.join(runDir, METRICS_FILE);
  }

  add(record: MetricRecord): void {
    this.pending.push(record);
  }

  flush(): void {
    if (!this.pending.length) return;
    const lines = this.pending.map((r) => JSON.stringify(r)).join('\n') + '\n';
    const fd = fs.openSync(this.file, 'a');
    try {
      fs.writeSync(fd, lines);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    this.pending = [];
  }

  rewindTo(step: number): void {
    if (!fs.existsSync(this.file)) return;
    const kept = readMetrics(path.dirname(this.file)).filter((r) => r.step <= step);
    writeFileAtomic(this.file, kept.map((r) => JSON.stringify(r) + '\n').join(''));
  }
}
