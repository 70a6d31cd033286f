import * as assert from 'assert';
import { spawnSync } from 'child_process';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { centerView, defaultAugmentConfig, type AugmentConfig } from '../../src/training/data/augment';
import { loaderThreadCount, loadEvalBatch, TwoViewLoader, type LoaderWarning, type TwoViewBatch, type TwoViewLoaderOptions } from '../../src/training/data/batchLoader';
import { resolveConfig } from '../../src/training/config';
import type { ImageRecord } from '../../src/training/data/dataset';
import { DecodedImageCache, decodeImage } from '../../src/training/data/imageDecode';

const SIZE = 16;
const IMAGE_COUNT = 23;
const BATCH = 5;

/** Record i is a flat image of colour (10i, 255 - 10i, 7i): its views identify it. */
function colourOf(index: number): number[] {
  return [10 * index, 255 - 10 * index, 7 * index];
}

async function collect(iterable: AsyncIterable<TwoViewBatch>): Promise<TwoViewBatch[]> {
  const batches: TwoViewBatch[] = [];
  for await (const batch of iterable) {
    batches.push(batch);
  }
  return batches;
}

/** Runs `use` on a loader and always closes it. */
async function withLoader<T>(records: ImageRecord[], options: Partial<TwoViewLoaderOptions>, use: (loader: TwoViewLoader) => Promise<T>): Promise<T> {
  const loader = new TwoViewLoader(records, { augment: defaultAugmentConfig(SIZE), batchSize: BATCH, seed: 1, maxCachedImages: 100, ...options });
  try {
    return await use(loader);
  } finally {
    await loader.close();
  }
}

