import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/training/tfjs/backend';
import { Rng } from '../../src/training/data/rng';
import { topK, UnionFind, VectorIndex, type Match } from '../../src/training/retrieval/search';

function gaussian(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
}

function randomUnitVectors(rng: Rng, count: number, dims: number): Float32Array {
  const vectors = new Float32Array(count * dims);
  for (let i = 0; i < count; i++) {
    const row = Array.from({ length: dims }, () => gaussian(rng));
    const norm = Math.hypot(...row);
    row.forEach((v, j) => { vectors[i * dims + j] = v / norm; });
  }
  return vectors;
}

/** ±1/8 in 64 dimensions: unit length, and every dot product is exact in float32, so ties are real. */
function signVectors(rng: Rng, count: number): Float32Array {
  return Float32Array.from({ length: count * 64 }, () => (rng.next() < 0.5 ? -0.125 : 0.125));
}

/** Every score in float64, sorted by score then row: what top-k must return. */
function bruteForce(vectors: Float32Array, dims: number, query: Float32Array, k: number, excluded = -1): Match[] {
  const all: Match[] = [];
  for (let row = 0; row < vectors.length / dims; row++) {
    if (row === excluded) continue;
    let score = 0;
    for (let j = 0; j < dims; j++) score += vectors[row * dims + j] * query[j];
    all.push({ row, score });
  }
  return all.sort((a, b) => b.score - a.score || a.row - b.row).slice(0, k);
}

const rowOf = (vectors: Float32Array, dims: number, row: number) => vectors.slice(row * dims, (row + 1) * dims);

