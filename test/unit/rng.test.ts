import * as assert from 'assert';
import { deriveSeed, Rng } from '../../src/training/data/rng';

function draws(rng: Rng, count: number): number[] {
  return Array.from({ length: count }, () => rng.next());
}

function correlation(a: number[], b: number[]): number {
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const ma = mean(a);
  const mb = mean(b);
  let cov = 0;
  let va = 0;
  let vb = 0;
  for (let i = 0; i < a.length; i++) {
    cov += (a[i] - ma) * (b[i] - mb);
    va += (a[i] - ma) ** 2;
    vb += (b[i] - mb) ** 2;
  }
  return cov / Math.sqrt(va * vb);
}

describe('Rng', () => {
  it('repeats the same sequence for the same seed and differs for another seed', () => {
    assert.deepStrictEqual(draws(new Rng(42), 1000), draws(new Rng(42), 1000));
    const other = draws(new Rng(43), 1000);
    const same = draws(new Rng(42), 1000).filter((x, i) => x === other[i]).length;
    assert.ok(same < 5, `${same} identical draws`);
  });

  it('draws uniformly in [0, 1), in [lo, hi) and over [0, n)', () => {
    const rng = new Rng(7);
    const histogram = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const x = rng.next();
      assert.ok(x >= 0 && x < 1);
      const k = rng.int(10);
      assert.ok(Number.isInteger(k) && k >= 0 && k < 10);
      histogram[k] += 1;
      const u = rng.uniform(-3, 5);
      assert.ok(u >= -3 && u < 5);
    }
    for (const count of histogram) {
      assert.ok(Math.abs(count - 10_000) < 500, `bucket count ${count}`);
    }
  });

  it('shuffles in place into a permutation, reproducibly', () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const shuffled = new Rng(3).shuffle(items);
    assert.strictEqual(shuffled, items);
    assert.deepStrictEqual([...shuffled].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
    assert.notDeepStrictEqual(shuffled, Array.from({ length: 50 }, (_, i) => i));
    assert.deepStrictEqual(new Rng(3).shuffle(Array.from({ length: 50 }, (_, i) => i)), shuffled);
  });

  it('serialises its state and continues the same sequence from it', () => {
    const rng = new Rng(99);
    draws(rng, 17);
    const restored = Rng.fromState(rng.getState());
    assert.deepStrictEqual(draws(restored, 100), draws(rng, 100));
  });
});

describe('deriveSeed', () => {
  it('is a deterministic function of the seed and every key, in order', () => {
    assert.strictEqual(deriveSeed(5, 1, 2), deriveSeed(5, 1, 2));
    const seeds = new Set([deriveSeed(5), deriveSeed(5, 1), deriveSeed(5, 1, 2), deriveSeed(5, 2, 1), deriveSeed(6, 1, 2), deriveSeed(5, 1, 2, 0)]);
    assert.strictEqual(seeds.size, 6);
  });

  it('gives uncorrelated streams for neighbouring keys', () => {
    for (let batch = 0; batch < 20; batch++) {
      const a = draws(new Rng(deriveSeed(1, 0, batch)), 2000);
      const b = draws(new Rng(deriveSeed(1, 0, batch + 1)), 2000);
      const c = draws(new Rng(deriveSeed(1, 1, batch)), 2000);
      assert.ok(Math.abs(correlation(a, b)) < 0.1, `batch ${batch} vs ${batch + 1}: ${correlation(a, b)}`);
      assert.ok(Math.abs(correlation(a, c)) < 0.1, `epoch 0 vs 1, batch ${batch}: ${correlation(a, c)}`);
    }
  });

  it('never makes one stream a shifted copy of another', () => {
    const seen = new Set<number>();
    for (let epoch = 0; epoch < 4; epoch++) {
      for (let batch = 0; batch < 50; batch++) {
        for (const x of draws(new Rng(deriveSeed(11, epoch, batch)), 20)) {
          seen.add(x);
        }
      }
    }
    // 4000 draws of 32 bits: a repeat would mean overlapping streams, not chance (p ~ 2e-3).
    assert.ok(seen.size >= 3999, `${4000 - seen.size} repeated draws`);
  });

  it('keeps the upper bits of seeds beyond 32 bits', () => {
    assert.notStrictEqual(deriveSeed(2 ** 32 + 5), deriveSeed(5));
    assert.notStrictEqual(deriveSeed(1, 2 ** 33), deriveSeed(1, 0));
  });

  it('rejects seeds that are not finite numbers', () => {
    assert.throws(() => deriveSeed(NaN), /finite/);
    assert.throws(() => new Rng(Infinity), /finite/);
  });
});
