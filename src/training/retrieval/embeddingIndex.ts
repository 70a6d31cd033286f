// The embedding index of a run, on disk in <run>/index/:
//   vectors-<id>.f32  count × dims float32, row-major, native byte order (little-endian wherever
//                     tfjs runs); row i is the image files.relPath[i]
//   manifest.json     which checkpoint and input size the rows were computed with, and per file its
//                     path relative to the dataset root, size, mtime and label; files sorted by path;
//                     the vectors file's name and SHA-256
// Each write puts the vectors under a new name, then switches manifest.json to it with a rename,
// so a crash at any point leaves a matching pair: the old index or the new one. Only the holder of
// the run's index lock (../run/runLock.ts, taken by ./service.ts) reads or writes the index.
// The index is derived data: one that fails a check when read (a field, a row count, a
// non-finite value, its checksum) is reported and rebuilt from the checkpoint and the images.
// Updating is incremental: rows of unchanged files are kept, new and changed files are embedded,
// deleted ones dropped, and everything is embedded again when the checkpoint changes.
import * as fs from 'fs';
import * as path from 'path';
import * as v from 'valibot';
import { scanDataset } from '../data/dataset';
import { CheckpointPointerSchema, writeFileAtomic, type CheckpointPointer } from '../run/runStore';
import { digestOf, float32View } from '../run/fileChecks';
import { count, describeIssue, finite } from '../versioned';

export const INDEX_DIR = 'index';
const MANIFEST_FILE = 'manifest.json';
const FORMAT = 'simsiam-embedding-index';
const FORMAT_VERSION = 1;
/** As writeIndex names them: a plain name in the index folder. */
const VECTORS_PATTERN = /^vectors-[0-9a-z-]+\.f32$/;

/** An image of the dataset as it is on disk now. */
export interface DatasetFile {
  relPath: string;
  /** Absolute. */
  path: string;
  size: number;
  mtimeMs: number;
  /** Index into the scan's classes, or null. */
  label: number | null;
}

export interface DatasetListing {
  root: string;
  classes: string[];
  /** Sorted by relPath (code units), the row order of the index. */
  files: DatasetFile[];
}

const positive = v.pipe(v.number(), v.integer(), v.minValue(1));
const compareCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A '/'-separated path that stays inside the dataset root (on Windows, '\\' separates too). */
const insideDataset = (relPath: string) => !path.isAbsolute(relPath) &&
  relPath.split(path.sep === '\\' ? /[/\\]/ : '/').every((part) => part !== '' && part !== '.' && part !== '..');
const RelPathSchema = v.pipe(v.string(), v.check(insideDataset, 'is not a path inside the dataset'));

/** Columns of one field per file: 50 000 files cost a few MB of JSON, not tens. */
const fileColumns = { relPath: v.array(RelPathSchema), size: v.array(count), mtimeMs: v.array(finite) };

const sameLength = <T extends Record<string, unknown[]>>(columns: T) => new Set(Object.values(columns).map((c) => c.length)).size === 1;
const sorted = (paths: string[]) => paths.every((p, i) => i === 0 || compareCodeUnits(paths[i - 1], p) < 0);

const IndexManifestSchema = v.pipe(
  v.object({
    format: v.literal(FORMAT),
    version: v.literal(FORMAT_VERSION),
    /** The checkpoint every row was computed with. */
    checkpoint: CheckpointPointerSchema,
    imageSize: positive,
    dims: positive,
    datasetRoot: v.string(),
    classes: v.array(v.string()),
    files: v.pipe(v.object({ ...fileColumns, label: v.array(v.nullable(count)) }),
      v.check(sameLength, 'has columns of different lengths'),
      v.check((files) => sorted(files.relPath), 'is not sorted by path, one row per path'),
    ),
    /** Files that could not be decoded, as they were then: tried again only once they change. */
    skipped: v.pipe(v.object({ ...fileColumns, reason: v.array(v.string()) }), v.check(sameLength, 'has columns of different lengths')),
    vectorsFile: v.pipe(v.string(), v.regex(VECTORS_PATTERN, 'is not the name of a vectors file in the index folder')),
    /** Of the vectors file's bytes; absent in indexes written before checksums. */
    vectorsSha256: v.optional(v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'is not a SHA-256 digest'))),
  }),
  v.check((m) => m.files.label.every((label) => label === null || label < m.classes.length), 'has a label beyond its classes'),
);
export type IndexManifest = v.InferOutput<typeof IndexManifestSchema>;
type FileColumns = Pick<IndexManifest['files'], keyof typeof fileColumns>;
/** What an update computes; writeIndex adds the vectors file's name and checksum. */
export type IndexContent = Omit<IndexManifest, 'vectorsFile' | 'vectorsSha256'>;