describe('retrieval search', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  describe('topK', () => {
    it('returns the best scores first, equal scores by lower row, without the excluded rows', () => {
      const scores = Float32Array.from([0.5, 0.9, 0.5, 0.1, 0.9, 0.5]);
      assert.deepStrictEqual(topK(scores, 4).map((m) => m.row), [1, 4, 0, 2]);
      assert.deepStrictEqual(topK(scores, 4, new Set([1, 0])).map((m) => m.row), [4, 2, 5, 3]);
      assert.deepStrictEqual(topK(scores, 10).map((m) => m.row), [1, 4, 0, 2, 5, 3]);
      assert.deepStrictEqual(topK(scores, 0), []);
    });

    it('agrees with a full sort on random scores with many ties', () => {
      const rng = new Rng(3);
      const scores = Float32Array.from({ length: 2000 }, () => rng.int(50) / 50);
      const sorted = Array.from(scores, (score, row) => ({ row, score })).sort((a, b) => b.score - a.score || a.row - b.row);
      for (const k of [1, 7, 100, 1999]) assert.deepStrictEqual(topK(scores, k), sorted.slice(0, k));
    });
  });

  describe('VectorIndex', () => {
    it('exact top-k equals the brute-force reference on random unit vectors', async () => {
      const rng = new Rng(11);
      const dims = 48;
      const count = 1500;
      const vectors = randomUnitVectors(rng, count, dims);
      const index = new VectorIndex(vectors, count, dims);
      const queries = randomUnitVectors(rng, 5, dims);
      const queryTensor = tf.tensor2d(queries, [5, dims]);
      try {
        for (const k of [1, 10, 200]) {
          const results = await index.nearest(queryTensor, k);
          results.forEach((matches, q) => {
            const expected = bruteForce(vectors, dims, rowOf(queries, dims, q), k);
            assert.deepStrictEqual(matches.map((m) => m.row), expected.map((m) => m.row), `query ${q}, k ${k}`);
            matches.forEach((m, i) => assert.ok(Math.abs(m.score - expected[i].score) < 1e-5));
          });
        }
      } finally {
        queryTensor.dispose();
        index.dispose();
      }
    });

    it('breaks exact ties by row, deterministically', async () => {
      const rng = new Rng(5);
      const count = 3000;
      const vectors = signVectors(rng, count);
      const index = new VectorIndex(vectors, count, 64);
      try {
        for (const queryRow of [0, 17, 2999]) {
          const query = index.vectors([queryRow]);
          const [matches] = await index.nearest(query, 50, [new Set([queryRow])]);
          const [again] = await index.nearest(query, 50, [new Set([queryRow])]);
          query.dispose();
          const expected = bruteForce(vectors, 64, rowOf(vectors, 64, queryRow), 50, queryRow);
          assert.deepStrictEqual(matches, expected);
          assert.deepStrictEqual(again, matches);
          const tied = matches.filter((m, i) => i > 0 && m.score === matches[i - 1].score).length;
          assert.ok(tied > 10, `the case must exercise ties (${tied})`);
          assert.ok(!matches.some((m) => m.row === queryRow), 'the query row is excluded');
        }
      } finally {
        index.dispose();
      }
    });

    it('hands back the stored vectors, row-major', async () => {
      const vectors = randomUnitVectors(new Rng(2), 7, 5);
      const index = new VectorIndex(vectors, 7, 5);
      const picked = index.vectors([3, 0]);
      assert.deepStrictEqual(Array.from(await picked.data()), [...rowOf(vectors, 5, 3), ...rowOf(vectors, 5, 0)]);
      assert.deepStrictEqual(await index.rows(), vectors);
      picked.dispose();
      index.dispose();
    });

    it('answers an empty index with no neighbours', async () => {
      const index = new VectorIndex(new Float32Array(0), 0, 4);
      const query = tf.tensor2d([[1, 0, 0, 0]]);
      assert.deepStrictEqual(await index.nearest(query, 3), [[]]);
      assert.deepStrictEqual(await index.duplicateGroups(0.9), []);
      query.dispose();
      index.dispose();
    });
  });

  describe('near-duplicate groups', () => {
    it('equal the connected components of the pairs above the threshold, largest first', async () => {
      const rng = new Rng(8);
      const dims = 32;
      const count = 400;
      const vectors = randomUnitVectors(rng, count, dims);
      // Plant chains of near-copies: row b is a slightly moved copy of row a.
      const planted: [number, number][] = [[10, 11], [11, 12], [12, 13], [50, 300], [299, 0], [7, 8]];
      for (const [a, b] of planted) {
        const moved = Array.from(rowOf(vectors, dims, a), (v) => v + 0.02 * gaussian(rng));
        const norm = Math.hypot(...moved);
        moved.forEach((v, j) => { vectors[b * dims + j] = v / norm; });
      }
      const threshold = 0.95;
      const reference = new UnionFind(count);
      for (let i = 0; i < count; i++) {
        for (let j = i + 1; j < count; j++) {
          let score = 0;
          for (let d = 0; d < dims; d++) score += vectors[i * dims + d] * vectors[j * dims + d];
          if (score > threshold) reference.union(i, j);
        }
      }
      const expected = reference.groups().sort((a, b) => b.length - a.length || a[0] - b[0]);
      assert.ok(expected.length >= 3 && expected[0].length >= 3, 'the planted chains form groups');

      const index = new VectorIndex(vectors, count, dims);
      const progress: number[] = [];
      const groups = await index.duplicateGroups(threshold, (done) => progress.push(done));
      assert.deepStrictEqual(groups.map((g) => g.rows), expected);
      assert.ok(progress.length >= 1);
      for (const group of groups) {
        let minimum = Infinity;
        for (const i of group.rows) {
          for (const j of group.rows) {
            if (i >= j) continue;
            let score = 0;
            for (let d = 0; d < dims; d++) score += vectors[i * dims + d] * vectors[j * dims + d];
            minimum = Math.min(minimum, score);
          }
        }
        assert.ok(Math.abs(group.minScore - minimum) < 1e-5, `minScore ${group.minScore} vs ${minimum}`);
      }
      index.dispose();
    });
  });
});
