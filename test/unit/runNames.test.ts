// Default run names: unique in the runs folder, and saying what differs from the preset.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { resolveConfig } from '../../src/training/config';
import { baseRunName, defaultRunName, differenceParts, namePart, takenRunNames, uniqueName } from '../../src/training/run/runNames';
import { RUN_FILE, runNameProblem } from '../../src/training/run/runStore';
import { writeFinishedRun } from './runFolders';

const DATASET = { root: '/data/fashion', trainImages: 10, testImages: 2, classes: ['a', 'b'] };

describe('run names', function () {
  let root: string;
  let runsDir: string;

  beforeEach(function () {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-names-'));
    runsDir = path.join(root, 'runs');
  });

  afterEach(function () {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('is "<folder>-<preset>" for a preset as it is', function () {
    assert.strictEqual(defaultRunName('/data/fashion', resolveConfig('tiny'), runsDir), 'fashion-tiny');
    assert.strictEqual(defaultRunName('/data/cifar10/', resolveConfig('cifar'), runsDir), 'cifar10-cifar');
  });

  it('adds what differs from the preset, in a fixed order, and nothing that does not change what is learned', function () {
    const config = resolveConfig('tiny', { baseLr: 0.03, batchSize: 128, imageSize: 64, backend: 'wasm', replicas: 2, loaderThreads: 1 });
    // 64 px keeps blur at its size's default (0): blur is not a difference.
    assert.deepStrictEqual(differenceParts(config), ['64px', 'b128', 'lr0.03']);
    assert.strictEqual(defaultRunName('/data/fashion', config, runsDir), 'fashion-tiny-64px-b128-lr0.03');
    assert.deepStrictEqual(differenceParts(resolveConfig('tiny', { imageSize: 64, blurP: 0.5, colorJitter: 0.5 })),
      ['64px', 'jitter0.5', 'blur0.5']);
  });

  it('counts on when the name is taken in the runs folder, damaged run folders aside', function () {
    const config = resolveConfig('tiny');
    writeFinishedRun(runsDir, defaultRunName('/data/fashion', config, runsDir), config, DATASET);
    const second = defaultRunName('/data/fashion', config, runsDir);
    assert.strictEqual(second, 'fashion-tiny-2');
    writeFinishedRun(runsDir, second, config, DATASET);
    const damaged = path.join(runsDir, '20200101-000000-broken');
    fs.mkdirSync(damaged);
    fs.writeFileSync(path.join(damaged, RUN_FILE), '{ not json');
    assert.deepStrictEqual([...takenRunNames(runsDir)].sort(), ['fashion-tiny', 'fashion-tiny-2']);
    assert.strictEqual(defaultRunName('/data/fashion', config, runsDir), 'fashion-tiny-3');
    // Another folder's runs elsewhere do not count.
    assert.strictEqual(defaultRunName('/data/fashion', config, path.join(root, 'other')), 'fashion-tiny');
  });

  it('gives every run of a folder trained twice a different name', function () {
    const config = resolveConfig('tiny', { batchSize: 8 });
    const names = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const name = defaultRunName('/data/fashion', config, runsDir);
      names.add(name);
      writeFinishedRun(runsDir, name, config, DATASET);
    }
    assert.deepStrictEqual([...names], ['fashion-tiny-b8', 'fashion-tiny-b8-2', 'fashion-tiny-b8-3', 'fashion-tiny-b8-4', 'fashion-tiny-b8-5']);
  });

  it('formats a part per field and builds names from parts', function () {
    assert.strictEqual(namePart('batchSize', 64), 'b64');
    assert.strictEqual(namePart('backend', 'wasm'), 'wasm');
    assert.strictEqual(namePart('knnK', 20), 'knnK-20');
    assert.strictEqual(baseRunName('/x/my data', 'tiny', ['lr0.1']), 'my data-tiny-lr0.1');
    assert.strictEqual(uniqueName('a', new Set(['a', 'a-2'])), 'a-3');
  });

  it('makes a name a person could have typed from any folder name: no control characters, not too long', function () {
    const hostile = baseRunName('/data/cls\u001b]0;pwned\u0007\u202e', 'tiny', ['b8']);
    assert.strictEqual(hostile, 'cls]0;pwned-tiny-b8');
    assert.strictEqual(runNameProblem(hostile), undefined);
    const long = defaultRunName(`/data/${'x'.repeat(230)}`, resolveConfig('tiny', { batchSize: 8 }), runsDir);
    assert.strictEqual(long, `${'x'.repeat(48)}-tiny-b8`);
    assert.strictEqual(runNameProblem(baseRunName('/', 'tiny', Array.from({ length: 40 }, (_, i) => `seed${i}`)) + '-99'), undefined);
  });
});
