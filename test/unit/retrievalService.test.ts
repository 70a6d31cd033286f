import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
// The module object itself, so that replacing a function here reaches the engine's writes.
import nodeFs = require('fs');
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { resolveConfig, type TrainConfig } from '../../src/training/config';
import { buildSimSiam } from '../../src/training/model/simsiam';
import { saveCheckpoint } from '../../src/training/run/checkpoint';
import { createRunDir, RUN_FILE } from '../../src/training/run/runStore';
import { writeFinishedRun } from './runFolders';
import { Rng } from '../../src/training/data/rng';
import { PROTOCOL_VERSION, type EngineMessage } from '../../src/training/protocol';
import { INDEX_DIR, loadIndex } from '../../src/training/retrieval/embeddingIndex';
import { acquireRunLock, RunLockedError, RUN_LOCK_FILES } from '../../src/training/run/runLock';
import {
  embedRun, exportEmbeddings, findDuplicates, findSimilar, handleRetrievalRequest,
} from '../../src/training/retrieval/service';

const CONFIG: TrainConfig = resolveConfig('tiny', { imageSize: 16, projectorDim: 32, predictorHiddenDim: 8, batchSize: 4, backend: 'wasm' });

/** A small picture unlike the others: smooth colour gradients from the seed, plus noise. */
async function writeImage(file: string, seed: number, width = 24, height = 20): Promise<void> {
  const rng = new Rng(seed);
  const [r0, g0, b0, rx, gy, bxy] = Array.from({ length: 6 }, () => rng.uniform(0, 255));
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      pixels[o] = (r0 + (rx * x) / width + rng.uniform(0, 40)) % 256;
      pixels[o + 1] = (g0 + (gy * y) / height + rng.uniform(0, 40)) % 256;
      pixels[o + 2] = (b0 + (bxy * (x + y)) / (width + height) + rng.uniform(0, 40)) % 256;
    }
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(pixels, { raw: { width, height, channels: 3 } }).png().toFile(file);
}

async function writeCheckpoint(runDir: string, seed: number, step: number): Promise<void> {
  const model = buildSimSiam({ ...CONFIG, seed });
  await saveCheckpoint(runDir, model, {}, step, step / 10);
  model.dispose();
}

interface Fixture { root: string; data: string; runDir: string }

/** A labelled dataset (classes a, b) and a run folder with a checkpoint of a fresh tiny model. */
async function makeFixture(): Promise<Fixture> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-retrieval-'));
  const data = path.join(root, 'data');
  for (let i = 0; i < 6; i++) await writeImage(path.join(data, 'a', `img${i}.png`), 100 + i);
  for (let i = 0; i < 5; i++) await writeImage(path.join(data, 'b', `img${i}.png`), 200 + i, 30, 18);
  const runDir = writeFinishedRun(path.join(root, 'runs'), 'retrieval-test', CONFIG,
    { root: data, trainImages: 11, testImages: 0, classes: ['a', 'b'] });
  await writeCheckpoint(runDir, 0, 10);
  return { root, data, runDir };
}

function collect(): { messages: EngineMessage[]; emit: (m: EngineMessage) => void } {
  const messages: EngineMessage[] = [];
  return { messages, emit: (m) => messages.push(m) };
}

function storedIndex(runDir: string) {
  const loaded = loadIndex(runDir);
  assert.ok(loaded, 'an index is on disk');
  return { manifest: loaded.stored.manifest, vectors: loaded.vectors };
}

/** Sets a distinct mtime, so a rewrite within the same clock tick still counts as a change. */
function touch(file: string, secondsAgo: number): void {
  const when = new Date(Date.now() - secondsAgo * 1000);
  fs.utimesSync(file, when, when);
}

