// UMAP (McInnes, Healy & Melville 2018) of a run's embeddings, following umap-learn's algorithm:
// a fuzzy k-nearest-neighbour graph (smooth_knn_dist, fuzzy union), an initial layout, then
// stochastic gradient descent with negative sampling. The neighbours come from the engine's exact
// cosine search (../retrieval/search.ts neighbourTable). umap-js is used only for its fit of the
// curve parameters a and b: its own fit keeps the graph in string-keyed maps and nested arrays,
// which measured ≈ 10× slower here (10 000 × 15 neighbours: ≈ 17 s to build the graph and ≈ 29 s
// for 200 epochs, against ≈ 3 s for both in typed arrays). Deterministic for a seed.
import { findABParams } from 'umap-js/dist/umap';
import { Rng } from '../data/rng';
import type { NeighbourTable } from '../retrieval/search';

export interface UmapOptions {
  seed?: number;
  /** Neighbours used per point (at most the table's k). */
  neighbours?: number;
  minDist?: number;
  /** Optimisation epochs; default 200, umap-learn's for large sets (its 500 for small ones doubles the time for little gain from a PCA start). */
  epochs?: number;
  /** Row-major count × 2 starting layout (PCA's, say); default uniform random. */
  init?: Float32Array;
  onProgress?: (done: number, total: number) => void;
}

/** Fewer points than this have no neighbourhood structure worth a UMAP: they are laid out by PCA. */
export const UMAP_MIN_POINTS = 4;

const SMOOTH_K_TOLERANCE = 1e-5;
const MIN_K_DIST_SCALE = 1e-3;
const NEGATIVE_SAMPLE_RATE = 5;
const REPULSION_STRENGTH = 1;
const LEARNING_RATE = 1;
const CLIP = 4;

interface Graph {
  head: Int32Array;
  tail: Int32Array;
  weight: Float32Array;
}

/** Per point, rho (distance to the nearest neighbour) and sigma so that Σ exp(−(d − rho)/sigma) = log2(k + 1). */
function smoothKnnDistances(distances: Float32Array, count: number, k: number): { rho: Float32Array; sigma: Float32Array } {
  const rho = new Float32Array(count);
  const sigma = new Float32Array(count);
  const target = Math.log2(k + 1);
  let meanAll = 0;
  for (let i = 0; i < distances.length; i++) meanAll += distances[i];
  meanAll /= Math.max(1, distances.length);
  for (let i = 0; i < count; i++) {
    const row = distances.subarray(i * k, (i + 1) * k);
    let nearest = 0;
    for (let j = 0; j < k; j++) {
      if (row[j] > 0) {
        nearest = row[j];
        break;
      }
    }
    rho[i] = nearest;
    let lo = 0;
    let hi = Infinity;
    let mid = 1;
    for (let iteration = 0; iteration < 64; iteration++) {
      let sum = 0;
      for (let j = 0; j < k; j++) {
        const d = row[j] - nearest;
        sum += d > 0 ? Math.exp(-d / mid) : 1;
      }
      if (Math.abs(sum - target) < SMOOTH_K_TOLERANCE) break;
      if (sum > target) {
        hi = mid;
        mid = (lo + hi) / 2;
      } else {
        lo = mid;
        mid = hi === Infinity ? mid * 2 : (lo + hi) / 2;
      }
    }
    let meanRow = 0;
    for (let j = 0; j < k; j++) meanRow += row[j];
    meanRow /= k;
    sigma[i] = Math.max(mid, MIN_K_DIST_SCALE * (nearest > 0 ? meanRow : meanAll));
  }
  return { rho, sigma };
}

/** The fuzzy union of the directed membership graphs, both directions of each edge listed. */
function fuzzyGraph(table: NeighbourTable, k: number): Graph {
  const { count } = table;
  const distances = new Float32Array(count * k);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < k; j++) distances[i * k + j] = Math.max(0, 1 - table.scores[i * table.k + j]);
  }
  const { rho, sigma } = smoothKnnDistances(distances, count, k);
  const directed = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < k; j++) {
      const other = table.rows[i * table.k + j];
      if (other === i) continue;
      const d = distances[i * k + j] - rho[i];
      directed.set(i * count + other, d <= 0 ? 1 : Math.exp(-d / sigma[i]));
    }
  }
  const head: number[] = [];
  const tail: number[] = [];
  const weight: number[] = [];
  for (const [key, forward] of directed) {
    const i = Math.floor(key / count);
    const j = key - i * count;
    const backward = directed.get(j * count + i);
    if (backward !== undefined && j < i) continue; // the pair is listed once, from its lower end
    const w = forward + (backward ?? 0) - forward * (backward ?? 0);
    head.push(i, j);
    tail.push(j, i);
    weight.push(w, w);
  }
  return { head: Int32Array.from(head), tail: Int32Array.from(tail), weight: Float32Array.from(weight) };
}

