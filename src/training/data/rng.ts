/**
 * Seedable, serialisable pseudo-random numbers for everything stochastic in the data pipeline.
 *
 * Reproducibility matters more than statistical perfection here: the same seed must give the same
 * shuffles and augmentations on every machine and in every thread, so the generator is plain
 * 32-bit integer arithmetic (mulberry32) whose whole state is one number.
 */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = toUint32(seed);
  }

  /** The generator's whole state; `Rng.fromState(rng.getState())` continues the same sequence. */
  getState(): number {
    return this.state;
  }

  static fromState(state: number): Rng {
    return new Rng(state);
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Fisher-Yates shuffle, in place; returns `items`. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const swap = items[i];
      items[i] = items[j];
      items[j] = swap;
    }
    return items;
  }
}

/**
 * A seed for an independent stream identified by (seed, ...keys), e.g. (seed, epoch, batch).
 *
 * Each key is folded in through a full-avalanche integer hash, so neighbouring keys (batch 7 and
 * batch 8) give unrelated streams, and the result does not depend on how many streams were drawn
 * before: a batch's augmentations are the same whichever thread or resumed run computes them.
 */
export function deriveSeed(seed: number, ...keys: number[]): number {
  let hash = mix32(toUint32(seed) ^ 0x9e3779b9);
  hash = mix32(hash ^ highBits(seed));
  for (const key of keys) {
    hash = mix32((hash ^ mix32(toUint32(key) + 0x632be5ab)) + 0x9e3779b9);
    hash = mix32(hash ^ highBits(key));
  }
  return hash;
}

/** murmur3's finaliser (constants from Chris Wellons' hash-prospector): every input bit flips about half the output bits. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Seeds such as Date.now() exceed 32 bits; keep their upper bits instead of silently dropping them. */
function highBits(value: number): number {
  return toUint32(Math.floor(Math.trunc(value) / 4294967296));
}

function toUint32(value: number): number {
  if (!Number.isFinite(value)) {
    throw new Error(`RNG seed/key must be a finite number, got ${value}`);
  }
  return Math.trunc(value) >>> 0;
}
