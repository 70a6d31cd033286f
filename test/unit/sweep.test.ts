// Sweep specs: parsed and checked with config.ts's rules, expanded into their cartesian product.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import sharp from 'sharp';
import { listRuns, readRun, readStatus } from '../../src/training/run/runStore';
import { resolveConfig } from '../../src/training/config';
import {
  expandSweep, MAX_SWEEP_RUNS, parseSetSpec, parseSetSpecs, parseSweepValues, sweepField, sweepRunName, sweepRuns, sweepSize, SweepError,
} from '../../src/training/sweep';

/** Asserts that `run` throws a SweepError whose message matches `pattern` and, when given, names `field`. */
function refuses(run: () => unknown, pattern: RegExp, field?: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof SweepError, String(error));
    assert.match(error.message, pattern);
    if (field !== undefined) assert.strictEqual(error.field, field);
    return true;
  });
}

describe('sweep specs', function () {
  it('parses field=values into typed values, accepting the CLI flag names', function () {
    assert.deepStrictEqual(parseSetSpec('baseLr=0.03, 0.06'), { field: 'baseLr', values: [0.03, 0.06] });
    assert.deepStrictEqual(parseSetSpec('batch=64,128'), { field: 'batchSize', values: [64, 128] });
    assert.deepStrictEqual(parseSetSpec('backend=wasm,cpu'), { field: 'backend', values: ['wasm', 'cpu'] });
    assert.strictEqual(sweepField('--crop-min'), 'cropScaleMin');
  });

  it('refuses a bad value naming the field and the value, with the rule it breaks', function () {
    refuses(() => parseSetSpec('batchSize=64,1'), /batchSize: "1" is not allowed: batchSize must be at least 2/, 'batchSize');
    refuses(() => parseSetSpec('baseLr=0.03,fast'), /baseLr: "fast" is not allowed/, 'baseLr');
    refuses(() => parseSetSpec('flipP=1.5'), /flipP: "1.5" is not allowed: flipP must be a probability/, 'flipP');
    refuses(() => parseSetSpec('backend=tpu'), /backend: "tpu" is not allowed: backend must be one of auto/, 'backend');
    refuses(() => parseSetSpec('epochs=1,,2'), /epochs: an empty value/, 'epochs');
    refuses(() => parseSetSpec('epochs='), /epochs: list at least one value/, 'epochs');
    refuses(() => parseSetSpec('seed=1,1'), /seed: the value 1 is listed twice/, 'seed');
    refuses(() => parseSweepValues('imageSize', '4'), /imageSize: "4" is not allowed: imageSize must be at least 8/);
  });

  it('refuses fields it cannot vary and malformed specs, listing what it can vary', function () {
    refuses(() => parseSetSpec('weightDecay=0.1'), /"weightDecay" is not a field a sweep can vary: use one of baseLr, batchSize/, 'weightDecay');
    refuses(() => parseSetSpec('learningRate=0.1'), /Unknown config field "learningRate"/);
    refuses(() => parseSetSpec('baseLr'), /not field=value/);
    refuses(() => parseSetSpecs([]), /at least one --set/);
    refuses(() => parseSetSpecs(['seed=1', 'seed=2']), /seed is varied twice/, 'seed');
  });

  it('expands the cartesian product, the first parameter slowest, each point labelled by its values', function () {
    const parameters = parseSetSpecs(['baseLr=0.03,0.06', 'batchSize=64,128', 'seed=1,2,3']);
    assert.strictEqual(sweepSize(parameters), 12);
    const points = expandSweep(parameters);
    assert.strictEqual(points.length, 12);
    assert.deepStrictEqual(points.slice(0, 4).map((p) => p.label), ['lr0.03-b64-seed1', 'lr0.03-b64-seed2', 'lr0.03-b64-seed3', 'lr0.03-b128-seed1']);
    assert.deepStrictEqual(points[11].values, { baseLr: 0.06, batchSize: 128, seed: 3 });
    assert.strictEqual(new Set(points.map((p) => p.label)).size, 12);
  });

  it(`refuses more than ${MAX_SWEEP_RUNS} runs, saying how many it would make`, function () {
    const values = (n: number) => Array.from({ length: n }, (_, i) => i + 1).join(',');
    assert.strictEqual(expandSweep(parseSetSpecs([`seed=${values(8)}`, `epochs=${values(8)}`])).length, 64);
    refuses(() => parseSetSpecs([`seed=${values(13)}`, `epochs=${values(5)}`]), /makes 65 runs \(13 × 5\); at most 64/);
  });

  it('resolves every config before anything trains: base fields, then the point, refusing a bad combination by name', function () {
    const runs = sweepRuns('tiny', { imageSize: 16, batchSize: 8 }, parseSetSpecs(['baseLr=0.03,0.06', 'batchSize=16,32']));
    assert.deepStrictEqual(runs.map((r) => [r.config.baseLr, r.config.batchSize, r.config.imageSize]),
      [[0.03, 16, 16], [0.03, 32, 16], [0.06, 16, 16], [0.06, 32, 16]]);
    assert.deepStrictEqual(runs[0].config, resolveConfig('tiny', { imageSize: 16, batchSize: 16, baseLr: 0.03 }));
    refuses(() => sweepRuns('tiny', { cropScaleMax: 0.6 }, parseSetSpecs(['cropScaleMin=0.5,0.9'])),
      /The run with cropScaleMin=0.9 cannot train: .*cropScaleMin \(0.9\) must not exceed cropScaleMax \(0.6\)/, 'cropScaleMin');
  });

  it('names each run after its values, unique among the names taken', function () {
    const [point] = expandSweep(parseSetSpecs(['baseLr=0.03', 'batch=64']));
    assert.strictEqual(sweepRunName('/data/fashion', 'tiny', point, new Set()), 'fashion-tiny-lr0.03-b64');
    assert.strictEqual(sweepRunName('/data/fashion', 'tiny', point, new Set(['fashion-tiny-lr0.03-b64'])), 'fashion-tiny-lr0.03-b64-2');
  });
});