describe('retrieval service', function () {
  this.timeout(60_000);
  let fixture: Fixture;

  before(async () => {
    fixture = await makeFixture();
  });

  after(() => {
    fs.rmSync(fixture.root, { recursive: true, force: true });
  });

  it('embeds every image of the dataset into an index on disk, with progress', async () => {
    const { messages, emit } = collect();
    const result = await embedRun(fixture.runDir, emit);
    assert.deepStrictEqual(result, { images: 11, reembedded: 11 });
    const progress = messages.filter((m) => m.type === 'progress');
    assert.ok(progress.length >= 2 && progress.at(-1)!.type === 'progress');
    assert.deepStrictEqual(progress.at(-1), { v: PROTOCOL_VERSION, type: 'progress', task: 'embed', done: 11, total: 11 });

    const { manifest, vectors } = storedIndex(fixture.runDir);
    assert.strictEqual(manifest.checkpoint.step, 10);
    assert.strictEqual(manifest.files.relPath.length, 11);
    assert.deepStrictEqual(manifest.files.relPath, [...manifest.files.relPath].sort());
    assert.deepStrictEqual(manifest.files.label.map((l) => manifest.classes[l!]), manifest.files.relPath.map((p) => p.split('/')[0]));
    assert.strictEqual(vectors.length, 11 * manifest.dims);
    for (let row = 0; row < 11; row++) {
      const norm = Math.hypot(...vectors.subarray(row * manifest.dims, (row + 1) * manifest.dims));
      assert.ok(Math.abs(norm - 1) < 1e-4, `row ${row} has norm ${norm}`);
    }
    const again = await embedRun(fixture.runDir, () => undefined);
    assert.deepStrictEqual(again, { images: 11, reembedded: 0 });
  });

  it('finds neighbours of an indexed image without the image itself', async () => {
    const query = path.join(fixture.data, 'a', 'img1.png');
    const result = await findSimilar(fixture.runDir, query, 20, () => undefined);
    assert.strictEqual(result.query, query);
    assert.strictEqual(result.neighbours.length, 10);
    assert.ok(!result.neighbours.some((n) => n.path === query));
    for (let i = 1; i < result.neighbours.length; i++) assert.ok(result.neighbours[i - 1].score >= result.neighbours[i].score);
    for (const n of result.neighbours) {
      assert.ok(fs.existsSync(n.path), `${n.path} is an absolute path to the image`);
      assert.strictEqual(n.label, path.basename(path.dirname(n.path)));
    }
    const top3 = await findSimilar(fixture.runDir, query, 3, () => undefined);
    assert.deepStrictEqual(top3.neighbours, result.neighbours.slice(0, 3));
  });

  it('embeds an image from outside the dataset on the fly', async () => {
    const original = path.join(fixture.data, 'b', 'img2.png');
    const outside = path.join(fixture.root, 'elsewhere', 'query.png');
    fs.mkdirSync(path.dirname(outside), { recursive: true });
    fs.copyFileSync(original, outside);
    const result = await findSimilar(fixture.runDir, outside, 3, () => undefined);
    assert.strictEqual(result.neighbours[0].path, original);
    assert.ok(result.neighbours[0].score > 0.9999, `score ${result.neighbours[0].score}`);
    assert.strictEqual(result.neighbours[0].label, 'b');
    assert.ok(result.neighbours[1].score < 0.9999, 'a different image is not a perfect match');
  });

  it('names a missing or corrupt query file in its error', async () => {
    const missing = path.join(fixture.root, 'no-such-image.png');
    await assert.rejects(findSimilar(fixture.runDir, missing, 5, () => undefined),
      (error: Error) => error.message.includes(missing) && /does not exist/.test(error.message));
    const corrupt = path.join(fixture.root, 'corrupt.png');
    fs.writeFileSync(corrupt, 'this is not a png');
    await assert.rejects(findSimilar(fixture.runDir, corrupt, 5, () => undefined),
      (error: Error) => error.message.includes(corrupt) && /query image/.test(error.message));
    await assert.rejects(findSimilar(fixture.runDir, corrupt, 0, () => undefined), /positive whole number/);
  });

  it('finds a copied file as a near-duplicate of its original with score ≈ 1', async () => {
    const original = path.join(fixture.data, 'a', 'img3.png');
    const copy = path.join(fixture.data, 'b', 'copy-of-img3.png');
    fs.copyFileSync(original, copy);
    try {
      const groups = await findDuplicates(fixture.runDir, 0.9999, () => undefined);
      assert.deepStrictEqual(groups.map((g) => g.paths), [[original, copy]]);
      assert.ok(groups[0].minScore > 0.9999 && groups[0].minScore <= 1 + 1e-6, `minScore ${groups[0].minScore}`);
      const similar = await findSimilar(fixture.runDir, copy, 1, () => undefined);
      assert.strictEqual(similar.neighbours[0].path, original);
      // A low threshold links more images, in larger groups first.
      const loose = await findDuplicates(fixture.runDir, -1, () => undefined);
      assert.strictEqual(loose.length, 1);
      assert.strictEqual(loose[0].paths.length, 12);
    } finally {
      fs.rmSync(copy);
    }
  });

  it('updates incrementally after add, change and delete exactly as a full rebuild would', async () => {
    await embedRun(fixture.runDir, () => undefined);
    await writeImage(path.join(fixture.data, 'b', 'new.png'), 300);
    const changed = path.join(fixture.data, 'a', 'img4.png');
    await writeImage(changed, 301);
    touch(changed, 5);
    fs.rmSync(path.join(fixture.data, 'a', 'img5.png'));
    const broken = path.join(fixture.data, 'a', 'broken.png');
    fs.writeFileSync(broken, 'not an image');

    const { messages, emit } = collect();
    const incremental = await embedRun(fixture.runDir, emit);
    assert.deepStrictEqual(incremental, { images: 11, reembedded: 2 });
    const warnings = messages.filter((m) => m.type === 'warning');
    assert.strictEqual(warnings.length, 1);
    assert.ok(warnings[0].type === 'warning' && warnings[0].file === broken && warnings[0].message.includes(broken));
    const afterUpdate = storedIndex(fixture.runDir);

    const second = collect();
    assert.deepStrictEqual(await embedRun(fixture.runDir, second.emit), { images: 11, reembedded: 0 });
    assert.strictEqual(second.messages.filter((m) => m.type === 'warning').length, 0, 'an unchanged broken file is not retried');

    fs.rmSync(path.join(fixture.runDir, INDEX_DIR), { recursive: true });
    const rebuild = await embedRun(fixture.runDir, () => undefined);
    assert.deepStrictEqual(rebuild, { images: 11, reembedded: 11 });
    const rebuilt = storedIndex(fixture.runDir);
    const { vectorsFile: _a, ...updatedManifest } = afterUpdate.manifest;
    const { vectorsFile: _b, ...rebuiltManifest } = rebuilt.manifest;
    assert.deepStrictEqual(updatedManifest, rebuiltManifest);
    assert.ok(updatedManifest.files.relPath.includes('b/new.png') && !updatedManifest.files.relPath.includes('a/img5.png'));
    assert.deepStrictEqual(updatedManifest.skipped.relPath, ['a/broken.png']);
    assert.deepStrictEqual(afterUpdate.vectors, rebuilt.vectors);
    fs.rmSync(broken);
  });

  it('embeds everything again when the checkpoint changes', async () => {
    const before = storedIndex(fixture.runDir);
    await writeCheckpoint(fixture.runDir, 7, 20);
    const result = await embedRun(fixture.runDir, () => undefined);
    assert.deepStrictEqual(result, { images: 11, reembedded: 11 });
    const after = storedIndex(fixture.runDir);
    assert.strictEqual(after.manifest.checkpoint.step, 20);
    assert.notDeepStrictEqual(after.vectors, before.vectors);
    const indexFiles = fs.readdirSync(path.join(fixture.runDir, INDEX_DIR)).sort();
    assert.deepStrictEqual(indexFiles, [after.manifest.vectorsFile, 'manifest.json'].sort(), 'old vectors are removed');
  });

  it('exports .npy (with a paths file) and CSV that hold the index', async () => {
    const { manifest, vectors } = storedIndex(fixture.runDir);
    const count = manifest.files.relPath.length;
    const out = path.join(fixture.root, 'export', 'features.npy');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const written = await exportEmbeddings(fixture.runDir, 'npy', out, () => undefined);
    const pathsFile = path.join(fixture.root, 'export', 'features.paths.json');
    assert.deepStrictEqual(written, [out, pathsFile]);

    const bytes = fs.readFileSync(out);
    assert.deepStrictEqual([...bytes.subarray(0, 8)], [0x93, ...Buffer.from('NUMPY'), 1, 0]);
    const headerLength = bytes.readUInt16LE(8);
    const header = bytes.subarray(10, 10 + headerLength).toString('latin1');
    assert.strictEqual((10 + headerLength) % 64, 0);
    assert.ok(header.endsWith('\n'));
    assert.match(header, new RegExp(`^\\{'descr': '<f4', 'fortran_order': False, 'shape': \\(${count}, ${manifest.dims}\\), \\} *\\n$`));
    const data = bytes.subarray(10 + headerLength);
    assert.strictEqual(data.byteLength, count * manifest.dims * 4);
    assert.deepStrictEqual(new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)), vectors);
    assert.deepStrictEqual(JSON.parse(fs.readFileSync(pathsFile, 'utf8')), manifest.files.relPath);

    const csvFile = path.join(fixture.root, 'export', 'features.csv');
    assert.deepStrictEqual(await exportEmbeddings(fixture.runDir, 'csv', csvFile, () => undefined), [csvFile]);
    const lines = fs.readFileSync(csvFile, 'utf8').split('\n').slice(0, -1);
    assert.deepStrictEqual(lines[0].split(','), ['path', 'label', ...Array.from({ length: manifest.dims }, (_, j) => `f${j}`)]);
    assert.strictEqual(lines.length, count + 1);
    lines.slice(1).forEach((line, row) => {
      const [relPath, label, ...values] = line.split(',');
      assert.strictEqual(relPath, manifest.files.relPath[row]);
      assert.strictEqual(label, manifest.classes[manifest.files.label[row]!]);
      assert.deepStrictEqual(values.map((v) => Math.fround(Number(v))), Array.from(vectors.subarray(row * manifest.dims, (row + 1) * manifest.dims)));
    });

    let python = true;
    try {
      execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
    } catch {
      python = false;
    }
    if (python) {
      const script = 'import sys, numpy; a = numpy.load(sys.argv[1]); print(a.dtype, a.shape, repr(float(a.astype("float64").sum())))';
      const [dtype, shape, sum] = execFileSync('python3', ['-c', script, out], { encoding: 'utf8' }).trim().split(/ (?=\()|\) /);
      assert.strictEqual(dtype, 'float32');
      assert.strictEqual(shape, `(${count}, ${manifest.dims}`);
      const expectedSum = vectors.reduce((s, v) => s + v, 0);
      assert.ok(Math.abs(Number(sum) - expectedSum) < 1e-6, `numpy sum ${sum} vs ${expectedSum}`);
    }
  });

  it('answers embed and similar requests of the engine process with result messages', async () => {
    const { messages, emit } = collect();
    await handleRetrievalRequest({ v: PROTOCOL_VERSION, type: 'embed', runDir: fixture.runDir }, emit);
    assert.deepStrictEqual(messages.at(-1), { v: PROTOCOL_VERSION, type: 'embedResult', runDir: fixture.runDir, images: 11, reembedded: 0 });
    const query = path.join(fixture.data, 'a', 'img0.png');
    await handleRetrievalRequest({ v: PROTOCOL_VERSION, type: 'similar', runDir: fixture.runDir, image: query, k: 2 }, emit);
    const result = messages.at(-1)!;
    assert.ok(result.type === 'similarResult' && result.query === query && result.neighbours.length === 2);
  });

  it('refuses a folder that is not a run, and a run without a checkpoint', async () => {
    await assert.rejects(embedRun(fixture.data, () => undefined), /not a SimSiam run folder/);
    const { dir } = createRunDir(path.join(fixture.root, 'runs'), 'empty');
    fs.copyFileSync(path.join(fixture.runDir, RUN_FILE), path.join(dir, RUN_FILE));
    await assert.rejects(embedRun(dir, () => undefined), /no checkpoint yet/);
  });

  it('keeps only the model and the index in memory between queries', async () => {
    const queries = () => Promise.all([
      findSimilar(fixture.runDir, path.join(fixture.data, 'a', 'img2.png'), 3, () => undefined),
      findSimilar(fixture.runDir, path.join(fixture.root, 'elsewhere', 'query.png'), 3, () => undefined),
      findDuplicates(fixture.runDir, 0.95, () => undefined),
    ]);
    await queries();
    const cached = tf.memory().numTensors;
    await queries();
    await queries();
    assert.strictEqual(tf.memory().numTensors, cached);
  });
});