export interface StoredIndex {
  manifest: IndexManifest;
  /** Identifies this manifest.json on disk; changes whenever any process rewrites the index. */
  stamp: string;
}

export interface UpdatePlan {
  /** True when the stored index already describes the dataset as it is. */
  upToDate: boolean;
  /** For each file of the listing: its row in the stored index, or -1 if it must be embedded. */
  storedRow: Int32Array;
  /** Files to embed (new, changed, or all of them after a checkpoint change). */
  toEmbed: DatasetFile[];
  /** Known-undecodable files, unchanged since they failed: left out without another try. */
  stillSkipped: { file: DatasetFile; reason: string }[];
}

function indexDir(runDir: string): string {
  return path.join(runDir, INDEX_DIR);
}

/**
 * Every image of the run's dataset (train and test split alike) with its size and mtime.
 * Synchronous stats on purpose: 50 000 statSync calls take ≈ 120 ms, the promise version ≈ 600 ms.
 */
export async function listDatasetFiles(root: string, runsDir: string, options: { testFraction: number; seed: number }): Promise<DatasetListing> {
  const scan = await scanDataset(root, { excludeDirs: [runsDir], ...options });
  const files: DatasetFile[] = [];
  for (const record of [...scan.train, ...scan.test]) {
    const stats = fs.statSync(record.path, { throwIfNoEntry: false });
    if (!stats) continue; // deleted between the listing and now
    files.push({ relPath: record.relPath, path: record.path, size: stats.size, mtimeMs: stats.mtimeMs, label: record.label });
  }
  files.sort((a, b) => compareCodeUnits(a.relPath, b.relPath));
  return { root: scan.root, classes: scan.classes, files };
}

function manifestFile(runDir: string): string {
  return path.join(indexDir(runDir), MANIFEST_FILE);
}

/** ino, size and mtime of manifest.json; '' when there is none. Cheap enough to check per query. */
export function manifestStamp(runDir: string): string {
  const stats = fs.statSync(manifestFile(runDir), { throwIfNoEntry: false });
  return stats ? `${stats.ino}:${stats.size}:${stats.mtimeMs}` : '';
}

/** Told why a stored index cannot be used; the caller then rebuilds it. */
export type OnDamagedIndex = (warning: string) => void;

function damaged(runDir: string, file: string, problem: string): string {
  return `The embedding index in ${indexDir(runDir)} is damaged: ${file} ${problem}. It is rebuilt from the checkpoint.`;
}

/** The stored manifest, or null when there is none or it fails a check (`onDamaged` hears why; the index is then rebuilt). */
export function readManifest(runDir: string, onDamaged?: OnDamagedIndex): StoredIndex | null {
  const stamp = manifestStamp(runDir);
  if (!stamp) return null;
  const file = manifestFile(runDir);
  let problem: string;
  try {
    const result = v.safeParse(IndexManifestSchema, JSON.parse(fs.readFileSync(file, 'utf8')));
    if (result.success) return { manifest: result.output, stamp };
    problem = `is not a valid index manifest: ${describeIssue(result.issues)}`;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null; // removed since the stat
    problem = error instanceof SyntaxError ? `is not JSON (${error.message})` : `cannot be read (${(error as Error).message})`;
  }
  onDamaged?.(damaged(runDir, file, problem));
  return null;
}