describe('simsiam sweep', function () {
  const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'simsiam.js');
  const FLAGS = ['--size', '16', '--batch', '8', '--epochs', '1', '--threads', '1', '--loader-threads', '1', '--backend', 'wasm'];
  let root: string;
  let data: string;

  /** 24 tiny images in two class folders. */
  before(async function () {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-sweep-'));
    data = path.join(root, 'shapes');
    for (const [c, label] of ['a', 'b'].entries()) {
      for (let i = 0; i < 12; i++) {
        const pixels = Buffer.alloc(8 * 8 * 3).map((_, j) => (i * 37 + j * ((i % 7) + 1) + c * 90) & 255);
        fs.mkdirSync(path.join(data, label), { recursive: true });
        await sharp(pixels, { raw: { width: 8, height: 8, channels: 3 } }).png().toFile(path.join(data, label, `${i}.png`));
      }
    }
  });

  after(function () {
    fs.rmSync(root, { recursive: true, force: true });
  });

  const runNames = (runsDir: string) => listRuns(runsDir).map((dir) => readRun(dir).name).sort();

  it('trains a 2×2 sweep one run after another: four completed runs with distinct names, and a summary', function () {
    const runsDir = path.join(root, 'runs-2x2');
    const result = spawnSync(process.execPath, [BIN, 'sweep', data, '--set', 'baseLr=0.03,0.06', '--set', 'batchSize=8,12',
      ...FLAGS.filter((f, i, all) => f !== '--batch' && all[i - 1] !== '--batch'), '--out', runsDir, '--json'], { encoding: 'utf8' });
    assert.strictEqual(result.status, 0, result.stderr);
    const lines = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { type: string; runs?: { name: string; status: string; finalLoss: number | null }[] });
    const summary = lines[lines.length - 1];
    assert.strictEqual(summary.type, 'sweep');
    const expected = ['shapes-tiny-lr0.03-b8', 'shapes-tiny-lr0.03-b12', 'shapes-tiny-lr0.06-b8', 'shapes-tiny-lr0.06-b12'];
    assert.deepStrictEqual(summary.runs!.map((r) => [r.name, r.status]), expected.map((name) => [name, 'completed']));
    assert.ok(summary.runs!.every((r) => typeof r.finalLoss === 'number'), JSON.stringify(summary));
    // One after another: each run started after the one before it was done.
    const order = lines.filter((m) => m.type === 'started' || m.type === 'done').map((m) => m.type);
    assert.deepStrictEqual(order, ['started', 'done', 'started', 'done', 'started', 'done', 'started', 'done']);
    assert.deepStrictEqual(runNames(runsDir), [...expected].sort());
    for (const dir of listRuns(runsDir)) {
      const { name, config } = readRun(dir);
      assert.strictEqual(readStatus(dir).status, 'completed');
      assert.strictEqual(name, `shapes-tiny-lr${config.baseLr}-b${config.batchSize}`);
      assert.strictEqual(config.imageSize, 16);
    }
  });

  it('names a second sweep of the same values apart, and prints a table for people', function () {
    const runsDir = path.join(root, 'runs-again');
    for (let i = 0; i < 2; i++) {
      const result = spawnSync(process.execPath, [BIN, 'sweep', data, '--set', 'seed=1', ...FLAGS, '--out', runsDir], { encoding: 'utf8' });
      assert.strictEqual(result.status, 0, result.stderr);
      assert.match(result.stdout, /name\s+status\s+final loss\s+kNN top-1\n/);
      assert.match(result.stdout, new RegExp(`shapes-tiny-seed1${i ? '-2' : ''}\\s+completed\\s+-?\\d\\.\\d{4}\\s+\\d+\\.\\d %`));
    }
    assert.deepStrictEqual(runNames(runsDir), ['shapes-tiny-seed1', 'shapes-tiny-seed1-2']);
  });

  it('refuses a bad spec before training anything, naming the field', function () {
    const runsDir = path.join(root, 'runs-refused');
    const result = spawnSync(process.execPath, [BIN, 'sweep', data, '--set', 'baseLr=0.03,-1', ...FLAGS, '--out', runsDir], { encoding: 'utf8' });
    assert.strictEqual(result.status, 1);
    assert.match(result.stderr, /error: baseLr: "-1" is not allowed: baseLr must be a positive number/);
    assert.ok(!fs.existsSync(runsDir));
  });

  it('stops the current run with its checkpoint on Ctrl-C and skips the rest', async function () {
    if (process.platform === 'win32') this.skip(); // no SIGINT to send to a child there
    const runsDir = path.join(root, 'runs-stopped');
    const args = [BIN, 'sweep', data, '--set', 'seed=1,2,3', ...FLAGS.map((f, i, all) => (all[i - 1] === '--epochs' ? '50' : f)), '--out', runsDir];
    const child = spawn(process.execPath, args);
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      // Once the first run trains (its kNN before training is printed), Ctrl-C.
      if (/kNN top-1 at step 0/.test(stderr) && !child.killed) child.kill('SIGINT');
    });
    const status = await exited;
    assert.strictEqual(status, 0, stderr);
    assert.match(stdout, /shapes-tiny-seed1\s+stopped/);
    assert.match(stdout, /shapes-tiny-seed2\s+skipped/);
    assert.match(stdout, /shapes-tiny-seed3\s+skipped/);
    const runs = listRuns(runsDir);
    assert.strictEqual(runs.length, 1, 'only the first run was started');
    assert.strictEqual(readStatus(runs[0]).status, 'stopped');
    assert.ok(fs.existsSync(path.join(runs[0], 'checkpoint.json')), 'the stopped run has a checkpoint to resume from');
  });
});