describe('retrieval service: one index writer per run, and exports that never damage it', function () {
  this.timeout(60_000);
  let fixture: Fixture;
  /** Every file of the run folder with its contents. */
  const snapshot = (dir: string): Map<string, string> => new Map(
    fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()
      .filter((name) => fs.statSync(path.join(dir, name)).isFile())
      .map((name) => [name, fs.readFileSync(path.join(dir, name)).toString('base64')]));
  const readNpyRows = (file: string) => {
    const bytes = fs.readFileSync(file);
    const data = bytes.subarray(10 + bytes.readUInt16LE(8));
    return new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  };

  before(async () => {
    fixture = await makeFixture();
    await embedRun(fixture.runDir, () => undefined);
  });
  after(() => fs.rmSync(fixture.root, { recursive: true, force: true }));

  it('holds the run\'s index lock while it indexes, searches or exports, but searches a run that trains', async () => {
    const lock = acquireRunLock(fixture.runDir, 'index', 'indexing in another process');
    try {
      const query = path.join(fixture.data, 'a', 'img0.png');
      for (const call of [
        () => embedRun(fixture.runDir, () => undefined),
        () => findSimilar(fixture.runDir, query, 2, () => undefined),
        () => findDuplicates(fixture.runDir, 0.9, () => undefined),
        () => exportEmbeddings(fixture.runDir, 'csv', path.join(fixture.root, 'locked.csv'), () => undefined),
      ]) {
        await assert.rejects(call(), (error: Error) => error instanceof RunLockedError &&
          error.message.includes(fixture.runDir) && error.message.includes('indexing in another process'));
      }
      assert.ok(!fs.existsSync(path.join(fixture.root, 'locked.csv')));
    } finally {
      lock.release();
    }
    const training = acquireRunLock(fixture.runDir, 'training', 'training');
    try {
      const { messages, emit } = collect();
      await findSimilar(fixture.runDir, path.join(fixture.data, 'a', 'img0.png'), 2, emit);
      assert.deepStrictEqual(messages.filter((m) => m.type === 'warning'), []);
    } finally {
      training.release();
    }
    assert.deepStrictEqual(fs.readdirSync(fixture.runDir).filter((name) => name.endsWith('.lock')), [], 'every lock is released');
  });

  it('takes over the index lock of a process that is gone, with a warning', async () => {
    const child = execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    fs.writeFileSync(path.join(fixture.runDir, RUN_LOCK_FILES.index), JSON.stringify({
      pid: Number(child), host: os.hostname(), since: new Date().toISOString(), activity: 'indexing', token: 'gone',
    }));
    const { messages, emit } = collect();
    await embedRun(fixture.runDir, emit);
    const warnings = messages.flatMap((m) => (m.type === 'warning' ? [m.message] : []));
    assert.ok(warnings.some((w) => w.includes(`process ${child} is no longer running`)), warnings.join(' | '));
    assert.ok(!fs.existsSync(path.join(fixture.runDir, RUN_LOCK_FILES.index)));
  });

  it('refuses to write over the run\'s own files or inside its checkpoints or index, and changes nothing there', async () => {
    const before = snapshot(fixture.runDir);
    const checkpoint = fs.readdirSync(path.join(fixture.runDir, 'checkpoints'))[0];
    const targets: ['npy' | 'csv', string][] = [
      ['csv', 'run.json'], ['npy', 'status.json'], ['csv', 'metrics.jsonl'], ['npy', 'checkpoint.json'], ['csv', 'training.lock'],
      ['npy', path.join('checkpoints', checkpoint, 'weights.bin')], ['csv', path.join('checkpoints', checkpoint, 'model.json')],
      ['npy', path.join('checkpoints', 'new.npy')], ['csv', path.join(INDEX_DIR, 'manifest.json')], ['npy', path.join(INDEX_DIR, 'e.npy')],
    ];
    for (const [format, relative] of targets) {
      const target = path.join(fixture.runDir, relative);
      await assert.rejects(exportEmbeddings(fixture.runDir, format, target, () => undefined),
        (error: Error) => error.message.includes(target) && /run/.test(error.message), `${format} to ${relative}`);
    }
    assert.deepStrictEqual(snapshot(fixture.runDir), before);
    // Beside the run's files is fine: that is where the default export goes.
    const written = await exportEmbeddings(fixture.runDir, 'npy', undefined, () => undefined);
    assert.deepStrictEqual(written, [path.join(fixture.runDir, 'embeddings.npy'), path.join(fixture.runDir, 'embeddings.paths.json')]);
    for (const file of written) fs.rmSync(file);
    assert.deepStrictEqual(snapshot(fixture.runDir), before);
  });

  it('names the file when the target is a folder or in a folder that does not exist', async () => {
    const missing = path.join(fixture.root, 'no-such-folder', 'e.npy');
    await assert.rejects(exportEmbeddings(fixture.runDir, 'npy', missing, () => undefined),
      (error: Error) => error.message.includes(missing) && /does not exist/.test(error.message));
    const folder = path.join(fixture.root, 'a-folder.csv');
    fs.mkdirSync(folder);
    await assert.rejects(exportEmbeddings(fixture.runDir, 'csv', folder, () => undefined),
      (error: Error) => error.message.includes(folder) && /folder/.test(error.message));
  });

  it('writes the .npy and its paths file with the same rows in the same order, whatever the file names hold', async () => {
    const odd = ['line\nbreak.png', 'carriage\rreturn.png', 'sep\u2028arator.png', 'tab\tquote"comma,back\\slash.png', 'ünï cødé 🐱.png'];
    for (const [i, name] of odd.entries()) fs.copyFileSync(path.join(fixture.data, 'a', `img${i}.png`), path.join(fixture.data, 'b', name));
    try {
      const out = path.join(fixture.root, 'odd.npy');
      const [npy, pathsFile] = await exportEmbeddings(fixture.runDir, 'npy', out, () => undefined);
      const { manifest, vectors } = storedIndex(fixture.runDir);
      const paths = JSON.parse(fs.readFileSync(pathsFile, 'utf8')) as string[];
      assert.deepStrictEqual(paths, manifest.files.relPath);
      for (const name of odd) assert.ok(paths.includes(`b/${name}`), `${JSON.stringify(name)} is listed as it is`);
      assert.deepStrictEqual(readNpyRows(npy), vectors);
      // A copy's row is its original's row: the rows are where the paths file says.
      const dims = manifest.dims;
      const row = (relPath: string) => Array.from(vectors.subarray(paths.indexOf(relPath) * dims, (paths.indexOf(relPath) + 1) * dims));
      for (const [i, name] of odd.entries()) assert.deepStrictEqual(row(`b/${name}`), row(`a/img${i}.png`), name);
    } finally {
      for (const name of odd) fs.rmSync(path.join(fixture.data, 'b', name));
    }
  });

  it('keeps the previous .npy and paths file, both, when writing either fails (disk full), and names the file', async () => {
    const out = path.join(fixture.root, 'pair.npy');
    const [npy, pathsFile] = await exportEmbeddings(fixture.runDir, 'npy', out, () => undefined);
    const before = [fs.readFileSync(npy), fs.readFileSync(pathsFile)];
    const added = path.join(fixture.data, 'b', 'added.png');
    await writeImage(added, 999);
    const { openSync, writeSync } = nodeFs;
    try {
      for (const failing of [pathsFile, npy]) {
        const failingFds = new Set<number>();
        nodeFs.openSync = ((file: fs.PathLike, ...rest: unknown[]) => {
          const fd = (openSync as (...args: unknown[]) => number)(file, ...rest);
          if (String(file).startsWith(`${failing}.tmp`)) failingFds.add(fd);
          return fd;
        }) as typeof nodeFs.openSync;
        nodeFs.writeSync = ((fd: number, ...rest: unknown[]) => {
          if (failingFds.has(fd)) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          return (writeSync as (...args: unknown[]) => number)(fd, ...rest);
        }) as typeof nodeFs.writeSync;
        await assert.rejects(exportEmbeddings(fixture.runDir, 'npy', out, () => undefined),
          (error: Error) => error.message.includes(failing) && /no space left/.test(error.message), path.basename(failing));
        nodeFs.openSync = openSync;
        nodeFs.writeSync = writeSync;
        assert.deepStrictEqual([fs.readFileSync(npy), fs.readFileSync(pathsFile)], before, `after a failed ${path.basename(failing)}`);
        assert.deepStrictEqual(fs.readdirSync(fixture.root).filter((name) => name.includes('.tmp')), [], 'no temporary file is left');
      }
    } finally {
      nodeFs.openSync = openSync;
      nodeFs.writeSync = writeSync;
      fs.rmSync(added);
    }
    const rows = await exportEmbeddings(fixture.runDir, 'npy', out, () => undefined);
    assert.strictEqual(readNpyRows(rows[0]).length / storedIndex(fixture.runDir).manifest.dims, JSON.parse(fs.readFileSync(rows[1], 'utf8')).length);
  });
});