/** Each coordinate scaled into [0, 10], as umap-learn scales its initial layout. */
function scaledLayout(init: Float32Array | undefined, count: number, rng: Rng): Float32Array {
  const layout = new Float32Array(count * 2);
  if (!init) {
    for (let i = 0; i < layout.length; i++) layout[i] = rng.uniform(0, 10);
    return layout;
  }
  if (init.length !== count * 2) throw new Error(`the initial layout has ${init.length} values for ${count} points of 2 coordinates`);
  for (let c = 0; c < 2; c++) {
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < count; i++) {
      min = Math.min(min, init[2 * i + c]);
      max = Math.max(max, init[2 * i + c]);
    }
    const span = max - min || 1;
    // A little noise separates points that start on top of each other (exact duplicates).
    for (let i = 0; i < count; i++) layout[2 * i + c] = (10 * (init[2 * i + c] - min)) / span + rng.uniform(-1e-4, 1e-4);
  }
  return layout;
}

const clip = (x: number) => (x > CLIP ? CLIP : x < -CLIP ? -CLIP : x);

/** Row-major count × 2 coordinates. */
export async function umapLayout(table: NeighbourTable, options: UmapOptions = {}): Promise<Float32Array> {
  const { count } = table;
  if (count < UMAP_MIN_POINTS) throw new Error(`UMAP needs at least ${UMAP_MIN_POINTS} images; this index has ${count}.`);
  const k = Math.max(1, Math.min(options.neighbours ?? 15, table.k));
  const epochs = options.epochs ?? 200;
  const rng = new Rng(options.seed ?? 0);
  const { a, b } = findABParams(1, options.minDist ?? 0.1);
  const graph = fuzzyGraph(table, k);

  let maxWeight = 0;
  for (const w of graph.weight) maxWeight = Math.max(maxWeight, w);
  const edges = graph.weight.length;
  const epochsPerSample = new Float64Array(edges).fill(-1);
  for (let e = 0; e < edges; e++) {
    // umap-learn drops edges too weak to be sampled even once in the whole run.
    if (graph.weight[e] >= maxWeight / epochs) epochsPerSample[e] = maxWeight / graph.weight[e];
  }
  const epochsPerNegative = epochsPerSample.map((x) => x / NEGATIVE_SAMPLE_RATE);
  const nextSample = Float64Array.from(epochsPerSample);
  const nextNegative = Float64Array.from(epochsPerNegative);

  const y = scaledLayout(options.init, count, rng);
  const every = Math.max(1, Math.floor(epochs / 50));
  for (let epoch = 0; epoch < epochs; epoch++) {
    const alpha = LEARNING_RATE * (1 - epoch / epochs);
    for (let e = 0; e < edges; e++) {
      if (epochsPerSample[e] < 0 || nextSample[e] > epoch) continue;
      const j = graph.head[e];
      const t = graph.tail[e];
      let dx = y[2 * j] - y[2 * t];
      let dy = y[2 * j + 1] - y[2 * t + 1];
      let d2 = dx * dx + dy * dy;
      if (d2 > 0) {
        const powered = Math.pow(d2, b);
        const coefficient = (-2 * a * b * (powered / d2)) / (a * powered + 1);
        const gx = clip(coefficient * dx) * alpha;
        const gy = clip(coefficient * dy) * alpha;
        y[2 * j] += gx;
        y[2 * j + 1] += gy;
        y[2 * t] -= gx;
        y[2 * t + 1] -= gy;
      }
      nextSample[e] += epochsPerSample[e];
      const negatives = Math.floor((epoch - nextNegative[e]) / epochsPerNegative[e]);
      for (let s = 0; s < negatives; s++) {
        const other = rng.int(count);
        if (other === j) continue;
        dx = y[2 * j] - y[2 * other];
        dy = y[2 * j + 1] - y[2 * other + 1];
        d2 = dx * dx + dy * dy;
        if (d2 > 0) {
          const coefficient = (2 * REPULSION_STRENGTH * b) / ((0.001 + d2) * (a * Math.pow(d2, b) + 1));
          y[2 * j] += clip(coefficient * dx) * alpha;
          y[2 * j + 1] += clip(coefficient * dy) * alpha;
        } else {
          y[2 * j] += CLIP * alpha;
          y[2 * j + 1] += CLIP * alpha;
        }
      }
      nextNegative[e] += negatives * epochsPerNegative[e];
    }
    if ((epoch + 1) % every === 0 || epoch + 1 === epochs) {
      options.onProgress?.(epoch + 1, epochs);
      // Lets the engine answer its IPC channel (a stop, a disconnect) between slices of the work.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return y;
}
