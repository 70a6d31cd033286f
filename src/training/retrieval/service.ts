// Retrieval over a run's embeddings, for the CLI and the engine process alike: keep the index
// up to date (incrementally), find an image's neighbours, group near-duplicates, export. Each
// holds the run's index lock (../run/runLock.ts) throughout: any of them may rewrite the index, and
// the lock is what keeps two processes from rewriting it at once; training has a lock of its own,
// so a run can be searched while it trains.
// The engine process lives as long as the extension and answers query after query, so the last
// run's model and index stay in memory until its checkpoint or its index on disk changes.
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../tfjs/backend';
import { readCheckpointPointer, readRun, RUN_FILE, type CheckpointPointer, type RunRecord } from '../run/runStore';
import { withRunLock } from '../run/runLock';
import { isInsideFolder } from '../paths';
import { SkippedFiles } from '../data/skippedFiles';
import {
  message, type Emit, type EngineMessage, type EmbedRequest, type SimilarRequest, type SimilarToMeanRequest, type Neighbour,
} from '../protocol';
import {
  assembleIndex, listDatasetFiles, loadIndex, manifestStamp, planUpdate, readManifest, writeIndex,
  type DatasetListing, type EmbeddedFiles, type IndexManifest, type StoredIndex,
} from './embeddingIndex';
import { VectorIndex } from './search';
import { DatasetWatch } from './datasetWatch';
import { embedFiles, embedQuery, loadCheckpointModel, type CheckpointModel } from './embedder';
import { checkExportTarget, npyPathsFile, writeCsv, writeNpyWithPaths } from './exportFormats';

interface OpenIndex {
  stored: StoredIndex;
  search: VectorIndex;
  rowOf: Map<string, number>;
}

/** The run this process last worked on. One at a time: a model and a 50 000-image index are 100s of MB. */
interface OpenRun {
  runDir: string;
  model: CheckpointModel | null;
  index: OpenIndex | null;
  /** Armed before the listing `index` was brought up to date with. */
  watch: DatasetWatch | null;
}

let open: OpenRun | null = null;

/** Calls run one at a time: a refresh swaps out the model and index another call may be using. */
let queue: Promise<unknown> = Promise.resolve();
function exclusive<T>(work: () => Promise<T>): Promise<T> {
  const result = queue.then(work);
  queue = result.catch(() => undefined);
  return result;
}

function openRun(runDir: string): OpenRun {
  if (open?.runDir !== runDir) {
    open?.model?.model.dispose();
    open?.index?.search.dispose();
    open?.watch?.close();
    open = { runDir, model: null, index: null, watch: null };
  }
  return open;
}

function requireRunFolder(runDir: string): void {
  if (!fs.existsSync(path.join(runDir, RUN_FILE))) {
    throw new Error(`${runDir} is not a SimSiam run folder (it has no ${RUN_FILE}): pass a folder under .simsiam/runs/.`);
  }
}

/** `work`, one call at a time in this process and holding the run's index lock across processes. */
function withIndex<T>(runDir: string, activity: string, emit: Emit, work: () => Promise<T>): Promise<T> {
  return exclusive(() => {
    requireRunFolder(runDir);
    return withRunLock(runDir, 'index', activity, (lock) => {
      if (lock.note) emit(message({ type: 'warning', message: lock.note }));
      return work();
    });
  });
}

function requireCheckpoint(runDir: string): CheckpointPointer {
  const pointer = readCheckpointPointer(runDir);
  if (!pointer) {
    throw new Error(`Run ${runDir} has no checkpoint yet: a run writes its first one at the end of its first epoch.`);
  }
  return pointer;
}

const sameCheckpoint = (a: CheckpointPointer | null, b: CheckpointPointer) => a?.step === b.step && a.dir === b.dir;

async function modelFor(run: OpenRun, checkpoint: CheckpointPointer): Promise<CheckpointModel> {
  if (run.model && sameCheckpoint(run.model.checkpoint, checkpoint)) return run.model;
  run.model?.model.dispose();
  run.model = null;
  run.model = await loadCheckpointModel(run.runDir, checkpoint);
  return run.model;
}

function useIndex(run: OpenRun, stored: StoredIndex, vectors: Float32Array): OpenIndex {
  run.index?.search.dispose();
  run.index = null;
  const { manifest } = stored;
  run.index = {
    stored,
    search: new VectorIndex(vectors, manifest.files.relPath.length, manifest.dims),
    rowOf: new Map(manifest.files.relPath.map((relPath, row) => [relPath, row])),
  };
  return run.index;
}

const progress = (task: string, done: number, total: number) => message({ type: 'progress', task, done, total });

