// Exact cosine search over l2-normalised embeddings on the active tfjs backend: top-k neighbours
// of a query and groups of near-duplicates. Cosine is a plain dot product because every stored
// vector has unit length.
import * as tf from '@tensorflow/tfjs';

export interface Match { row: number; score: number }

/** Each row's k nearest other rows by cosine, best first: row i's are at [i·k, (i+1)·k). */
export interface NeighbourTable {
  count: number;
  k: number;
  rows: Int32Array;
  scores: Float32Array;
}

export interface DuplicateRows {
  /** Rows of the group, ascending. */
  rows: number[];
  /** The lowest cosine between any two members: every pair is at least this similar. */
  minScore: number;
}

/**
 * A similarity matrix block is kept under this many entries (64 MiB of float32): enough rows per
 * matrix product to keep the backend busy, bounded memory whatever the index size.
 */
const MAX_BLOCK_ENTRIES = 16 * 1024 * 1024;

/** a ranks before b: higher score, then lower row, so equal scores always come out in row order. */
function ranksBefore(scoreA: number, rowA: number, scoreB: number, rowB: number): boolean {
  return scoreA > scoreB || (scoreA === scoreB && rowA < rowB);
}

/**
 * The k best rows of `scores` (highest first, ties by lower row), leaving out `excluded`.
 * A bounded min-heap keeps this O(n log k) with no copy of the scores.
 */
export function topK(scores: Float32Array, k: number, excluded: ReadonlySet<number> = new Set()): Match[] {
  const heapRows: number[] = [];
  const heapScores: number[] = [];
  // The heap's root is its worst member, the one a better candidate replaces.
  const worse = (i: number, j: number) => ranksBefore(heapScores[j], heapRows[j], heapScores[i], heapRows[i]);
  const swap = (i: number, j: number) => {
    [heapRows[i], heapRows[j]] = [heapRows[j], heapRows[i]];
    [heapScores[i], heapScores[j]] = [heapScores[j], heapScores[i]];
  };
  const siftDown = (start: number) => {
    for (let i = start; ;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let worst = i;
      if (left < heapRows.length && worse(left, worst)) worst = left;
      if (right < heapRows.length && worse(right, worst)) worst = right;
      if (worst === i) return;
      swap(i, worst);
      i = worst;
    }
  };
  for (let row = 0; row < scores.length; row++) {
    if (excluded.has(row)) continue;
    const score = scores[row];
    if (heapRows.length < k) {
      heapRows.push(row);
      heapScores.push(score);
      for (let i = heapRows.length - 1; i > 0;) {
        const parent = (i - 1) >> 1;
        if (!worse(i, parent)) break;
        swap(i, parent);
        i = parent;
      }
    } else if (k > 0 && ranksBefore(score, row, heapScores[0], heapRows[0])) {
      heapRows[0] = row;
      heapScores[0] = score;
      siftDown(0);
    }
  }
  return heapRows.map((row, i) => ({ row, score: heapScores[i] }))
    .sort((a, b) => (ranksBefore(a.score, a.row, b.score, b.row) ? -1 : 1));
}

/** Disjoint sets over 0..n-1 with path halving and union by size. */
export class UnionFind {
  private readonly parent: Int32Array;
  private readonly size: Int32Array;

  constructor(n: number) {
    this.parent = Int32Array.from({ length: n }, (_, i) => i);
    this.size = new Int32Array(n).fill(1);
  }

  find(x: number): number {
    while (this.parent[x] !== x) {
      this.parent[x] = this.parent[this.parent[x]];
      x = this.parent[x];
    }
    return x;
  }

  union(a: number, b: number): void {
    let rootA = this.find(a);
    let rootB = this.find(b);
    if (rootA === rootB) return;
    if (this.size[rootA] < this.size[rootB]) [rootA, rootB] = [rootB, rootA];
    this.parent[rootB] = rootA;
    this.size[rootA] += this.size[rootB];
  }

  /** Sets with more than one member, each as ascending rows. */
  groups(): number[][] {
    const byRoot = new Map<number, number[]>();
    for (let x = 0; x < this.parent.length; x++) {
      const root = this.find(x);
      if (this.size[root] < 2) continue;
      let members = byRoot.get(root);
      if (!members) byRoot.set(root, (members = []));
      members.push(x);
    }
    return [...byRoot.values()];
  }
}

/**
 * Unit vectors held on the backend as the columns of a [dims, count] matrix: a query is then a
 * [q, dims] × [dims, count] product, which the wasm backend runs memory-bound (≈ 9 ms for
 * 50 000 × 512), whereas the row-major layout with a transposed product copies the whole matrix
 * on every call (≈ 10× slower). Owns its tensor: call dispose().
 */
export class VectorIndex {
  private readonly columns: tf.Tensor2D;

  constructor(rowMajor: Float32Array, readonly count: number, readonly dims: number) {
    if (rowMajor.length !== count * dims) {
      throw new Error(`${rowMajor.length} values cannot be ${count} vectors of ${dims} dimensions`);
    }
    this.columns = tf.tidy(() => tf.transpose(tf.tensor2d(rowMajor, [count, dims])));
  }

  /** Stored vectors of `rows` as a [rows.length, dims] tensor (the caller disposes it). */
  vectors(rows: number[]): tf.Tensor2D {
    return tf.tidy(() => tf.transpose(tf.gather(this.columns, tf.tensor1d(rows, 'int32'), 1)));
  }

  /** All vectors, row-major, as a fresh array. */
  async rows(): Promise<Float32Array> {
    const rowMajor = tf.transpose(this.columns);
    try {
      return (await rowMajor.data()) as Float32Array;
    } finally {
      rowMajor.dispose();
    }
  }

