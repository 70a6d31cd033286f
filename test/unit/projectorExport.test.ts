// The TensorBoard projector folder: its four files as the projector plugin documents them, the
// sprite's thumbnails in row order, and where TensorBoard is installed, its own plugin loading it.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import sharp from 'sharp';
import {
  checkProjectorTarget, MAX_SPRITE_SIDE, metadataText, PROJECTOR_FILES, projectorConfigText, spriteLayout, splitsOf, tsvField,
  writeProjectorFolder, type ProjectorRow,
} from '../../src/training/retrieval/projectorExport';
import { writeNpyWithPaths } from '../../src/training/retrieval/exportFormats';
import { Rng } from '../../src/training/data/rng';
import { RUN_FILE } from '../../src/training/run/runStore';

const SCRIPTS = path.join(__dirname, '..', '..', '..', 'scripts', 'python');
const ENV_DIR = process.env.SIMSIAM_PYTHON_ENV ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'simsiam-lab', 'python-tensorflow');

/** A Python that imports `modules` (as scripts/prepare/python-tensorflow.sh looks for one), or why there is none. */
function pythonWith(modules: string): { python: string } | { reason: string } {
  for (const python of [process.env.SIMSIAM_PYTHON, path.join(ENV_DIR, 'bin', 'python'), 'python3']) {
    if (!python) continue;
    const probe = spawnSync(python, ['-c', `import ${modules}`], { encoding: 'utf8' });
    if (!probe.error && probe.status === 0) return { python };
  }
  return { reason: `no Python here imports ${modules} (npm test's scripts/prepare/python-tensorflow.sh installs it where pip can)` };
}

/** Solid-colour images of varied shapes, so each thumbnail's colour says which image it is. */
const COLOURS: [number, number, number][] = [[250, 10, 10], [10, 250, 10], [10, 10, 250], [240, 240, 20], [20, 240, 240]];
const SHAPES: [number, number][] = [[40, 40], [64, 20], [12, 30], [8, 8], [100, 70]];

async function solidImage(file: string, colour: [number, number, number], [width, height]: [number, number]): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp({ create: { width, height, channels: 3, background: { r: colour[0], g: colour[1], b: colour[2] } } }).png().toFile(file);
}

function parseTsv(text: string): string[][] {
  assert.ok(text.endsWith('\n'));
  return text.slice(0, -1).split('\n').map((line) => line.split('\t'));
}