/**
 * The run's index, up to date with its dataset and latest checkpoint. The dataset is listed again
 * only when its folder watch cannot vouch that nothing changed since the last listing.
 */
async function refresh(run: OpenRun, record: RunRecord, checkpoint: CheckpointPointer, emit: Emit): Promise<{ index: OpenIndex; reembedded: number }> {
  const cachedStillOnDisk = run.index !== null && run.index.stored.stamp === manifestStamp(run.runDir);
  if (cachedStillOnDisk && sameCheckpoint(run.index!.stored.manifest.checkpoint, checkpoint) && (await run.watch?.quiet())) {
    return { index: run.index!, reembedded: 0 };
  }
  const runsDir = path.dirname(run.runDir);
  run.watch?.close();
  run.watch = null;
  const watch = new DatasetWatch(record.dataset.root, [runsDir]);
  try {
    const result = await update(run, record, checkpoint, await listDatasetFiles(record.dataset.root, runsDir, record.config), emit);
    run.watch = watch; // vouches for the index only once it matches the listing
    return result;
  } catch (error) {
    watch.close();
    throw error;
  }
}

/** Brings the run's index in line with `listing`: reuses what it can, embeds the rest, writes it. */
async function update(run: OpenRun, record: RunRecord, checkpoint: CheckpointPointer, listing: DatasetListing, emit: Emit): Promise<{ index: OpenIndex; reembedded: number }> {
  const imageSize = record.config.imageSize;
  const cachedStillOnDisk = run.index !== null && run.index.stored.stamp === manifestStamp(run.runDir);
  const warnDamaged = (text: string) => emit(message({ type: 'warning', message: text }));
  let stored = cachedStillOnDisk ? run.index!.stored : readManifest(run.runDir, warnDamaged);
  let plan = planUpdate(stored?.manifest ?? null, listing, checkpoint, imageSize);
  if (plan.upToDate && cachedStillOnDisk) return { index: run.index!, reembedded: 0 };

  let storedVectors: Float32Array | null = null;
  if (stored && (plan.upToDate || plan.storedRow.some((row) => row >= 0))) {
    const loaded = loadIndex(run.runDir, warnDamaged);
    if (loaded) {
      storedVectors = loaded.vectors;
    } else {
      stored = null; // vectors missing or truncated: rebuild from scratch
      plan = planUpdate(null, listing, checkpoint, imageSize);
    }
  }
  if (plan.upToDate && stored && storedVectors) return { index: useIndex(run, stored, storedVectors), reembedded: 0 };

  let embedded: EmbeddedFiles = { vectors: new Float32Array(0), dims: stored?.manifest.dims ?? 0, kept: [], failed: [] };
  if (plan.toEmbed.length) {
    const model = await modelFor(run, checkpoint);
    const total = plan.toEmbed.length;
    emit(progress('embed', 0, total));
    embedded = await embedFiles(model, plan.toEmbed, imageSize, (done) => emit(progress('embed', done, total)));
    const skipped = new SkippedFiles(emit);
    for (const { position, reason } of embedded.failed) skipped.report(plan.toEmbed[position].path, reason);
  }
  const { manifest, vectors } = assembleIndex(plan, listing, stored?.manifest ?? null, storedVectors, embedded, checkpoint, imageSize);
  const written = writeIndex(run.runDir, manifest, vectors);
  return { index: useIndex(run, written, vectors), reembedded: embedded.kept.length };
}

/** The run's up-to-date index, in memory. */
async function freshIndex(runDir: string, emit: Emit): Promise<{ run: OpenRun; record: RunRecord; index: OpenIndex; reembedded: number }> {
  const record = readRun(runDir);
  await selectBackend(record.config.backend);
  const run = openRun(runDir);
  for (let attempt = 0; ; attempt++) {
    const checkpoint = requireCheckpoint(runDir);
    try {
      return { run, record, ...(await refresh(run, record, checkpoint, emit)) };
    } catch (error) {
      // A run that is still training prunes old checkpoints: one that vanished while it was being
      // read is worth one more try with the new one.
      if (attempt > 0 || sameCheckpoint(readCheckpointPointer(runDir), checkpoint)) throw error;
    }
  }
}

const absolutePath = (manifest: IndexManifest, relPath: string) => path.join(manifest.datasetRoot, ...relPath.split('/'));
const labelOf = (manifest: IndexManifest, row: number) => {
  const label = manifest.files.label[row];
  return label === null ? null : manifest.classes[label] ?? null;
};