describe('TwoViewLoader', () => {
  let dir: string;
  let records: ImageRecord[];
  let brokenFile: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'simsiam-loader-'));
    records = [];
    for (let i = 0; i < IMAGE_COUNT; i++) {
      const [r, g, b] = colourOf(i);
      const relPath = `img${String(i).padStart(2, '0')}.png`;
      // A contrasting patch away from the top-left corner, so that crops and flips change the pixels.
      await sharp({ create: { width: 24, height: 20, channels: 3, background: { r, g, b } } })
        .composite([{ input: { create: { width: 6, height: 4, channels: 3, background: { r: 255 - r, g: 255 - g, b: 255 - b } } }, left: 4 + (i % 14), top: 4 + (i % 12) }])
        .png()
        .toFile(path.join(dir, relPath));
      records.push({ path: path.join(dir, relPath), relPath, label: null, split: 'train' });
    }
    brokenFile = path.join(dir, 'broken.png');
    await fs.writeFile(brokenFile, 'this is not a PNG');
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('yields floor(images / batch) full batches covering distinct images', async () => {
    await withLoader(records, {}, async (loader) => {
      assert.strictEqual(loader.batchesPerEpoch(), Math.floor(IMAGE_COUNT / BATCH));
      const batches = await collect(loader.epoch(0));
      assert.strictEqual(batches.length, 4);
      for (const batch of batches) {
        assert.strictEqual(batch.indices.length, BATCH);
        assert.strictEqual(batch.view1.length, BATCH * SIZE * SIZE * 3);
        assert.strictEqual(batch.view2.length, BATCH * SIZE * SIZE * 3);
        assert.ok(batch.view1.every(Number.isFinite) && batch.view2.every(Number.isFinite));
      }
      const seen = batches.flatMap((b) => b.indices);
      assert.strictEqual(new Set(seen).size, seen.length);
      assert.ok(seen.every((i) => Number.isInteger(i) && i >= 0 && i < IMAGE_COUNT));
      assert.deepStrictEqual(loader.skippedFiles(), []);
    });
  });

  it('puts each image at its index, in both views', async () => {
    // All randomness off and raw [0, 1] output: each view is exactly its image.
    const exact: AugmentConfig = { ...defaultAugmentConfig(SIZE, [0, 0, 0], [1, 1, 1]), cropScale: [1, 1], cropRatio: [24 / 20, 24 / 20], jitterP: 0, grayscaleP: 0, blurP: 0, flipP: 0 };
    await withLoader(records, { augment: exact }, async (loader) => {
      for (const batch of await collect(loader.epoch(3))) {
        for (const [slot, index] of batch.indices.entries()) {
          const floats = SIZE * SIZE * 3;
          for (const view of [batch.view1, batch.view2]) {
            const got = view.subarray(slot * floats, (slot + 1) * floats);
            const corner = Array.from(got.subarray(0, 3), (v) => Math.round(v * 255));
            assert.deepStrictEqual(corner, colourOf(index).map((v) => Math.round(v)), `slot ${slot} holds image ${index}`);
          }
        }
      }
    });
  });

  it('gives the same batches for the same seed, whatever the prefetch depth, cache size and thread count', async () => {
    const run = (options: Partial<TwoViewLoaderOptions>) => withLoader(records, options, async (loader) => [...(await collect(loader.epoch(0))), ...(await collect(loader.epoch(1)))]);
    const reference = await run({ prefetch: 1 });
    assert.deepStrictEqual(await run({ prefetch: 4 }), reference);
    assert.deepStrictEqual(await run({ prefetch: 2, maxCachedImages: 3 }), reference);
    // Three threads split every batch of five between them (images owned by index modulo 3).
    assert.deepStrictEqual(await run({ prefetch: 3, threads: 3 }), reference);
    assert.deepStrictEqual(await run({ prefetch: 1, threads: 2, maxCachedImages: 4 }), reference);
    assert.notDeepStrictEqual(reference[0].indices, reference[4].indices, 'each epoch has its own order');
    const otherSeed = await run({ seed: 2 });
    assert.notDeepStrictEqual(otherSeed.map((b) => b.indices), reference.map((b) => b.indices));
    assert.notDeepStrictEqual(reference[0].view1, reference[0].view2, 'the two views differ');
  });

  it('resumes mid-epoch with exactly the batches an uninterrupted epoch has', async () => {
    const withBroken = [...records, { path: brokenFile, relPath: 'broken.png', label: null, split: 'train' as const }];
    for (const list of [records, withBroken]) {
      const full = await withLoader(list, {}, async (loader) => collect(loader.epoch(2)));
      const resumed = await withLoader(list, {}, async (loader) => collect(loader.epoch(2, 2)));
      assert.strictEqual(resumed.length, full.length - 2);
      assert.deepStrictEqual(resumed, full.slice(2));
    }
  });

  for (const threads of [1, 2]) {
    it(`skips an undecodable file with exactly one warning naming it, and keeps every batch full (${threads} thread${threads > 1 ? 's' : ''})`, async () => {
      // The broken file twice: with two threads, each owns one copy and meets it.
      const withBroken = [...records.slice(0, 8), ...[8, 9].map(() => ({ path: brokenFile, relPath: 'broken.png', label: null, split: 'train' as const }))];
      const brokenIndices = [8, 9];
      const warnings: LoaderWarning[] = [];
      await withLoader(withBroken, { batchSize: 2, threads, onWarning: (w) => warnings.push(w) }, async (loader) => {
        assert.strictEqual(loader.batchesPerEpoch(), 5);
        for (let epoch = 0; epoch < 3; epoch++) {
          const batches = await collect(loader.epoch(epoch));
          assert.strictEqual(batches.length, 5, 'training goes on');
          for (const batch of batches) {
            assert.strictEqual(batch.indices.length, 2);
            assert.ok(!batch.indices.some((i) => brokenIndices.includes(i)), 'the broken file never reaches a batch');
            assert.ok(batch.view1.every(Number.isFinite));
          }
        }
        assert.strictEqual(warnings.length, 1);
        assert.strictEqual(warnings[0].file, brokenFile);
        assert.ok(warnings[0].reason.length > 0);
        assert.deepStrictEqual(loader.skippedFiles(), warnings);
      });
    });
  }

  it('reports an error, instead of hanging, when no image can be decoded', async () => {
    const allBroken = Array.from({ length: 4 }, () => ({ path: brokenFile, relPath: 'broken.png', label: null, split: 'train' as const }));
    await withLoader(allBroken, { batchSize: 2 }, async (loader) => {
      await assert.rejects(collect(loader.epoch(0)), /could not be decoded/);
    });
  });

  it('stops cleanly when the consumer leaves an epoch early', async () => {
    await withLoader(records, { prefetch: 3 }, async (loader) => {
      for await (const batch of loader.epoch(0)) {
        assert.strictEqual(batch.indices.length, BATCH);
        break;
      }
      const again = await collect(loader.epoch(1));
      assert.strictEqual(again.length, 4);
    });
  });

  it('keeps the process alive until close() returns, even with replies queued behind a busy main thread', () => {
    // The main thread blocks (as a synchronous training step does) while prefetched batches come
    // back; close() then receives them during terminate(). Node must not exit before it resolves.
    const script = `
      const { TwoViewLoader } = require(${JSON.stringify(require.resolve('../../src/training/data/batchLoader'))});
      const { defaultAugmentConfig } = require(${JSON.stringify(require.resolve('../../src/training/data/augment'))});
      const records = ${JSON.stringify(records)};
      (async () => {
        const loader = new TwoViewLoader(records, { augment: defaultAugmentConfig(${SIZE}), batchSize: ${BATCH}, seed: 1, maxCachedImages: 100, prefetch: 3 });
        const batches = loader.epoch(0)[Symbol.asyncIterator]();
        await batches.next();
        const busyUntil = Date.now() + 1500;
        while (Date.now() < busyUntil) {}
        await batches.return();
        await loader.close();
        console.log('closed');
      })();`;
    const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.strictEqual(result.status, 0, result.stderr);
    assert.strictEqual(result.stdout.trim(), 'closed');
  });
});