/** Row-major vectors of a stored index, or what is wrong with the file. */
function readVectors(runDir: string, manifest: IndexManifest): { vectors: Float32Array } | { file: string; problem: string } {
  const file = path.join(indexDir(runDir), manifest.vectorsFile);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    return { file, problem: (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing' : `cannot be read (${(error as Error).message})` };
  }
  const rows = manifest.files.relPath.length;
  const expected = rows * manifest.dims * 4;
  if (bytes.byteLength !== expected) {
    return { file, problem: `holds ${bytes.byteLength} bytes, where ${MANIFEST_FILE} describes ${rows} rows of ${manifest.dims} float32 (${expected} bytes)` };
  }
  const vectors = float32View(bytes);
  const bad = vectors.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) {
    const row = Math.floor(bad / manifest.dims);
    return { file, problem: `holds ${vectors[bad]} in row ${row} (${manifest.files.relPath[row]})` };
  }
  if (manifest.vectorsSha256 !== undefined && digestOf(bytes) !== manifest.vectorsSha256) {
    return { file, problem: 'does not match the checksum it was written with (damaged on disk)' };
  }
  return { vectors };
}

/**
 * A stored index with its vectors, or null when there is none or it fails a check (`onDamaged`
 * hears why; the index is then rebuilt).
 */
export function loadIndex(runDir: string, onDamaged?: OnDamagedIndex): { stored: StoredIndex; vectors: Float32Array } | null {
  const stored = readManifest(runDir, onDamaged);
  if (!stored) return null;
  const read = readVectors(runDir, stored.manifest);
  if ('vectors' in read) return { stored, vectors: read.vectors };
  onDamaged?.(damaged(runDir, read.file, read.problem));
  return null;
}

const sameStat = (file: DatasetFile, columns: FileColumns, row: number) =>
  columns.size[row] === file.size && columns.mtimeMs[row] === file.mtimeMs;

/** What must happen to bring `stored` up to date with `listing` under `checkpoint` and `imageSize`. */
export function planUpdate(stored: IndexManifest | null, listing: DatasetListing, checkpoint: CheckpointPointer, imageSize: number): UpdatePlan {
  const compatible = stored !== null && stored.checkpoint.step === checkpoint.step && stored.checkpoint.dir === checkpoint.dir &&
    stored.imageSize === imageSize && stored.datasetRoot === listing.root;
  const storedRow = new Int32Array(listing.files.length).fill(-1);
  const toEmbed: DatasetFile[] = [];
  const stillSkipped: UpdatePlan['stillSkipped'] = [];
  if (!compatible) {
    return { upToDate: false, storedRow, toEmbed: [...listing.files], stillSkipped };
  }
  const rowOf = new Map(stored.files.relPath.map((relPath, row) => [relPath, row]));
  const skippedRowOf = new Map(stored.skipped.relPath.map((relPath, row) => [relPath, row]));
  let labelsUnchanged = JSON.stringify(stored.classes) === JSON.stringify(listing.classes);
  listing.files.forEach((file, i) => {
    const row = rowOf.get(file.relPath);
    if (row !== undefined && sameStat(file, stored.files, row)) {
      storedRow[i] = row;
      labelsUnchanged &&= stored.files.label[row] === file.label;
      return;
    }
    const skippedRow = skippedRowOf.get(file.relPath);
    if (skippedRow !== undefined && sameStat(file, stored.skipped, skippedRow)) {
      stillSkipped.push({ file, reason: stored.skipped.reason[skippedRow] });
      return;
    }
    toEmbed.push(file);
  });
  const kept = storedRow.reduce((n, row) => n + (row >= 0 ? 1 : 0), 0);
  const upToDate = toEmbed.length === 0 && labelsUnchanged && kept === stored.files.relPath.length &&
    stillSkipped.length === stored.skipped.relPath.length;
  return { upToDate, storedRow, toEmbed, stillSkipped };
}

export interface EmbeddedFiles {
  /** Row-major, one row per embedded file (in `kept` order). */
  vectors: Float32Array;
  dims: number;
  /** Positions in the input list that were embedded. */
  kept: number[];
  /** Positions that could not be decoded, with why. */
  failed: { position: number; reason: string }[];
}

