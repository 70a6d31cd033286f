// The Python hand-off (docs/PYTHON.md): Keras, given a run's checkpoint and the preprocessing
// contract, reproduces the embeddings `simsiam export --format npy` writes, within 1e-4. Needs a
// Python with TensorFlow and Keras (npm test's scripts/prepare/python-tensorflow.sh installs them
// where pip can); skips with the reason where there is none.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import sharp from 'sharp';
import { exportProjector } from '../../src/training/retrieval/projectorExport';
import { listRuns } from '../../src/training/run/runStore';

const ROOT = path.join(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'simsiam.js');
const CHECK = path.join(ROOT, 'scripts', 'python', 'check_keras.py');
const CHECK_PROJECTOR = path.join(ROOT, 'scripts', 'python', 'check_projector.py');
const ENV_DIR = process.env.SIMSIAM_PYTHON_ENV ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'simsiam-lab', 'python-tensorflow');
/** Small and quick to train on; one thread keeps the test off the other cores. */
const TRAIN_FLAGS = ['--size', '16', '--batch', '32', '--backend', 'wasm', '--threads', '1', '--loader-threads', '1', '--epochs', '1'];
/** Shapes whose shorter side is at most the input size (16): the contract is exact for them. */
const ODD_SHAPES: [number, number][] = [[16, 24], [24, 16], [10, 20], [7, 9], [17, 16]];

/** A Python that imports TensorFlow and Keras, as scripts/prepare/python-tensorflow.sh looks for one, or why there is none. */
function tensorflowPython(): { python: string } | { reason: string } {
  for (const python of [process.env.SIMSIAM_PYTHON, path.join(ENV_DIR, 'bin', 'python'), 'python3']) {
    if (!python) continue;
    const probe = spawnSync(python, ['-c', 'import tensorflow, keras, numpy'], { encoding: 'utf8' });
    if (!probe.error && probe.status === 0) return { python };
  }
  return { reason: 'no Python here imports tensorflow and keras (npm test\'s scripts/prepare/python-tensorflow.sh installs them where pip can)' };
}

async function noiseImage(file: string, width: number, height: number, seed: number): Promise<void> {
  const pixels = Buffer.alloc(width * height * 3).map((_, j) => (seed * 37 + j * ((seed % 7) + 1) + ((j * j) % 11)) & 255);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(pixels, { raw: { width, height, channels: 3 } }).png().toFile(file);
}

function cli(args: string[]): string {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  assert.strictEqual(result.status, 0, `simsiam ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

interface CheckResult {
  ok: boolean;
  images: number;
  dims: number;
  imageSize: number;
  maxAbsDifference: number;
  worstImage: string;
}

function checkKeras(python: string, run: string, npy: string): { status: number | null; result: CheckResult; output: string } {
  const check = spawnSync(python, [CHECK, run, npy, '--json'], { encoding: 'utf8' });
  const output = check.stdout + check.stderr;
  const last = check.stdout.trim().split('\n').at(-1) ?? '';
  return { status: check.status, result: last.startsWith('{') ? JSON.parse(last) as CheckResult : ({} as CheckResult), output };
}

describe('Python hand-off', function () {
  let root: string;
  let python: string;
  let run: string;
  let npy: string;
  let images: number;

  before(async function () {
    const found = tensorflowPython();
    if ('reason' in found) {
      console.log(`      skipped: ${found.reason}`);
      this.skip();
    }
    python = found.python;
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-python-'));
    const data = path.join(root, 'data');
    images = 0;
    for (const name of ['cat', 'dog']) {
      for (let i = 0; i < 20; i++) await noiseImage(path.join(data, name, `${i}.png`), 16, 16, images++);
    }
    for (const [width, height] of ODD_SHAPES) await noiseImage(path.join(data, 'odd', `${width}x${height}.png`), width, height, images++);
    cli(['train', data, ...TRAIN_FLAGS, '--out', path.join(root, 'runs')]);
    run = listRuns(path.join(root, 'runs'))[0];
    npy = path.join(root, 'embeddings.npy');
    cli(['export', run, '--format', 'npy', '--out', npy]);
  });

  it('exports the run as a projector folder that TensorBoard\'s plugin loads, holding the npy export\'s vectors', async function () {
    const probe = spawnSync(python, ['-c', 'import tensorboard'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      console.log(`      skipped: ${python} has no tensorboard (pip install tensorboard)`);
      this.skip();
    }
    const files = await exportProjector(run, undefined, () => undefined);
    assert.deepStrictEqual(files.map((f) => path.relative(run, f)).sort(),
      ['metadata.tsv', 'projector_config.pbtxt', 'sprite.png', 'tensors.tsv'].map((f) => path.join('projector', f)));
    const check = spawnSync(python, [CHECK_PROJECTOR, path.join(run, 'projector'), '--npy', npy, '--json'], { encoding: 'utf8' });
    assert.strictEqual(check.status, 0, check.stdout + check.stderr);
    const result = JSON.parse(check.stdout.trim().split('\n').at(-1)!);
    assert.deepStrictEqual([result.points, result.columns, result.maxDifferenceToNpy], [images, ['path', 'class', 'split'], 0]);
  });

  after(function () {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('reproduces the exported embeddings from the checkpoint within 1e-4, odd image shapes included', function () {
    const { status, result, output } = checkKeras(python, run, npy);
    assert.strictEqual(status, 0, output);
    assert.strictEqual(result.ok, true, output);
    assert.strictEqual(result.images, images);
    assert.strictEqual(result.imageSize, 16);
    assert.ok(result.maxAbsDifference <= 1e-4, output);
  });

  it('fails when the export and the model disagree', function () {
    // The same rows with one value moved by 1e-3: a check that passes this would pass anything.
    const tampered = path.join(root, 'tampered.npy');
    const bytes = fs.readFileSync(npy);
    const values = new Float32Array(bytes.buffer, bytes.byteOffset + bytes.length - 4 * 8, 8);
    values[3] += 1e-3;
    fs.writeFileSync(tampered, bytes);
    fs.copyFileSync(npy.replace(/\.npy$/, '.paths.json'), tampered.replace(/\.npy$/, '.paths.json'));
    const { status, result, output } = checkKeras(python, run, tampered);
    assert.strictEqual(status, 1, output);
    assert.strictEqual(result.ok, false);
    assert.ok(Math.abs(result.maxAbsDifference - 1e-3) < 1e-5, output);
  });
});