/** The index row of `file` when it is one of the indexed images (also through a symlinked root). */
function indexedRow(index: OpenIndex, file: string): number | undefined {
  const root = index.stored.manifest.datasetRoot;
  const lookUp = (base: string, target: string) =>
    isInsideFolder(base, target) ? index.rowOf.get(path.relative(base, target).split(path.sep).join('/')) : undefined;
  return lookUp(root, file) ?? lookUp(fs.realpathSync(root), fs.realpathSync(file));
}

function checkQueryFile(file: string): void {
  const stats = fs.statSync(file, { throwIfNoEntry: false });
  if (!stats) throw new Error(`Query image ${file} does not exist: check the path (it may have been moved or deleted).`);
  if (!stats.isFile()) throw new Error(`Query image ${file} is not a file.`);
}

/** What work done on a run's up-to-date index is given (see withFreshIndex). */
export interface FreshIndex {
  runDir: string;
  record: RunRecord;
  manifest: IndexManifest;
  /** Identifies the index's content: changes whenever any row or the checkpoint does. */
  contentId: string;
  search: VectorIndex;
}

/**
 * `work` on the run's index brought up to date with its latest checkpoint, holding the run's
 * index lock throughout (so no other process rewrites the index under it) and one call at a
 * time in this process. For the map and the data views, which read the whole index.
 */
export function withFreshIndex<T>(runDir: string, activity: string, emit: Emit, work: (index: FreshIndex) => Promise<T>): Promise<T> {
  const resolvedRun = path.resolve(runDir);
  return withIndex(resolvedRun, activity, emit, async () => {
    const { record, index } = await freshIndex(resolvedRun, emit);
    const { manifest } = index.stored;
    const contentId = manifest.vectorsSha256 ?? `${manifest.vectorsFile}:${index.stored.stamp}`;
    return work({ runDir: resolvedRun, record, manifest, contentId, search: index.search });
  });
}

/** Embeds every image of the run's dataset that is not indexed yet with the latest checkpoint. */
export async function embedRun(runDir: string, emit: (m: EngineMessage) => void): Promise<{ images: number; reembedded: number }> {
  const resolvedRun = path.resolve(runDir);
  return withIndex(resolvedRun, 'indexing its images', emit, async () => {
    const { index, reembedded } = await freshIndex(resolvedRun, emit);
    return { images: index.search.count, reembedded };
  });
}

/**
 * The k images most similar to `image` by cosine, best first (equal scores in path order). An
 * indexed image is left out of its own neighbours; any other file is embedded on the fly.
 */
export async function findSimilar(runDir: string, image: string, k: number, emit: (m: EngineMessage) => void): Promise<{ query: string; neighbours: Neighbour[] }> {
  if (!(Number.isInteger(k) && k > 0)) throw new Error(`k must be a positive whole number (got ${k}).`);
  const query = path.resolve(image);
  checkQueryFile(query);
  const resolvedRun = path.resolve(runDir);
  return withIndex(resolvedRun, 'finding similar images', emit, async () => {
    const { run, index } = await freshIndex(resolvedRun, emit);
    const { manifest } = index.stored;
    const row = indexedRow(index, query);
    let queryVector: tf.Tensor2D;
    if (row !== undefined) {
      queryVector = index.search.vectors([row]);
    } else {
      const model = await modelFor(run, manifest.checkpoint);
      queryVector = tf.tensor2d(await embedQuery(model, query, manifest.imageSize), [1, manifest.dims]);
    }
    let matches;
    try {
      [matches] = await index.search.nearest(queryVector, k, [new Set(row === undefined ? [] : [row])]);
    } finally {
      queryVector.dispose();
    }
    return {
      query,
      neighbours: matches.map((m) => ({ path: absolutePath(manifest, manifest.files.relPath[m.row]), score: m.score, label: labelOf(manifest, m.row) })),
    };
  });
}

/**
 * The k images most similar to the mean of several images' l2-normalised embeddings, re-normalised
 * (one image: its neighbours, as findSimilar), best first; the query images are left out. Indexed
 * images use their stored vectors, others are embedded on the fly.
 */
