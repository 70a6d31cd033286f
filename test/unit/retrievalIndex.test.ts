// Issue 11: the retrieval index and the checkpoint it is computed with are data, not trust. The
// index is derived data, so one that fails a check is reported by name and rebuilt (nothing is
// lost); a checkpoint that fails one cannot be rebuilt from anything, so it is refused by name.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { resolveConfig, type TrainConfig } from '../../src/training/config';
import { buildSimSiam } from '../../src/training/model/simsiam';
import { saveCheckpoint } from '../../src/training/run/checkpoint';
import { readCheckpointPointer, writeFileAtomic, writeJsonAtomic, RUN_FILE, type RunRecord } from '../../src/training/run/runStore';
import { writeFinishedRun } from './runFolders';
import { Rng } from '../../src/training/data/rng';
import type { EngineMessage } from '../../src/training/protocol';
import { INDEX_DIR, loadIndex, readManifest } from '../../src/training/retrieval/embeddingIndex';
import { embedRun, findSimilar } from '../../src/training/retrieval/service';

const CONFIG: TrainConfig = resolveConfig('tiny', { imageSize: 16, projectorDim: 32, predictorHiddenDim: 8, batchSize: 4, backend: 'wasm' });

async function writeImage(file: string, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const pixels = Buffer.from(Array.from({ length: 20 * 20 * 3 }, (_, i) => (i * (seed % 7 + 1) + rng.uniform(0, 90)) % 256));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(pixels, { raw: { width: 20, height: 20, channels: 3 } }).png().toFile(file);
}

interface Fixture { root: string; data: string; runDir: string }

/** Two classes of three images and a run folder with a checkpoint (and momentum) of a fresh tiny model. */
async function makeFixture(): Promise<Fixture> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-index-'));
  const data = path.join(root, 'data');
  for (let i = 0; i < 3; i++) {
    await writeImage(path.join(data, 'a', `img${i}.png`), 10 + i);
    await writeImage(path.join(data, 'b', `img${i}.png`), 20 + i);
  }
  const runDir = writeFinishedRun(path.join(root, 'runs'), 'index-test', CONFIG,
    { root: data, trainImages: 6, testImages: 0, classes: ['a', 'b'] });
  const model = buildSimSiam(CONFIG);
  const state = Object.fromEntries(model.trainableWeights.map((w) => [w.originalName, tf.zeros(w.shape as number[])]));
  await saveCheckpoint(runDir, model, state, 10, 1);
  tf.dispose(Object.values(state));
  model.dispose();
  return { root, data, runDir };
}

const manifestPath = (runDir: string) => path.join(runDir, INDEX_DIR, 'manifest.json');
const warningsOf = (messages: EngineMessage[]) => messages.flatMap((m) => (m.type === 'warning' ? [m.message] : []));

/** Rewrites manifest.json with the same contents under a new inode, as another process's update would. */
function restamp(runDir: string): void {
  writeFileAtomic(manifestPath(runDir), fs.readFileSync(manifestPath(runDir)));
}

