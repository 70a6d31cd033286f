import * as assert from 'assert';
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs';
import { pca, symmetricEigen } from '../../src/training/projection/pca';
import { umapLayout } from '../../src/training/projection/umap';
import { mapCacheFile } from '../../src/training/projection/mapCache';
import { embeddingMap } from '../../src/training/projection/mapService';
import { VectorIndex, type NeighbourTable } from '../../src/training/retrieval/search';
import { selectBackend } from '../../src/training/tfjs/backend';
import { Rng } from '../../src/training/data/rng';
import type { EngineMessage } from '../../src/training/protocol';
import { makeViewFolder, writeViewCheckpoint, type ViewFolder } from './dataViewFolder';

function gaussian(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
}

/** A 3-D rotation (about z by a, then about x by b): the known axes are its columns. */
function rotation(a: number, b: number): number[][] {
  const rz = [[Math.cos(a), -Math.sin(a), 0], [Math.sin(a), Math.cos(a), 0], [0, 0, 1]];
  const rx = [[1, 0, 0], [0, Math.cos(b), -Math.sin(b)], [0, Math.sin(b), Math.cos(b)]];
  return rx.map((row) => [0, 1, 2].map((j) => row.reduce((s, x, k) => s + x * rz[k][j], 0)));
}

const column = (m: number[][], j: number) => m.map((row) => row[j]);
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, x, i) => s + x * b[i], 0);

/** Brute-force neighbour table of unit vectors, for tests that must not depend on the tfjs search. */
function bruteTable(vectors: Float32Array, count: number, dims: number, k: number): NeighbourTable {
  const rows = new Int32Array(count * k);
  const scores = new Float32Array(count * k);
  for (let i = 0; i < count; i++) {
    const ranked = Array.from({ length: count }, (_, j) => j).filter((j) => j !== i)
      .map((j) => ({ j, s: dot(vectors.subarray(i * dims, (i + 1) * dims), vectors.subarray(j * dims, (j + 1) * dims)) }))
      .sort((a, b) => b.s - a.s || a.j - b.j).slice(0, k);
    ranked.forEach(({ j, s }, n) => {
      rows[i * k + n] = j;
      scores[i * k + n] = s;
    });
  }
  return { count, k, rows, scores };
}

/** Two tight clusters of unit vectors around opposite directions. */
function twoClusters(rng: Rng, perCluster: number, dims: number): Float32Array {
  const vectors = new Float32Array(2 * perCluster * dims);
  for (let i = 0; i < 2 * perCluster; i++) {
    const row = Array.from({ length: dims }, (_, j) => (j === 0 ? (i < perCluster ? 1 : -1) : 0) + 0.15 * gaussian(rng));
    const norm = Math.hypot(...row);
    row.forEach((x, j) => (vectors[i * dims + j] = x / norm));
  }
  return vectors;
}