  /**
   * The k nearest rows of each query (rows of a [q, dims] tensor of unit vectors), best first;
   * `excluded[i]` lists rows left out for query i (the query itself when it is in the index).
   */
  async nearest(queries: tf.Tensor2D, k: number, excluded: ReadonlySet<number>[] = []): Promise<Match[][]> {
    if (queries.shape[1] !== this.dims) {
      throw new Error(`query vectors have ${queries.shape[1]} dimensions, the index has ${this.dims}`);
    }
    if (this.count === 0) return queries.shape[0] ? Array.from({ length: queries.shape[0] }, () => []) : [];
    const similarity = tf.matMul(queries, this.columns);
    const scores = (await similarity.data()) as Float32Array;
    similarity.dispose();
    return Array.from({ length: queries.shape[0] }, (_, i) =>
      topK(scores.subarray(i * this.count, (i + 1) * this.count), k, excluded[i]));
  }

  /**
   * Connected groups of rows whose pairwise cosine exceeds `threshold` (single linkage: a ~ b and
   * b ~ c put a, b, c together), largest first, then by first row. The upper triangle of the
   * similarity matrix is computed block by block; only the mask crosses back from the backend.
   */
  async duplicateGroups(threshold: number, onProgress?: (done: number, total: number) => void): Promise<DuplicateRows[]> {
    const n = this.count;
    const sets = new UnionFind(n);
    const blockRows = Math.max(1, Math.min(n, Math.floor(MAX_BLOCK_ENTRIES / Math.max(1, n))));
    const blocks = Math.ceil(n / blockRows);
    for (let block = 0; block < blocks; block++) {
      const start = block * blockRows;
      const rows = Math.min(blockRows, n - start);
      const width = n - start;
      const above = tf.tidy(() => {
        const left = tf.transpose(tf.slice(this.columns, [0, start], [this.dims, rows]));
        const right = tf.slice(this.columns, [0, start], [this.dims, width]);
        return tf.greater(tf.matMul(left, right), threshold);
      });
      const mask = (await above.data()) as Uint8Array;
      above.dispose();
      for (let r = 0; r < rows; r++) {
        const offset = r * width;
        for (let c = r + 1; c < width; c++) {
          if (mask[offset + c]) sets.union(start + r, start + c);
        }
      }
      onProgress?.(block + 1, blocks);
    }
    const groups: DuplicateRows[] = [];
    for (const rows of sets.groups()) groups.push({ rows, minScore: await this.minimumSimilarity(rows) });
    return groups.sort((a, b) => b.rows.length - a.rows.length || a.rows[0] - b.rows[0]);
  }

  /** min over pairs i ≠ j of cos(i, j), computed in blocks so a huge group stays within memory. */
  private async minimumSimilarity(rows: number[]): Promise<number> {
    const blockRows = Math.max(1, Math.floor(MAX_BLOCK_ENTRIES / rows.length));
    const members = tf.tidy(() => tf.gather(this.columns, tf.tensor1d(rows, 'int32'), 1));
    let minimum = Infinity;
    try {
      for (let start = 0; start < rows.length; start += blockRows) {
        const count = Math.min(blockRows, rows.length - start);
        const blockMin = tf.tidy(() => {
          const similarity = tf.matMul(tf.transpose(tf.slice(members, [0, start], [this.dims, count])), members);
          // A vector's similarity to itself is 1 and says nothing about the pair minimum: mask the diagonal.
          const self = tf.oneHot(tf.range(start, start + count, 1, 'int32'), rows.length).cast('bool');
          return tf.min(tf.where(self, tf.fill(similarity.shape, Infinity), similarity));
        });
        minimum = Math.min(minimum, (await blockMin.data())[0]);
        blockMin.dispose();
      }
    } finally {
      members.dispose();
    }
    return minimum;
  }

  /**
   * Every row's k nearest other rows, best first, as flat arrays (row i's neighbours at
   * [i·k, (i+1)·k)). Blocks of rows are multiplied against the whole index and only their top
   * k + 1 (tf.topk on the backend) cross back, so memory stays bounded at any size.
   */
  async neighbourTable(k: number, onProgress?: (done: number, total: number) => void): Promise<NeighbourTable> {
    const n = this.count;
    const width = Math.max(0, Math.min(k, n - 1));
    const rows = new Int32Array(n * width);
    const scores = new Float32Array(n * width);
    const blockRows = Math.max(1, Math.min(n, 1024, Math.floor(MAX_BLOCK_ENTRIES / Math.max(1, n))));
    for (let start = 0; start < n && width > 0; start += blockRows) {
      const size = Math.min(blockRows, n - start);
      const { values, indices } = tf.tidy(() => {
        const block = tf.transpose(tf.slice(this.columns, [0, start], [this.dims, size]));
        return tf.topk(tf.matMul(block, this.columns), width + 1, true);
      });
      const [topScores, topRows] = await Promise.all([values.data(), indices.data()]);
      values.dispose();
      indices.dispose();
      for (let r = 0; r < size; r++) {
        const self = start + r;
        let written = 0;
        for (let j = 0; j <= width && written < width; j++) {
          const row = topRows[r * (width + 1) + j];
          if (row === self) continue; // an exact duplicate may rank above the row itself
          rows[self * width + written] = row;
          scores[self * width + written] = topScores[r * (width + 1) + j];
          written++;
        }
      }
      onProgress?.(Math.min(n, start + size), n);
    }
    return { count: n, k: width, rows, scores };
  }

  dispose(): void {
    this.columns.dispose();
  }
}