export async function findSimilarToMean(runDir: string, images: string[], k: number, emit: (m: EngineMessage) => void): Promise<{ query: string; neighbours: Neighbour[] }> {
  if (!(Number.isInteger(k) && k > 0)) throw new Error(`k must be a positive whole number (got ${k}).`);
  if (images.length === 0) throw new Error('A query of several images needs at least one image.');
  const queries = [...new Set(images.map((image) => path.resolve(image)))];
  queries.forEach(checkQueryFile);
  const resolvedRun = path.resolve(runDir);
  return withIndex(resolvedRun, 'finding similar images', emit, async () => {
    const { run, index } = await freshIndex(resolvedRun, emit);
    const { manifest } = index.stored;
    const rows = queries.map((query) => indexedRow(index, query));
    const mean = new Float32Array(manifest.dims);
    const add = (vectors: Float32Array) => vectors.forEach((x, i) => (mean[i % manifest.dims] += x));
    const stored = rows.filter((row): row is number => row !== undefined);
    if (stored.length) {
      const vectors = index.search.vectors(stored);
      try {
        add((await vectors.data()) as Float32Array);
      } finally {
        vectors.dispose();
      }
    }
    for (const [i, query] of queries.entries()) {
      if (rows[i] === undefined) add(await embedQuery(await modelFor(run, manifest.checkpoint), query, manifest.imageSize));
    }
    const norm = Math.sqrt(mean.reduce((sum, x) => sum + x * x, 0));
    if (!(norm > 0)) throw new Error('The selected images\' embeddings cancel out: choose other images.');
    const queryVector = tf.tensor2d(mean.map((x) => x / norm), [1, manifest.dims]);
    let matches;
    try {
      [matches] = await index.search.nearest(queryVector, k, [new Set(stored)]);
    } finally {
      queryVector.dispose();
    }
    const outside = new Set(queries);
    return {
      query: queries[0],
      neighbours: matches.map((m) => ({ path: absolutePath(manifest, manifest.files.relPath[m.row]), score: m.score, label: labelOf(manifest, m.row) }))
        .filter((n) => !outside.has(path.resolve(n.path))),
    };
  });
}

/** Groups of images linked by cosine above `threshold`, largest first, with their lowest pairwise similarity. */
export async function findDuplicates(runDir: string, threshold: number, emit: (m: EngineMessage) => void): Promise<{ paths: string[]; minScore: number }[]> {
  if (!(typeof threshold === 'number' && threshold >= -1 && threshold <= 1)) {
    throw new Error(`The duplicate threshold is a cosine similarity between -1 and 1 (got ${threshold}).`);
  }
  const resolvedRun = path.resolve(runDir);
  return withIndex(resolvedRun, 'finding near-duplicates', emit, async () => {
    const { index } = await freshIndex(resolvedRun, emit);
    const { manifest } = index.stored;
    const groups = await index.search.duplicateGroups(threshold, (done, total) => emit(progress('duplicates', done, total)));
    return groups.map((g) => ({ paths: g.rows.map((row) => absolutePath(manifest, manifest.files.relPath[row])), minScore: g.minScore }));
  });
}

/**
 * Writes the embeddings with paths relative to the dataset root: `npy` gives <out> (count × dims
 * float32) and <out without .npy>.paths.json (row i's image is element i); `csv` gives <out> with
 * columns path, label, f0 … Default <out>: embeddings.npy / embeddings.csv in the run folder. A
 * target that would replace one of the run's own files is refused before any work.
 */
export async function exportEmbeddings(runDir: string, format: 'npy' | 'csv', out: string | undefined, emit: (m: EngineMessage) => void): Promise<string[]> {
  if (format !== 'npy' && format !== 'csv') throw new Error(`Unknown export format "${format}": use npy or csv.`);
  const resolvedRun = path.resolve(runDir);
  const file = path.resolve(out ?? path.join(resolvedRun, `embeddings.${format}`));
  const files = format === 'csv' ? [file] : [file, npyPathsFile(file)];
  requireRunFolder(resolvedRun);
  for (const target of files) checkExportTarget(resolvedRun, target);
  return withIndex(resolvedRun, `exporting embeddings to ${file}`, emit, async () => {
    const { index } = await freshIndex(resolvedRun, emit);
    const { manifest } = index.stored;
    const vectors = await index.search.rows();
    const { relPath } = manifest.files;
    if (format === 'csv') writeCsv(file, relPath, relPath.map((_, row) => labelOf(manifest, row)), vectors, manifest.dims);
    else writeNpyWithPaths(file, files[1], vectors, manifest.dims, relPath);
    return files;
  });
}

/** Answers the engine process's embed and similar requests with their result messages. */
export async function handleRetrievalRequest(request: EmbedRequest | SimilarRequest | SimilarToMeanRequest, send: (m: EngineMessage) => void): Promise<void> {
  if (request.type === 'similarToMean') {
    send(message({ type: 'similarResult', ...(await findSimilarToMean(request.runDir, request.images, request.k, send)) }));
    return;
  }
  if (request.type === 'embed') {
    const result = await embedRun(request.runDir, send);
    send(message({ type: 'embedResult', runDir: path.resolve(request.runDir), ...result }));
    return;
  }
  const result = await findSimilar(request.runDir, request.image, request.k, send);
  send(message({ type: 'similarResult', ...result }));
}
