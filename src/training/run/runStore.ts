// A run is a folder: <runsDir>/<timestamp>-<name>/ holding
//   run.json       resolved config, dataset, backend — written once at start
//   status.json    running | completed | stopped | failed (+ pid, step, message); rewritten atomically
//   metrics.jsonl  one JSON record per step and per epoch, appended and flushed each epoch
//   checkpoint.json → checkpoints/step-N/ (model.json + weights.bin, optimizer state)
// Nothing else is needed to list, chart, resume or query a run, by the CLI or by the extension.
import * as fs from 'fs';
import * as path from 'path';
import * as v from 'valibot';
import { DatasetSummarySchema, type RunStatus } from '../protocol';
import { MetricRecordSchema, type MetricRecord } from '../metrics';
import { describeIssue } from '../versioned';
import { storedConfig, type TrainConfig } from '../config';

export const RUN_FILE = 'run.json';
export const STATUS_FILE = 'status.json';
export const METRICS_FILE = 'metrics.jsonl';
/** Names the latest checkpoint folder (checkpoint.ts writes it); read here so tfjs-free readers share it. */
export const CHECKPOINT_POINTER = 'checkpoint.json';

const RunRecordSchema = v.object({
  id: v.string(),
  name: v.string(),
  createdAt: v.string(),
  config: v.unknown(),
  dataset: DatasetSummarySchema,
  backend: v.string(),
});
export type RunRecord = Omit<v.InferOutput<typeof RunRecordSchema>, 'config'> & { config: TrainConfig };

const CheckpointPointerSchema = v.object({
  /** Relative to the run folder. */
  dir: v.string(),
  step: v.pipe(v.number(), v.integer(), v.minValue(0)),
  epoch: v.pipe(v.number(), v.integer(), v.minValue(0)),
});
export type CheckpointPointer = v.InferOutput<typeof CheckpointPointerSchema>;

export interface StatusRecord {
  status: RunStatus;
  step: number;
  epoch: number;
  updatedAt: string;
  /** Process that owns a running run; lets readers tell "running" from "interrupted". */
  pid?: number;
  message?: string;
}


/** Default parent of run folders: hidden inside the dataset so scans and file pickers skip it. */
export function defaultRunsDir(datasetRoot: string): string {
  return path.join(datasetRoot, '.simsiam', 'runs');
}

/** Writes through a temporary file and a rename, so readers never see half a file. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const temporary = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(temporary, data);
    fs.renameSync(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    // A failed write(2) — a full disk, an I/O error — names no file: say which one, and that the old one stands.
    throw new Error(`Could not write ${file} (any previous version is left as it was): ${(error as Error).message}`, { cause: error });
  }
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

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The status as a reader should show it: a "running" run whose process is gone was interrupted. */
export function readStatus(runDir: string): StatusRecord {
  const record = readJson<StatusRecord>(path.join(runDir, STATUS_FILE));
  if (record.status === 'running' && (record.pid === undefined || !isProcessAlive(record.pid))) {
    return { ...record, status: 'interrupted' };
  }
  return record;
}

export function writeStatus(runDir: string, record: Omit<StatusRecord, 'updatedAt'>): void {
  writeJsonAtomic(path.join(runDir, STATUS_FILE), { ...record, updatedAt: new Date().toISOString() });
}

/** Parses `file` as JSON and checks it against `schema`; an error names the file and the field. */
function readChecked<S extends v.GenericSchema>(file: string, schema: S): v.InferOutput<S> {
  const result = v.safeParse(schema, readJson<unknown>(file));
  if (!result.success) throw new Error(`${file} is not a valid ${path.basename(file)}: ${describeIssue(result.issues)}.`);
  return result.output;
}

export function readRun(runDir: string): RunRecord {
  const file = path.join(runDir, RUN_FILE);
  const record = readChecked(file, RunRecordSchema);
  return { ...record, config: storedConfig(record.config, file) };
}

/** The latest checkpoint, or null before the first one. */
export function readCheckpointPointer(runDir: string): CheckpointPointer | null {
  const file = path.join(runDir, CHECKPOINT_POINTER);
  return fs.existsSync(file) ? readChecked(file, CheckpointPointerSchema) : null;
}

export function readMetrics(runDir: string): MetricRecord[] {
  const file = path.join(runDir, METRICS_FILE);
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').flatMap((line) => parseMetricLine(line) ?? []);
}

/** One line of metrics.jsonl as a record; null for a blank, torn (after a crash) or malformed line. */
export function parseMetricLine(line: string): MetricRecord | null {
  if (!line.trim()) return null;
  try {
    const parsed = v.safeParse(MetricRecordSchema, JSON.parse(line));
    return parsed.success ? parsed.output : null;
  } catch {
    return null;
  }
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