describe('PCA', () => {
  it('finds the known axes, variances and coordinates of points spread along rotated axes', () => {
    const q = rotation(0.7, -0.4);
    const shift = [5, -2, 3];
    // Local coordinates: ±3 along the first axis, ±1 along the second, nothing along the third.
    const local = [[3, 0, 0], [-3, 0, 0], [0, 1, 0], [0, -1, 0]];
    const data = new Float32Array(local.flatMap((p) => [0, 1, 2].map((i) => shift[i] + dot(q[i], p))));
    const result = pca(data, 4, 3, { components: 2 });
    assert.deepStrictEqual(result.variances.map((x) => Number(x.toFixed(5))), [4.5, 0.5]);
    assert.ok(Math.abs(result.totalVariance - 5) < 1e-5, `total variance ${result.totalVariance}`);
    for (let c = 0; c < 2; c++) {
      const axis = result.axes.subarray(c * 3, (c + 1) * 3);
      assert.ok(Math.abs(Math.abs(dot(axis, column(q, c))) - 1) < 1e-5, `axis ${c} is the rotated axis ${c}`);
      const largest = Array.from(axis).reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a));
      assert.ok(largest > 0, 'the sign is fixed: the largest entry is positive');
    }
    const signs = [0, 1].map((c) => Math.sign(dot(result.axes.subarray(c * 3, (c + 1) * 3), column(q, c))));
    local.forEach((p, i) => {
      for (let c = 0; c < 2; c++) assert.ok(Math.abs(result.coordinates[i * 2 + c] - signs[c] * p[c]) < 1e-4, `point ${i} coordinate ${c}`);
    });
  });

  it('matches the eigen-decomposition of the full covariance on anisotropic data', () => {
    const rng = new Rng(3);
    const count = 400;
    const dims = 12;
    const scales = Array.from({ length: dims }, (_, j) => 4 / (j + 1));
    const data = new Float32Array(count * dims);
    for (let i = 0; i < count; i++) for (let j = 0; j < dims; j++) data[i * dims + j] = scales[j] * gaussian(rng) + (j % 3);
    const mean = Array.from({ length: dims }, (_, j) => Array.from({ length: count }, (_, i) => data[i * dims + j]).reduce((a, b) => a + b) / count);
    const covariance = new Float64Array(dims * dims);
    for (let i = 0; i < count; i++) {
      for (let a = 0; a < dims; a++) for (let b = 0; b < dims; b++) covariance[a * dims + b] += (data[i * dims + a] - mean[a]) * (data[i * dims + b] - mean[b]) / count;
    }
    const exact = symmetricEigen(covariance, dims);
    const result = pca(data, count, dims, { components: 2, tolerance: 1e-10, maxIterations: 200 });
    for (let c = 0; c < 2; c++) {
      assert.ok(Math.abs(result.variances[c] - exact.values[c]) < 1e-6 * exact.values[c], `variance ${c}: ${result.variances[c]} vs ${exact.values[c]}`);
      assert.ok(Math.abs(Math.abs(dot(result.axes.subarray(c * dims, (c + 1) * dims), exact.vectors.subarray(c * dims, (c + 1) * dims))) - 1) < 1e-6);
    }
  });

  it('refuses vectors that do not fill count × dims', () => {
    assert.throws(() => pca(new Float32Array(5), 2, 3), /5 values cannot be 2 vectors of 3 dimensions/);
  });
});

describe('UMAP', function () {
  this.timeout(60_000);

  it('is deterministic for a seed, differs for another, and keeps two clusters apart', async () => {
    const vectors = twoClusters(new Rng(1), 40, 8);
    const table = bruteTable(vectors, 80, 8, 10);
    const a = await umapLayout(table, { seed: 5, epochs: 100 });
    const b = await umapLayout(table, { seed: 5, epochs: 100 });
    const c = await umapLayout(table, { seed: 6, epochs: 100 });
    assert.deepStrictEqual(Array.from(a), Array.from(b));
    assert.notDeepStrictEqual(Array.from(a), Array.from(c));
    assert.ok(a.every(Number.isFinite));
    const centre = (from: number) => [0, 1].map((d) => Array.from({ length: 40 }, (_, i) => a[2 * (from + i) + d]).reduce((s, x) => s + x) / 40);
    const [left, right] = [centre(0), centre(40)];
    const gap = Math.hypot(left[0] - right[0], left[1] - right[1]);
    const spread = Array.from({ length: 40 }, (_, i) => Math.hypot(a[2 * i] - left[0], a[2 * i + 1] - left[1])).reduce((s, x) => s + x) / 40;
    assert.ok(gap > 3 * spread, `clusters ${gap.toFixed(2)} apart, ${spread.toFixed(2)} wide`);
    const progress: number[] = [];
    await umapLayout(table, { seed: 5, epochs: 100, onProgress: (done) => progress.push(done) });
    assert.strictEqual(progress.at(-1), 100);
  });

  it('takes the same neighbours from the tfjs search as brute force finds', async () => {
    await selectBackend('wasm');
    const vectors = twoClusters(new Rng(2), 30, 16);
    const tensorsBefore = tf.memory().numTensors;
    const index = new VectorIndex(vectors, 60, 16);
    try {
      const table = await index.neighbourTable(7);
      const brute = bruteTable(vectors, 60, 16, 7);
      assert.strictEqual(table.k, 7);
      for (let i = 0; i < 60 * 7; i++) assert.ok(Math.abs(table.scores[i] - brute.scores[i]) < 1e-5);
      for (let i = 0; i < 60; i++) assert.ok(!Array.from(table.rows.subarray(i * 7, (i + 1) * 7)).includes(i), 'a row is not its own neighbour');
    } finally {
      index.dispose();
    }
    assert.strictEqual(tf.memory().numTensors, tensorsBefore, 'no tensor is left behind');
  });

  it('refuses fewer than four points', async () => {
    await assert.rejects(umapLayout({ count: 3, k: 1, rows: new Int32Array(3), scores: new Float32Array(3) }), /at least 4 images/);
  });
});

