// A run's full evaluation through the CLI as a person runs it: recorded at the end of training,
// again on demand for a checkpoint on disk, with the untrained network's figures computed once
// per config and kept, and "no labels" where there are no class folders.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { EvaluationRecord, MetricRecord } from '../../src/training/protocol';
import { listRuns } from '../../src/training/run/runStore';

const ROOT = path.join(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'simsiam.js');
const SAMPLE = path.join(ROOT, 'sample', 'fashion-mnist');
const QUICK = ['--size', '16', '--batch', '32', '--epochs', '1', '--backend', 'wasm', '--threads', '1', '--loader-threads', '1'];

function simsiam(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 240_000 });
}

/** A labelled folder: the sample's first `perClass` train and `perClass / 4` test images of each class. */
function labelledFolder(root: string, perClass: number): string {
  for (const split of ['train', 'test']) {
    for (const label of fs.readdirSync(path.join(SAMPLE, split))) {
      const take = split === 'train' ? perClass : perClass / 4;
      fs.mkdirSync(path.join(root, split, label), { recursive: true });
      for (const file of fs.readdirSync(path.join(SAMPLE, split, label)).sort().slice(0, take)) {
        fs.copyFileSync(path.join(SAMPLE, split, label, file), path.join(root, split, label, file));
      }
    }
  }
  return root;
}

const metricsOf = (runDir: string) => fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((line) => JSON.parse(line) as MetricRecord);
const runOf = (folder: string) => {
  return listRuns(path.join(folder, '.simsiam', 'runs'))[0];
};

describe('evaluation of a run', function () {
  this.timeout(300_000);
  let dir: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-eval-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('records kNN (k=20, 200), probe and precision@10 beside the untrained baseline at the end, and again on demand', () => {
    const folder = labelledFolder(path.join(dir, 'labelled'), 20);
    const trained = simsiam('train', folder, ...QUICK);
    assert.strictEqual(trained.status, 0, trained.stderr);
    assert.match(trained.stderr, /evaluation at step \d+ .*\n {2}kNN top-1 k=20 +[\d.]+ % +untrained [\d.]+ %/);
    const runDir = runOf(folder);
    const records = metricsOf(runDir);
    const last = records.at(-1) as EvaluationRecord;
    assert.strictEqual(last.kind, 'evaluation');
    const finalStep = records.filter((r) => r.kind === 'epoch').at(-1)!.step;
    assert.strictEqual(last.step, finalStep);
    assert.deepStrictEqual([last.trainImages, last.testImages], [200, 50]);
    for (const figures of [last.figures!, last.baseline!]) {
      for (const value of Object.values(figures)) assert.ok(value >= 0 && value <= 1, JSON.stringify(figures));
    }
    // The untrained network's kNN at k=200 is what the step-0 monitor measured: the same network, the same split.
    const monitor = records.find((r) => r.kind === 'eval' && r.step === 0);
    assert.ok(monitor && monitor.kind === 'eval');
    assert.strictEqual(last.baseline!.knnTop1At200, monitor.knnTop1);

    // On demand: the same checkpoint, the same figures; the baseline comes from the cache, untouched.
    const cacheDir = path.join(path.dirname(runDir), '.baselines');
    const [cacheFile] = fs.readdirSync(cacheDir).map((name) => path.join(cacheDir, name));
    const cachedAt = fs.statSync(cacheFile).mtimeMs;
    const again = simsiam('eval', runDir, '--step', String(finalStep), '--json');
    assert.strictEqual(again.status, 0, again.stderr);
    const onDemand = JSON.parse(again.stdout) as EvaluationRecord;
    assert.deepStrictEqual([onDemand.figures, onDemand.baseline], [last.figures, last.baseline]);
    assert.strictEqual(fs.statSync(cacheFile).mtimeMs, cachedAt);
    assert.strictEqual(metricsOf(runDir).filter((r) => r.kind === 'evaluation').length, 2);

    // A damaged cache entry is said and computed again, to the same figures.
    fs.writeFileSync(cacheFile, '{"key": 3}');
    const recomputed = simsiam('eval', runDir, '--json');
    assert.strictEqual(recomputed.status, 0, recomputed.stderr);
    assert.match(recomputed.stderr, /\.baselines.*is not a valid .* It is computed again/);
    assert.deepStrictEqual((JSON.parse(recomputed.stdout) as EvaluationRecord).baseline, last.baseline);

    // A checkpoint that is not on disk is named, with the ones that are.
    const missing = simsiam('eval', runDir, '--step', '1');
    assert.strictEqual(missing.status, 1);
    assert.match(missing.stderr, new RegExp(`has no checkpoint at step 1\\. Its checkpoints on disk are at step ${finalStep}\\.`));
  });

  it('says "no labels" for a folder without class folders', () => {
    const folder = path.join(dir, 'flat');
    fs.mkdirSync(folder);
    const source = path.join(SAMPLE, 'train', 'Bag');
    for (const file of fs.readdirSync(source).slice(0, 40)) fs.copyFileSync(path.join(source, file), path.join(folder, file));
    const trained = simsiam('train', folder, ...QUICK);
    assert.strictEqual(trained.status, 0, trained.stderr);
    assert.match(trained.stderr, /evaluation at step \d+ .*: no labels \(no class folders\), only unsupervised figures/);
    const last = metricsOf(runOf(folder)).at(-1) as EvaluationRecord;
    assert.deepStrictEqual([last.kind, last.figures, last.baseline], ['evaluation', null, null]);
  });
});
