// What the listings (the Experiments view, pickers, the panel) know of one run folder, read from its
// files. Free of `vscode`, so it is tested as it is.
import * as fs from 'fs';
import * as path from 'path';
import {
  CHECKPOINT_POINTER, parseMetricLine, readRun, readStatus, METRICS_FILE, RUN_FILE, type RunRecord, type StatusRecord,
} from '../training/run/runStore';
import type { EpochRecord } from '../training/protocol';

export interface RunSummary {
  runDir: string;
  record: RunRecord;
  status: StatusRecord;
  lastEpoch: EpochRecord | null;
  hasCheckpoint: boolean;
}

/**
 * A run folder whose run.json (or lock file) cannot be read: listed with what is wrong, so that it
 * can be repaired or deleted, never silently missing. Nothing can be trained or opened from it.
 */
export interface DamagedRun {
  runDir: string;
  /** What is wrong, naming the file. */
  problem: string;
}

export type RunEntry = RunSummary | DamagedRun;

export const isDamaged = (entry: RunEntry): entry is DamagedRun => 'problem' in entry;

const TAIL_BYTES = 64 * 1024;
/** Every epoch record holds this: JSON.stringify writes `kind` first (metrics.ts's schemas). */
const EPOCH_MARK = '"kind":"epoch"';

/** The last epoch record, read from the end of metrics.jsonl (the file grows by a line per step). */
export function readLastEpochRecord(runDir: string): EpochRecord | null {
  const file = path.join(runDir, METRICS_FILE);
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    for (let window = TAIL_BYTES; ; window *= 4) {
      const length = Math.min(size, window);
      const buffer = Buffer.alloc(length);
      fs.readSync(fd, buffer, 0, length, size - length);
      const lines = buffer.toString('utf8').split('\n');
      if (length < size) lines.shift(); // the first line of a window may be cut
      for (let i = lines.length - 1; i >= 0; i--) {
        if (!lines[i].includes(EPOCH_MARK)) continue;
        const parsed = parseMetricLine(lines[i]); // null for a torn line: keep looking further back
        if (parsed?.kind === 'epoch') return parsed;
      }
      if (length === size) return null;
    }
  } catch {
    return null;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** The run in `runDir`, damaged if its files cannot be read; null when it has no run.json (yet, or any more). */
export function readRunEntry(runDir: string): RunEntry | null {
  let record: RunRecord;
  let status: StatusRecord;
  try {
    record = readRun(runDir);
    status = readStatus(runDir); // running only while its trainer holds the run lock
  } catch (error) {
    // run.json is written whole (write and rename): a folder without one is being created, or deleted.
    if (!fs.existsSync(path.join(runDir, RUN_FILE))) return null;
    return { runDir, problem: (error as Error).message };
  }
  return {
    runDir, record, status, lastEpoch: readLastEpochRecord(runDir),
    hasCheckpoint: fs.existsSync(path.join(runDir, CHECKPOINT_POINTER)),
  };
}

/** The run in `runDir`, or null when it cannot be read (see readRunEntry for why). */
export function readRunSummary(runDir: string): RunSummary | null {
  const entry = readRunEntry(runDir);
  return entry && !isDamaged(entry) ? entry : null;
}