describe('embedding map of a run', function () {
  this.timeout(180_000);
  let folder: ViewFolder;
  const warnings: string[] = [];
  const emit = (m: EngineMessage) => {
    if (m.type === 'warning') warnings.push(m.message);
  };

  before(async () => {
    folder = await makeViewFolder(5);
  });
  after(() => fs.rmSync(folder.root, { recursive: true, force: true }));

  it('lays out every indexed image with its class and split, and caches the UMAP', async () => {
    const first = await embeddingMap(folder.runDir, 'umap', emit);
    assert.strictEqual(first.cached, false);
    assert.strictEqual(first.paths.length, 13);
    assert.strictEqual(first.x.length, 13);
    assert.deepStrictEqual(first.classes, ['blue', 'red']);
    assert.deepStrictEqual(first.paths.map((_, i) => first.classes[first.labels[i]!]), first.paths.map((p) => p.split('/')[0]));
    assert.ok(first.splits.includes('train'));
    assert.ok(fs.existsSync(mapCacheFile(folder.runDir, 'umap')));
    const again = await embeddingMap(folder.runDir, 'umap', emit);
    assert.strictEqual(again.cached, true);
    assert.deepStrictEqual(again.x, first.x);
    assert.deepStrictEqual(again.y, first.y);
    const pcaMap = await embeddingMap(folder.runDir, 'pca', emit);
    assert.strictEqual(pcaMap.method, 'pca');
    assert.strictEqual(pcaMap.paths.length, 13);
  });

  it('computes the map again once a newer checkpoint is indexed', async () => {
    await embeddingMap(folder.runDir, 'umap', emit);
    await writeViewCheckpoint(folder.runDir, 20, 1);
    const newer = await embeddingMap(folder.runDir, 'umap', emit);
    assert.strictEqual(newer.cached, false);
    assert.strictEqual(newer.checkpointStep, 20);
    const stored = JSON.parse(fs.readFileSync(mapCacheFile(folder.runDir, 'umap'), 'utf8'));
    assert.strictEqual(stored.checkpoint.step, 20);
    assert.strictEqual((await embeddingMap(folder.runDir, 'umap', emit)).cached, true);
  });

  it('refuses a damaged cache file, says so, and replaces it', async () => {
    const file = mapCacheFile(folder.runDir, 'umap');
    for (const damage of ['{"format": "simsiam-embedding-map", trunc', (text: string) => {
      const cache = JSON.parse(text);
      cache.x.pop(); // one image without its x
      return JSON.stringify(cache);
    }] as const) {
      await embeddingMap(folder.runDir, 'umap', emit);
      const text = fs.readFileSync(file, 'utf8');
      fs.writeFileSync(file, typeof damage === 'string' ? damage : damage(text));
      warnings.length = 0;
      const map = await embeddingMap(folder.runDir, 'umap', emit);
      assert.strictEqual(map.cached, false);
      assert.ok(warnings.some((w) => w.includes(file) && /damaged/.test(w)), `warned: ${warnings.join(' | ')}`);
      assert.strictEqual((await embeddingMap(folder.runDir, 'umap', emit)).cached, true, 'the replaced file is used');
    }
  });
});