describe('loaderThreadCount', () => {
  it('uses one thread on the JavaScript backends, all cores but one (at most 8) on TensorFlow\'s, or what is configured', () => {
    const auto = resolveConfig('tiny');
    assert.strictEqual(loaderThreadCount(auto, 'wasm', 16), 1);
    assert.strictEqual(loaderThreadCount(auto, 'cpu', 16), 1);
    assert.strictEqual(loaderThreadCount(auto, 'tensorflow', 4), 3);
    assert.strictEqual(loaderThreadCount(auto, 'tensorflow', 64), 8);
    assert.strictEqual(loaderThreadCount(auto, 'tensorflow', 1), 1);
    assert.strictEqual(loaderThreadCount(resolveConfig('tiny', { loaderThreads: 3 }), 'wasm', 2), 3);
    assert.throws(() => resolveConfig('tiny', { loaderThreads: -1 }), /loaderThreads must be an integer in \[0, 64\]/);
  });
});

describe('loadEvalBatch', () => {
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'simsiam-eval-'));
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('returns centre views of the decodable records, in order, and lists the rest', async () => {
    const records: ImageRecord[] = [];
    for (const [i, name] of ['a.png', 'bad.png', 'c.png'].entries()) {
      const file = path.join(dir, name);
      if (name === 'bad.png') {
        await fs.writeFile(file, '');
      } else {
        await sharp({ create: { width: 30 + i * 10, height: 20, channels: 3, background: { r: 200, g: 20 * i, b: 0 } } }).png().toFile(file);
      }
      records.push({ path: file, relPath: name, label: i, split: 'test' });
    }
    const mean: [number, number, number] = [0.5, 0.5, 0.5];
    const std: [number, number, number] = [0.25, 0.25, 0.25];
    const result = await loadEvalBatch(records, 8, mean, std);
    assert.deepStrictEqual(result.kept, [0, 2]);
    assert.deepStrictEqual(result.skipped.map((s) => s.file), [records[1].path]);
    assert.strictEqual(result.pixels.length, 2 * 8 * 8 * 3);
    for (const [slot, position] of result.kept.entries()) {
      const expected = new Float32Array(8 * 8 * 3);
      centerView(await decodeImage(records[position].path, 8), 8, mean, std, expected, 0);
      assert.deepStrictEqual(result.pixels.subarray(slot * 192, (slot + 1) * 192), expected);
    }

    const cache = new DecodedImageCache(10, 8);
    const cached = await loadEvalBatch(records, 8, mean, std, cache);
    assert.deepStrictEqual(cached.pixels, result.pixels);
    assert.strictEqual(cache.cachedImageCount, 2);
  });
});