/**
 * Applies `plan`: the rows of the new index in listing order, taken from `storedVectors` or from
 * `embedded` (the result of embedding plan.toEmbed). Returns the manifest fields and vectors.
 */
export function assembleIndex(plan: UpdatePlan, listing: DatasetListing, stored: IndexManifest | null, storedVectors: Float32Array | null,
  embedded: EmbeddedFiles, checkpoint: CheckpointPointer, imageSize: number): { manifest: IndexContent; vectors: Float32Array } {
  const dims = embedded.dims;
  if (stored && storedVectors && plan.storedRow.some((row) => row >= 0) && stored.dims !== dims) {
    throw new Error(`the stored index has ${stored.dims} dimensions but the model now gives ${dims}`);
  }
  const embeddedRowOf = new Map(embedded.kept.map((position, row) => [plan.toEmbed[position].relPath, row]));
  const failedReasonOf = new Map(embedded.failed.map((f) => [plan.toEmbed[f.position].relPath, f.reason]));
  const stillSkippedReasonOf = new Map(plan.stillSkipped.map((s) => [s.file.relPath, s.reason]));

  const files: IndexManifest['files'] = { relPath: [], size: [], mtimeMs: [], label: [] };
  const skipped: IndexManifest['skipped'] = { relPath: [], size: [], mtimeMs: [], reason: [] };
  const sources: { from: Float32Array; row: number }[] = [];
  listing.files.forEach((file, i) => {
    const storedRow = plan.storedRow[i];
    const embeddedRow = embeddedRowOf.get(file.relPath);
    if (storedRow >= 0 || embeddedRow !== undefined) {
      files.relPath.push(file.relPath);
      files.size.push(file.size);
      files.mtimeMs.push(file.mtimeMs);
      files.label.push(file.label);
      sources.push(storedRow >= 0 ? { from: storedVectors!, row: storedRow } : { from: embedded.vectors, row: embeddedRow! });
      return;
    }
    const reason = failedReasonOf.get(file.relPath) ?? stillSkippedReasonOf.get(file.relPath);
    if (reason !== undefined) {
      skipped.relPath.push(file.relPath);
      skipped.size.push(file.size);
      skipped.mtimeMs.push(file.mtimeMs);
      skipped.reason.push(reason);
    }
  });
  const vectors = new Float32Array(sources.length * dims);
  sources.forEach(({ from, row }, i) => vectors.set(from.subarray(row * dims, (row + 1) * dims), i * dims));
  return {
    manifest: {
      format: FORMAT, version: FORMAT_VERSION, checkpoint: { ...checkpoint }, imageSize, dims,
      datasetRoot: listing.root, classes: listing.classes, files, skipped,
    },
    vectors,
  };
}

/** Writes vectors then manifest (see the module comment); returns the stored index. */
export function writeIndex(runDir: string, manifest: IndexContent, vectors: Float32Array): StoredIndex {
  const dir = indexDir(runDir);
  fs.mkdirSync(dir, { recursive: true });
  const vectorsFile = `vectors-${manifest.checkpoint.step}-${Date.now().toString(36)}-${process.pid}.f32`;
  const vectorsPath = path.join(dir, vectorsFile);
  const bytes = new Uint8Array(vectors.buffer, vectors.byteOffset, vectors.byteLength);
  writeFileAtomic(vectorsPath, bytes);
  const full: IndexManifest = { ...manifest, vectorsFile, vectorsSha256: digestOf(bytes) };
  writeFileAtomic(manifestFile(runDir), JSON.stringify(full));
  removeOtherVectors(dir, vectorsPath);
  return { manifest: full, stamp: manifestStamp(runDir) };
}

/** Deletes every vectors file but the one just written: the previous index's, and those of failed writes. */
function removeOtherVectors(dir: string, current: string): void {
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    if (VECTORS_PATTERN.test(name) && file !== current) fs.rmSync(file, { force: true });
  }
}
