/**
 * Retrieval benchmarks (issue 3 targets), printed, not asserted:
 *   1. exact search at N × d (default 50 000 × 512) on the active backend: warm query latency,
 *      index memory against 4 bytes × d × N;
 *   2. findSimilar end to end at the same size, warm: the freshness check (listing and stat'ing
 *      every dataset file) plus the search. The index is fabricated (random unit vectors for N
 *      one-pixel files) so that no N images have to be embedded first;
 *   3. embedding throughput, images/s, with the tiny preset at 32 px (decode + centre view +
 *      forward), and the cost of an incremental update that finds nothing to do;
 *   4. near-duplicate groups at a smaller N, extrapolated by N² to the full size.
 *
 *   npx tsc -p . && node out/bench/retrieval.js [--images 50000] [--dims 512] [--backend auto]
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { Command } from 'commander';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/training/tfjs/backend';
import { resolveConfig, type TrainConfig } from '../src/training/config';
import { buildSimSiam } from '../src/training/model/simsiam';
import { saveCheckpoint } from '../src/training/run/checkpoint';
import { createRunDir, readCheckpointPointer, writeJsonAtomic, writeStatus, RUN_FILE, type RunRecord } from '../src/training/run/runStore';
import { Rng } from '../src/training/data/rng';
import { VectorIndex } from '../src/training/retrieval/search';
import { assembleIndex, listDatasetFiles, planUpdate, writeIndex } from '../src/training/retrieval/embeddingIndex';
import { embedRun, findSimilar } from '../src/training/retrieval/service';

const QUERIES = 50;
const EMBED_IMAGES = 1000;
const DUPLICATE_IMAGES = 10_000;

function randomUnitVectors(rng: Rng, count: number, dims: number): Float32Array {
  const vectors = new Float32Array(count * dims);
  for (let i = 0; i < count; i++) {
    let norm = 0;
    for (let j = 0; j < dims; j++) {
      const v = Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
      vectors[i * dims + j] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    for (let j = 0; j < dims; j++) vectors[i * dims + j] /= norm;
  }
  return vectors;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function timeEach(times: number, run: (i: number) => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    await run(i);
    ms.push(performance.now() - start);
  }
  return ms;
}

const summary = (ms: number[]) => `median ${percentile(ms, 0.5).toFixed(1)} ms, p90 ${percentile(ms, 0.9).toFixed(1)} ms`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

async function benchSearch(count: number, dims: number): Promise<void> {
  const rng = new Rng(1);
  const vectors = randomUnitVectors(rng, count, dims);
  const bytesBefore = tf.memory().numBytes;
  const index = new VectorIndex(vectors, count, dims);
  const indexBytes = tf.memory().numBytes - bytesBefore;
  console.log(`index memory on the backend: ${mib(indexBytes)} (4 bytes × ${dims} × ${count} = ${mib(4 * dims * count)})`);

  const inIndex = await timeEach(QUERIES + 5, async (i) => {
    const query = index.vectors([(i * 7919) % count]);
    await index.nearest(query, 10, [new Set([(i * 7919) % count])]);
    query.dispose();
  });
  console.log(`exact top-10, query from the index:   ${summary(inIndex.slice(5))}`);
  const outside = randomUnitVectors(rng, QUERIES + 5, dims);
  const external = await timeEach(QUERIES + 5, async (i) => {
    const query = tf.tensor2d(outside.subarray(i * dims, (i + 1) * dims), [1, dims]);
    await index.nearest(query, 10);
    query.dispose();
  });
  console.log(`exact top-10, query vector from outside: ${summary(external.slice(5))}`);
  const batch = tf.tensor2d(outside.subarray(0, 16 * dims), [16, dims]);
  const batched = await timeEach(10, () => index.nearest(batch, 10));
  batch.dispose();
  console.log(`exact top-10, 16 queries in one product: ${summary(batched)} (${(percentile(batched, 0.5) / 16).toFixed(1)} ms per query)`);
  index.dispose();
}

async function writeRun(root: string, dataset: string, config: TrainConfig, seed: number): Promise<string> {
  const { dir, id } = createRunDir(path.join(root, 'runs'), `bench-${config.preset}`);
  const record: RunRecord = {
    id, name: id, createdAt: new Date().toISOString(), config,
    dataset: { root: dataset, trainImages: 0, testImages: 0, classes: [] }, backend: config.backend,
  };
  writeJsonAtomic(path.join(dir, RUN_FILE), record);
  writeStatus(dir, { status: 'completed', step: 1, epoch: 1 });
  const model = buildSimSiam({ ...config, seed });
  await saveCheckpoint(dir, model, {}, 1, 1);
  model.dispose();
  return dir;
}

async function pngOf(width: number, height: number, rng: Rng): Promise<Buffer> {
  const pixels = Buffer.from(Array.from({ length: width * height * 3 }, () => rng.int(256)));
  return sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

async function benchEndToEnd(root: string, count: number, dims: number, backend: TrainConfig['backend']): Promise<void> {
  const dataset = path.join(root, 'many');
  const perFolder = 1000;
  const image = await pngOf(1, 1, new Rng(3));
  for (let i = 0; i < count; i++) {
    const folder = path.join(dataset, `part${String(Math.floor(i / perFolder)).padStart(3, '0')}`);
    if (i % perFolder === 0) fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(path.join(folder, `${String(i).padStart(6, '0')}.png`), image);
  }
  // A full-width ResNet-18 gives 512-d features, so a query from outside is embedded for real.
  const config = resolveConfig('cifar', { backend, widthMultiplier: dims / 512 });
  const runDir = await writeRun(root, dataset, config, 0);
  const checkpoint = readCheckpointPointer(runDir)!;
  const listStart = performance.now();
  const listing = await listDatasetFiles(dataset, path.dirname(runDir), config);
  const listMs = performance.now() - listStart;
  const plan = planUpdate(null, listing, checkpoint, config.imageSize);
  const fabricated = {
    vectors: randomUnitVectors(new Rng(4), count, dims), dims, kept: listing.files.map((_, i) => i), failed: [],
  };
  const { manifest, vectors } = assembleIndex(plan, listing, null, null, fabricated, checkpoint, config.imageSize);
  writeIndex(runDir, manifest, vectors);
  const manifestBytes = fs.statSync(path.join(runDir, 'index', 'manifest.json')).size;

  const query = listing.files[123].path;
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const tensorBytesBefore = tf.memory().numBytes;
  const cold = await timeEach(1, () => findSimilar(runDir, query, 10, () => undefined));
  global.gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  console.log(`findSimilar at ${count} files, cold (reads the index): ${cold[0].toFixed(0)} ms; ` +
    `index on the backend ${mib(tf.memory().numBytes - tensorBytesBefore)}, JS heap +${mib(heapAfter - heapBefore)}` +
    `${global.gc ? '' : ' (run node --expose-gc for a settled heap figure)'}, manifest.json ${mib(manifestBytes)}`);
  const warm = await timeEach(20, () => findSimilar(runDir, query, 10, () => undefined));
  console.log(`findSimilar warm, in-dataset query: ${summary(warm)} (a listing + stat of the ${count} files, done instead ` +
    `when a folder watch fired or is over a minute old: ${listMs.toFixed(0)} ms)`);
  const outsideFile = path.join(root, 'outside.png');
  fs.writeFileSync(outsideFile, await pngOf(40, 30, new Rng(5)));
  await findSimilar(runDir, outsideFile, 10, () => undefined); // loads the model
  const outside = await timeEach(10, () => findSimilar(runDir, outsideFile, 10, () => undefined));
  console.log(`findSimilar warm, image from outside (embedded with ResNet-18 ×${config.widthMultiplier}, ${dims}-d): ${summary(outside)}`);
}

async function benchEmbedding(root: string, backend: TrainConfig['backend']): Promise<void> {
  const dataset = path.join(root, 'photos');
  const rng = new Rng(6);
  for (let i = 0; i < EMBED_IMAGES; i++) {
    const folder = path.join(dataset, `class${i % 10}`);
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(path.join(folder, `${i}.png`), await pngOf(48 + (i % 5) * 4, 40, rng));
  }
  const config = resolveConfig('tiny', { backend });
  const runDir = await writeRun(root, dataset, config, 0);
  const start = performance.now();
  const result = await embedRun(runDir, () => undefined);
  const seconds = (performance.now() - start) / 1000;
  console.log(`embedding, tiny preset at ${config.imageSize} px: ${result.reembedded} images in ${seconds.toFixed(1)} s = ` +
    `${(result.reembedded / seconds).toFixed(0)} images/s (PNG decode + centre view + forward + index write)`);
  const noop = await timeEach(3, () => embedRun(runDir, () => undefined));
  console.log(`incremental update with nothing to do (${EMBED_IMAGES} files): ${summary(noop)}`);
}

async function benchDuplicates(count: number, dims: number, fullCount: number): Promise<void> {
  const index = new VectorIndex(randomUnitVectors(new Rng(7), count, dims), count, dims);
  const start = performance.now();
  const groups = await index.duplicateGroups(0.95);
  const seconds = (performance.now() - start) / 1000;
  index.dispose();
  console.log(`near-duplicates at ${count} × ${dims}: ${seconds.toFixed(1)} s (${groups.length} groups); ` +
    `≈ ${((seconds * (fullCount / count) ** 2) / 60).toFixed(1)} min at ${fullCount} (N²)`);
}

async function main(): Promise<void> {
  const options = new Command('bench-retrieval')
    .option('--images <n>', 'indexed images for the search benchmarks', (v) => Number(v), 50_000)
    .option('--dims <n>', 'embedding dimensions', (v) => Number(v), 512)
    .option('--backend <name>', 'tfjs backend', 'auto')
    .parse(process.argv)
    .opts<{ images: number; dims: number; backend: TrainConfig['backend'] }>();
  const backend = await selectBackend(options.backend);
  console.log(`backend ${backend.detail}, ${os.cpus().length} cores`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-bench-retrieval-'));
  try {
    await benchSearch(options.images, options.dims);
    await benchEndToEnd(root, options.images, options.dims, options.backend);
    await benchEmbedding(root, options.backend);
    await benchDuplicates(Math.min(DUPLICATE_IMAGES, options.images), options.dims, options.images);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (error: Error) => {
  console.error(error);
  process.exit(1);
});