describe('projector export', function () {
  let root: string;
  let rows: ProjectorRow[];
  let vectors: Float32Array;
  const dims = 7;

  before(async function () {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-projector-'));
    rows = [];
    for (let i = 0; i < COLOURS.length; i++) {
      const relPath = `${i % 2 ? 'dog' : 'cat'}/image\t${i}.png`;
      await solidImage(path.join(root, 'data', relPath), COLOURS[i], SHAPES[i]);
      rows.push({ relPath, file: path.join(root, 'data', relPath), label: i % 2 ? 'dog' : 'cat', split: i === 4 ? 'test' : 'train' });
    }
    const broken = path.join(root, 'data', 'cat', 'broken.png');
    fs.writeFileSync(broken, 'not a png');
    rows.push({ relPath: 'cat/broken.png', file: broken, label: 'cat', split: 'train' });
    const rng = new Rng(13);
    vectors = Float32Array.from({ length: rows.length * dims }, () => rng.next() * 2 - 1);
  });

  after(function () {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('lays thumbnails on a square grid no wider than the projector takes', function () {
    assert.deepStrictEqual(spriteLayout(1), { columns: 1, side: 64 });
    assert.deepStrictEqual(spriteLayout(10_000), { columns: 100, side: 64 });
    for (const count of [50_000, 100_000, 1_000_000]) {
      const layout = spriteLayout(count)!;
      assert.ok(layout.columns * layout.side <= MAX_SPRITE_SIDE && layout.columns ** 2 >= count, `${count}: ${JSON.stringify(layout)}`);
    }
    assert.deepStrictEqual(spriteLayout(50_000), { columns: 224, side: 36 });
    assert.strictEqual(spriteLayout(10_000_000), null, 'thumbnails of 2 px are left out');
    assert.strictEqual(spriteLayout(0), null);
    assert.strictEqual(spriteLayout(10, 0), null);
  });

  it('escapes what would split a TSV row or field, and writes a header the plugin recognises', function () {
    assert.strictEqual(tsvField('a\tb\nc\rd\\e'), 'a\\tb\\nc\\rd\\\\e');
    const text = metadataText([{ relPath: 'x\ty.png', file: '/x', label: null, split: null }, { relPath: 'z.png', file: '/z', label: 'k', split: null }]);
    assert.strictEqual(text, 'path\tclass\nx\\ty.png\t\nz.png\tk\n');
    assert.strictEqual(metadataText([{ relPath: 'a.png', file: '/a', label: 'c', split: 'test' }]), 'path\tclass\tsplit\na.png\tc\ttest\n');
  });

  it('writes a config naming the files, the shape and the thumbnail size', function () {
    assert.strictEqual(projectorConfigText('run "a"', 3, 2, 16), [
      'embeddings {', '  tensor_name: "run \\"a\\""', '  tensor_shape: 3', '  tensor_shape: 2', '  tensor_path: "tensors.tsv"',
      '  metadata_path: "metadata.tsv"', '  sprite {', '    image_path: "sprite.png"', '    single_image_dim: 16', '    single_image_dim: 16',
      '  }', '}', ''].join('\n'));
    assert.ok(!projectorConfigText('e', 3, 2, null).includes('sprite'));
  });

  it('writes tensors, metadata, sprite and config for the rows, in row order', async function () {
    const folder = path.join(root, 'projector');
    const progress: number[] = [];
    const result = await writeProjectorFolder(folder, rows, vectors, dims, { tensorName: 'run-1', maxThumbnailSide: 16, onProgress: (done) => progress.push(done) });
    assert.deepStrictEqual(fs.readdirSync(folder).sort(), Object.values(PROJECTOR_FILES).sort());
    assert.strictEqual(result.thumbnailSide, 16);
    assert.deepStrictEqual(progress.at(-1), rows.length);

    const tensors = parseTsv(fs.readFileSync(path.join(folder, PROJECTOR_FILES.tensors), 'utf8'));
    assert.strictEqual(tensors.length, rows.length);
    assert.deepStrictEqual(Float32Array.from(tensors.flat().map(Number)), vectors, 'every float32 reads back exactly');

    const metadata = parseTsv(fs.readFileSync(path.join(folder, PROJECTOR_FILES.metadata), 'utf8'));
    assert.deepStrictEqual(metadata[0], ['path', 'class', 'split']);
    assert.deepStrictEqual(metadata.slice(1).map((r) => r[0]), rows.map((r) => r.relPath.replace('\t', '\\t')));
    assert.deepStrictEqual(metadata.slice(1).map((r) => r.slice(1)), rows.map((r) => [r.label, r.split]));

    // 6 thumbnails: a 3-column grid of 2 rows; each tile the colour of its image, grey for the broken one.
    const sprite = await sharp(path.join(folder, PROJECTOR_FILES.sprite)).raw().toBuffer({ resolveWithObject: true });
    assert.deepStrictEqual([sprite.info.width, sprite.info.height, sprite.info.channels], [48, 32, 3]);
    const centre = (i: number) => {
      const x = (i % 3) * 16 + 8;
      const y = Math.floor(i / 3) * 16 + 8;
      return [...sprite.data.subarray((y * 48 + x) * 3, (y * 48 + x) * 3 + 3)];
    };
    COLOURS.forEach((colour, i) => assert.deepStrictEqual(centre(i), colour, `tile ${i}`));
    assert.deepStrictEqual(centre(5), [128, 128, 128]);
    assert.deepStrictEqual(result.missingThumbnails.map((m) => m.file), [rows[5].file]);

    const config = fs.readFileSync(path.join(folder, PROJECTOR_FILES.config), 'utf8');
    assert.ok(config.includes(`tensor_shape: ${rows.length}\n  tensor_shape: ${dims}`) && config.includes('single_image_dim: 16'), config);
  });

  it('replaces an earlier export whole, and leaves no temporary behind', async function () {
    const folder = path.join(root, 'again');
    await writeProjectorFolder(folder, rows, vectors, dims, { maxThumbnailSide: 8 });
    fs.writeFileSync(path.join(folder, 'stale.txt'), 'from before');
    await writeProjectorFolder(folder, rows.slice(0, 2), vectors, dims, { maxThumbnailSide: 0 });
    assert.deepStrictEqual(fs.readdirSync(folder).sort(), [PROJECTOR_FILES.config, PROJECTOR_FILES.metadata, PROJECTOR_FILES.tensors].sort());
    assert.strictEqual(parseTsv(fs.readFileSync(path.join(folder, PROJECTOR_FILES.tensors), 'utf8')).length, 2);
    assert.deepStrictEqual(fs.readdirSync(root).filter((name) => name.startsWith('again')), ['again']);
  });

  it('refuses targets that would overwrite the run or someone else\'s folder', function () {
    const run = path.join(root, 'run');
    fs.mkdirSync(path.join(run, 'checkpoints'), { recursive: true });
    fs.writeFileSync(path.join(run, RUN_FILE), '{}');
    checkProjectorTarget(run, path.join(run, 'projector'));
    checkProjectorTarget(run, path.join(root, 'elsewhere'));
    checkProjectorTarget(run, path.join(root, 'projector')); // an earlier export
    assert.throws(() => checkProjectorTarget(run, run), /the run folder itself/);
    assert.throws(() => checkProjectorTarget(run, path.join(run, 'checkpoints')), /inside the checkpoints\/ folder/);
    assert.throws(() => checkProjectorTarget(run, path.join(run, 'index', 'p')), /does not exist|inside the index\/ folder/);
    assert.throws(() => checkProjectorTarget(run, path.join(run, RUN_FILE)), /it is a file/);
    assert.throws(() => checkProjectorTarget(run, path.join(root, 'data')), /holds other files/);
    assert.throws(() => checkProjectorTarget(run, path.join(root, 'missing', 'p')), /parent folder .* does not exist/);
  });

  it('gives each image the split the dataset scan gives it', async function () {
    const data = path.join(root, 'splits');
    for (const split of ['train', 'test']) await solidImage(path.join(data, split, 'a', `${split}.png`), COLOURS[0], [8, 8]);
    assert.deepStrictEqual(await splitsOf(data, path.join(data, '.simsiam', 'runs'), { testFraction: 0.1, seed: 0 },
      ['test/a/test.png', 'train/a/train.png', 'gone.png']), ['test', 'train', null]);
  });

  it('loads in TensorBoard\'s projector plugin, with the tensor the npy export holds', async function () {
    const found = pythonWith('tensorboard, tensorflow');
    if ('reason' in found) {
      console.log(`      skipped: ${found.reason}`);
      this.skip();
    }
    const folder = path.join(root, 'tensorboard');
    await writeProjectorFolder(folder, rows, vectors, dims, { tensorName: 'run-1' });
    const npy = path.join(root, 'embeddings.npy');
    writeNpyWithPaths(npy, path.join(root, 'embeddings.paths.json'), vectors, dims, rows.map((r) => r.relPath));
    const check = spawnSync(found.python, [path.join(SCRIPTS, 'check_projector.py'), folder, '--npy', npy, '--json'], { encoding: 'utf8' });
    assert.strictEqual(check.status, 0, check.stdout + check.stderr);
    const result = JSON.parse(check.stdout.trim().split('\n').at(-1)!);
    assert.deepStrictEqual([result.points, result.dims, result.columns, result.sprite, result.maxDifferenceToNpy],
      [rows.length, dims, ['path', 'class', 'split'], [192, 128], 0]);
  });
});
