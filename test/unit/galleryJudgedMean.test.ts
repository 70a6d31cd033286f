// A gallery query of several images searches by the mean of their l2-normalised embeddings,
// re-normalised: the engine's answer is checked against the same sum done by hand over the stored
// index, the query images left out; a query of one image answers as findSimilar does.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { resolveConfig, type TrainConfig } from '../../src/training/config';
import { buildSimSiam } from '../../src/training/model/simsiam';
import { saveCheckpoint } from '../../src/training/run/checkpoint';
import { Rng } from '../../src/training/data/rng';
import { loadIndex } from '../../src/training/retrieval/embeddingIndex';
import { findSimilar, findSimilarToMean } from '../../src/training/retrieval/service';
import { writeFinishedRun } from './runFolders';

const CONFIG: TrainConfig = resolveConfig('tiny', { imageSize: 16, projectorDim: 32, predictorHiddenDim: 8, batchSize: 4, backend: 'wasm' });

async function writeImage(file: string, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const pixels = Buffer.from(Array.from({ length: 20 * 20 * 3 }, () => Math.floor(rng.uniform(0, 256))));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(pixels, { raw: { width: 20, height: 20, channels: 3 } }).png().toFile(file);
}

describe('gallery query of several images', () => {
  let root: string;
  let data: string;
  let runDir: string;

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-mean-query-'));
    data = path.join(root, 'data');
    for (let i = 0; i < 5; i++) await writeImage(path.join(data, 'a', `img${i}.png`), 10 + i);
    for (let i = 0; i < 5; i++) await writeImage(path.join(data, 'b', `img${i}.png`), 50 + i);
    runDir = writeFinishedRun(path.join(root, 'runs'), 'mean-query', CONFIG, { root: data, trainImages: 10, testImages: 0, classes: ['a', 'b'] });
    const model = buildSimSiam(CONFIG);
    await saveCheckpoint(runDir, model, {}, 10, 1);
    model.dispose();
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('ranks by the re-normalised mean of the query embeddings, leaving the queries out', async () => {
    const queries = [path.join(data, 'a', 'img0.png'), path.join(data, 'b', 'img3.png')];
    const found = await findSimilarToMean(runDir, queries, 20, () => undefined);
    const loaded = loadIndex(runDir)!;
    const { relPath } = loaded.stored.manifest.files;
    const dims = loaded.stored.manifest.dims;
    const row = (rel: string) => relPath.indexOf(rel);
    const mean = new Float64Array(dims);
    for (const rel of ['a/img0.png', 'b/img3.png']) for (let d = 0; d < dims; d++) mean[d] += loaded.vectors[row(rel) * dims + d];
    const norm = Math.hypot(...mean);
    const expected = relPath.filter((rel) => rel !== 'a/img0.png' && rel !== 'b/img3.png')
      .map((rel) => ({ rel, score: mean.reduce((sum, x, d) => sum + (x / norm) * loaded.vectors[row(rel) * dims + d], 0) }))
      .sort((p, q) => q.score - p.score);
    assert.deepStrictEqual(found.neighbours.map((n) => path.relative(data, n.path).split(path.sep).join('/')), expected.map((e) => e.rel));
    found.neighbours.forEach((n, i) => assert.ok(Math.abs(n.score - expected[i].score) < 1e-5, `${n.path}: ${n.score} vs ${expected[i].score}`));
  });

  it('answers a query of one image as findSimilar does', async () => {
    const query = path.join(data, 'b', 'img1.png');
    const one = await findSimilarToMean(runDir, [query], 4, () => undefined);
    const similar = await findSimilar(runDir, query, 4, () => undefined);
    assert.deepStrictEqual(one.neighbours.map((n) => n.path), similar.neighbours.map((n) => n.path));
  });
});