describe('retrieval index files are checked when read', function () {
  this.timeout(60_000);
  const roots: string[] = [];
  let fixture: Fixture;
  let manifestText: string;
  let vectorsFile: string;
  let vectorBytes: Buffer;

  before(async () => {
    fixture = await makeFixture();
    roots.push(fixture.root);
    await embedRun(fixture.runDir, () => undefined);
    manifestText = fs.readFileSync(manifestPath(fixture.runDir), 'utf8');
    vectorsFile = path.join(fixture.runDir, INDEX_DIR, JSON.parse(manifestText).vectorsFile);
    vectorBytes = fs.readFileSync(vectorsFile);
  });

  afterEach(() => {
    writeFileAtomic(manifestPath(fixture.runDir), manifestText);
    fs.writeFileSync(vectorsFile, vectorBytes);
  });

  after(() => roots.forEach((root) => fs.rmSync(root, { recursive: true, force: true })));

  it('reports a manifest that fails a check by name and field, and reads it as no index', () => {
    const cases: [string, (m: Record<string, any>) => void, RegExp][] = [
      ['a path that is a number', (m) => { m.files.relPath[0] = 17; }, /field "files\.relPath\.0"/],
      ['a path outside the dataset', (m) => { m.files.relPath[5] = 'b/../../../../etc/passwd'; }, /field "files\.relPath\.5": is not a path inside the dataset/],
      ['an absolute path', (m) => { m.files.relPath[5] = '/etc/passwd'; }, /field "files\.relPath\.5": is not a path inside the dataset/],
      ['a vectors file elsewhere', (m) => { m.vectorsFile = 'vectors-../../../../secret.f32'; }, /field "vectorsFile"/],
      ['no dimensions', (m) => { m.dims = 0; }, /field "dims"/],
      ['dimensions as text', (m) => { m.dims = '32'; }, /field "dims"/],
      ['a column too short', (m) => { m.files.label.pop(); }, /field "files": has columns of different lengths/],
      ['a label beyond the classes', (m) => { m.files.label[0] = 2; }, /has a label beyond its classes/],
      ['a path listed twice', (m) => { m.files.relPath[1] = m.files.relPath[0]; }, /is not sorted by path, one row per path/],
      ['another format', (m) => { m.format = 'something-else'; }, /field "format"/],
      ['no checkpoint step', (m) => { delete m.checkpoint.step; }, /field "checkpoint\.step"/],
    ];
    for (const [what, edit, pattern] of cases) {
      const manifest = JSON.parse(manifestText);
      edit(manifest);
      fs.writeFileSync(manifestPath(fixture.runDir), JSON.stringify(manifest));
      const warnings: string[] = [];
      assert.strictEqual(readManifest(fixture.runDir, (w) => warnings.push(w)), null, what);
      assert.strictEqual(warnings.length, 1, what);
      assert.ok(warnings[0].includes(manifestPath(fixture.runDir)), `${what}: names the file: ${warnings[0]}`);
      assert.match(warnings[0], pattern, what);
      assert.match(warnings[0], /It is rebuilt from the checkpoint\./, what);
    }
    fs.writeFileSync(manifestPath(fixture.runDir), manifestText.slice(0, 40));
    const warnings: string[] = [];
    assert.strictEqual(loadIndex(fixture.runDir, (w) => warnings.push(w)), null);
    assert.ok(warnings.length === 1 && /manifest\.json is not JSON/.test(warnings[0]), warnings.join('\n'));
  });

  it('reports a vectors file that fails a check by name, and reads it as no index', () => {
    const dims = JSON.parse(manifestText).dims as number;
    const relPaths = JSON.parse(manifestText).files.relPath as string[];
    const cases: [string, () => void, RegExp][] = [
      ['truncated', () => fs.truncateSync(vectorsFile, vectorBytes.length - 4), /holds \d+ bytes, where manifest\.json describes 6 rows of \d+ float32/],
      ['a NaN', () => {
        const bytes = Buffer.from(vectorBytes);
        bytes.writeFloatLE(NaN, (3 * dims + 2) * 4);
        fs.writeFileSync(vectorsFile, bytes);
      }, new RegExp(`holds NaN in row 3 \\(${relPaths[3]}\\)`)],
      ['zero-filled', () => fs.writeFileSync(vectorsFile, Buffer.alloc(vectorBytes.length)), /does not match the checksum it was written with/],
      ['missing', () => fs.rmSync(vectorsFile), /is missing/],
    ];
    for (const [what, damage, pattern] of cases) {
      fs.writeFileSync(vectorsFile, vectorBytes);
      assert.ok(loadIndex(fixture.runDir), `${what}: intact before`);
      damage();
      const warnings: string[] = [];
      assert.strictEqual(loadIndex(fixture.runDir, (w) => warnings.push(w)), null, what);
      assert.strictEqual(warnings.length, 1, what);
      assert.ok(warnings[0].includes(vectorsFile), `${what}: names the file: ${warnings[0]}`);
      assert.match(warnings[0], pattern, what);
    }
  });

  it('rebuilds a damaged index and answers as an intact one does (no NaN or zero scores)', async () => {
    const query = path.join(fixture.data, 'a', 'img0.png');
    const intact = await findSimilar(fixture.runDir, query, 5, () => undefined);
    assert.ok(intact.neighbours.every((n) => Number.isFinite(n.score) && n.score !== 0));
    for (const damage of [
      () => { const bytes = Buffer.from(vectorBytes); bytes.writeFloatLE(NaN, 8); fs.writeFileSync(vectorsFile, bytes); },
      () => fs.writeFileSync(vectorsFile, Buffer.alloc(vectorBytes.length)),
    ]) {
      fs.writeFileSync(vectorsFile, vectorBytes);
      damage();
      restamp(fixture.runDir);
      const again = await findSimilar(fixture.runDir, query, 5, () => undefined);
      assert.deepStrictEqual(again.neighbours.map((n) => n.path), intact.neighbours.map((n) => n.path));
      again.neighbours.forEach((n, i) => assert.ok(Math.abs(n.score - intact.neighbours[i].score) < 1e-6, `score ${n.score}`));
      assert.deepStrictEqual(await embedRun(fixture.runDir, () => undefined), { images: 6, reembedded: 0 }, 'the rebuilt index is on disk');
    }
  });

  it('says which index file was damaged when it rebuilds it', async () => {
    const bytes = Buffer.from(vectorBytes);
    bytes.writeFloatLE(NaN, 8);
    fs.writeFileSync(vectorsFile, bytes);
    restamp(fixture.runDir);
    const messages: EngineMessage[] = [];
    assert.deepStrictEqual(await embedRun(fixture.runDir, (m) => messages.push(m)), { images: 6, reembedded: 6 });
    const warnings = warningsOf(messages);
    assert.ok(warnings.some((w) => w.includes(vectorsFile) && /holds NaN/.test(w) && /rebuilt/.test(w)), `warnings: ${JSON.stringify(warnings)}`);
  });

  it('refuses a checkpoint with non-finite weights by name instead of indexing NaN embeddings', async () => {
    const other = await makeFixture();
    roots.push(other.root);
    const pointer = readCheckpointPointer(other.runDir)!;
    const weights = path.join(other.runDir, pointer.dir, 'weights.bin');
    const bytes = fs.readFileSync(weights);
    bytes.writeFloatLE(NaN, 0);
    fs.writeFileSync(weights, bytes);
    await assert.rejects(embedRun(other.runDir, () => undefined),
      (error: Error) => error.message.includes(weights) && /holds NaN in weight/.test(error.message) && /start a new run/.test(error.message));
    assert.ok(!fs.existsSync(path.join(other.runDir, INDEX_DIR, 'manifest.json')), 'no index of NaN rows was written');
  });

  it('refuses a run.json whose image size its checkpoint cannot take, naming both', async () => {
    const other = await makeFixture();
    roots.push(other.root);
    const runFile = path.join(other.runDir, RUN_FILE);
    const record = JSON.parse(fs.readFileSync(runFile, 'utf8')) as RunRecord;
    writeJsonAtomic(runFile, { ...record, config: { ...record.config, imageSize: 24 } });
    const checkpoint = path.join(other.runDir, readCheckpointPointer(other.runDir)!.dir);
    await assert.rejects(embedRun(other.runDir, () => undefined),
      (error: Error) => error.message.includes(checkpoint) && /takes 16 px images, but the run's run.json asks for 24 px/.test(error.message));
  });
});
