import * as assert from 'assert';
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, WASM_DIR_ENV } from '../../src/training/tfjs/backend';

const run = promisify(execFile);

function isInstalled(packageName: string): boolean {
  try {
    require.resolve(`${packageName}/package.json`);
    return true;
  } catch {
    return false;
  }
}

const nodeBackendInstalled = isInstalled('@tensorflow/tfjs-node') || isInstalled('@tensorflow/tfjs-node-gpu');

const REPO_ROOT = path.resolve(__dirname, '../../..');
const BACKEND_MODULE = path.resolve(__dirname, '../../src/training/tfjs/backend.js');

/** Runs selectBackend('wasm') in a fresh process (wasm loads once per process) and reports the outcome. */
async function selectWasmInChild(env: NodeJS.ProcessEnv, setup = ''): Promise<string> {
  const script = `
    const tf = require('@tensorflow/tfjs');
    const backend = require(${JSON.stringify(BACKEND_MODULE)});
    ${setup}
    backend.selectBackend('wasm').then((info) => {
      const y = tf.grad((w) => tf.conv2d(tf.ones([1, 4, 4, 2]), w, 1, 'same').sum())(tf.ones([3, 3, 2, 1]));
      console.log('OK ' + info.name + ' ' + y.sum().dataSync()[0]);
    }, (error) => console.log('ERROR ' + error.message));`;
  const { stdout } = await run(process.execPath, ['-e', script], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
  return stdout.trim();
}

/**
 * Installs a stand-in @tensorflow/tfjs-node (built against tfjs-core `coreVersion`) where NODE_PATH
 * finds it, then runs selectBackend(requested) in a fresh process. The stand-in registers a
 * 'tensorflow' backend the way the real package does, borrowing the cpu implementation.
 */
async function selectWithFakeTfjsNode(coreVersion: string, requested: string): Promise<string> {
  const modules = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-fake-tfjs-node-'));
  try {
    const packageDir = path.join(modules, '@tensorflow', 'tfjs-node');
    const ownCore = path.join(packageDir, 'node_modules', '@tensorflow', 'tfjs-core');
    fs.mkdirSync(ownCore, { recursive: true });
    fs.writeFileSync(path.join(ownCore, 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-core', version: coreVersion }));
    fs.writeFileSync(path.join(packageDir, 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-node', version: '4.22.0', main: 'index.js' }));
    fs.writeFileSync(path.join(packageDir, 'index.js'), `
      const tf = require(${JSON.stringify(require.resolve('@tensorflow/tfjs'))});
      tf.registerBackend('tensorflow', () => new (require(${JSON.stringify(require.resolve('@tensorflow/tfjs-backend-cpu'))}).MathBackendCPU)(), 3);`);
    const script = `
      require(${JSON.stringify(BACKEND_MODULE)}).selectBackend(${JSON.stringify(requested)}).then(
        (info) => console.log('OK ' + JSON.stringify(info)), (error) => console.log('ERROR ' + error.message));`;
    const { stdout } = await run(process.execPath, ['-e', script], { cwd: REPO_ROOT, env: { ...process.env, NODE_PATH: modules } });
    return stdout.trim();
  } finally {
    fs.rmSync(modules, { recursive: true, force: true });
  }
}

describe('backend selection', function () {
  let previousBackend: string | undefined;

  before(() => {
    previousBackend = tf.getBackend();
  });

  after(async () => {
    await tf.setBackend(previousBackend ?? 'cpu');
  });

  it('picks wasm for auto when tfjs-node is not installed', async function () {
    if (nodeBackendInstalled) {
      this.skip();
    }
    const info = await selectBackend('auto');
    assert.deepStrictEqual({ name: info.name, requested: info.requested }, { name: 'wasm', requested: 'auto' });
    assert.strictEqual(tf.getBackend(), 'wasm');
    assert.match(info.detail, /^wasm \((no )?simd\)$/);
  });

  it('says how to install tfjs-node when it is forced but absent', async function () {
    if (nodeBackendInstalled) {
      this.skip();
    }
    for (const requested of ['node', 'tensorflow'] as const) {
      await assert.rejects(selectBackend(requested),
        /tfjs-node is not installed: npm install @tensorflow\/tfjs-node .*or use --backend wasm/);
    }
    await assert.rejects(selectBackend('node-gpu'), /tfjs-node-gpu is not installed: npm install @tensorflow\/tfjs-node-gpu/);
  });

  it('selects an installed tfjs-node built against this tfjs-core, first for auto', async () => {
    const expected = (requested: string) => `OK ${JSON.stringify({ name: 'tensorflow', requested, detail: 'tfjs-node 4.22.0' })}`;
    assert.strictEqual(await selectWithFakeTfjsNode(tf.version_core, 'node'), expected('node'));
    assert.strictEqual(await selectWithFakeTfjsNode(tf.version_core, 'auto'), expected('auto'));
  });

  it('refuses a tfjs-node built against another tfjs-core and says which version to install', async () => {
    assert.strictEqual(await selectWithFakeTfjsNode('4.0.0', 'node'),
      `ERROR tfjs-node uses @tensorflow/tfjs-core 4.0.0 but this engine uses ${tf.version_core}: ` +
      `npm install @tensorflow/tfjs-node@${tf.version_core}, or use --backend wasm`);
  });

  it('runs on the cpu backend when forced', async () => {
    const info = await selectBackend('cpu');
    assert.deepStrictEqual(info, { name: 'cpu', requested: 'cpu', detail: 'cpu (plain JavaScript, slowest)' });
    assert.strictEqual(tf.getBackend(), 'cpu');
    const sum = tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4]));
    assert.deepStrictEqual(Array.from(sum.dataSync()), [4, 6]);
    sum.dispose();
  });

  it('registers the wasm gradient kernels and names the wasm build in the detail', async () => {
    const info = await selectBackend('wasm');
    assert.strictEqual(info.name, 'wasm');
    assert.strictEqual(tf.getBackend(), 'wasm');
    assert.match(info.detail, /^wasm \((no )?simd\)$/);
    assert.notStrictEqual(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm'), undefined);
  });

  it('gives the same answer when called again, concurrently, or after switching away', async () => {
    const first = await selectBackend('wasm');
    const concurrent = await Promise.all([selectBackend('wasm'), selectBackend('wasm')]);
    assert.deepStrictEqual(concurrent, [first, first]);
    await selectBackend('cpu');
    assert.deepStrictEqual(await selectBackend('wasm'), first);
    assert.strictEqual(tf.getBackend(), 'wasm');
  });

  it('rejects an unknown backend name with the valid choices', async () => {
    await assert.rejects(selectBackend('gpu' as never), /unknown backend 'gpu': choose one of auto, node-gpu, node, webgpu, wasm, cpu/);
  });

  it(`loads the wasm binaries from ${WASM_DIR_ENV} (a bundle without node_modules) and names it when they are not there`, async () => {
    const binaries = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    const copied = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-wasm-'));
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-nowasm-'));
    try {
      for (const file of fs.readdirSync(binaries).filter((name) => name.endsWith('.wasm'))) {
        fs.copyFileSync(path.join(binaries, file), path.join(copied, file));
      }
      // conv2d of ones with a 3x3 'same' window: dW sums, over 2 channels, how many of the 16 pixels each tap sees.
      assert.strictEqual(await selectWasmInChild({ [WASM_DIR_ENV]: copied }), `OK wasm ${2 * (4 * 4 + 4 * 3 * 4 + 3 * 3 * 4)}`);
      const missing = await selectWasmInChild({ [WASM_DIR_ENV]: empty });
      assert.match(missing, new RegExp(`^ERROR no tfjs wasm binary tfjs-backend-wasm(-simd)?\\.wasm in ${empty.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}: point ${WASM_DIR_ENV} at`));
      const overridden = await selectWasmInChild({ [WASM_DIR_ENV]: copied }, `backend.setWasmDirectory(${JSON.stringify(empty)});`);
      assert.match(overridden, /^ERROR no tfjs wasm binary/);
    } finally {
      fs.rmSync(copied, { recursive: true, force: true });
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
