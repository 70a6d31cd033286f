// The native TensorFlow backend (tfjs-node) for real: the engine finds it in the backends folder
// (SIMSIAM_BACKENDS_DIR) the way the extension's Set Up Native Backend command leaves it, and
// trains on it. scripts/prepare/tfjs-node.sh builds it into <repo>/.native before `npm test`;
// where it could not, every test here skips. Each test runs the engine in child processes: a
// process loads tfjs-node once, and it makes itself the active backend of that process.
import * as assert from 'assert';
import { execFile, fork } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import sharp from 'sharp';
import { resolveConfig, type TrainConfig } from '../../src/training/config';
import { message, type EngineMessage, type StartedMessage } from '../../src/training/protocol';
import { readCheckpointPointer, readStatus } from '../../src/training/run/runStore';
import { BACKENDS_DIR_ENV } from '../../src/training/tfjs/externalBackends';

const REPO_ROOT = path.resolve(__dirname, '../../..');
const NATIVE_DIR = path.join(REPO_ROOT, '.native');
const OUT_SRC = path.join(REPO_ROOT, 'out', 'src', 'training');
const ENGINE_PROCESS = path.join(OUT_SRC, 'engineProcess.js');
const ENV = { ...process.env, [BACKENDS_DIR_ENV]: NATIVE_DIR };

/** Why the tests cannot run here, or undefined when tfjs-node is built in .native. */
function notBuilt(): string | undefined {
  const lib = path.join(NATIVE_DIR, 'node_modules', '@tensorflow', 'tfjs-node', 'lib');
  const built = fs.existsSync(lib) && fs.readdirSync(lib).some((dir) => fs.existsSync(path.join(lib, dir, 'tfjs_binding.node')));
  return built ? undefined : `no tfjs-node built in ${NATIVE_DIR} (scripts/prepare/tfjs-node.sh builds it where pip's mirror is reachable)`;
}

/** A model small enough to step in a fraction of a second, with every component of the real one. */
const SMALL: Partial<TrainConfig> = { imageSize: 16, batchSize: 8, widthMultiplier: 0.125, projectorDim: 32, predictorHiddenDim: 8, seed: 7 };

async function makeFolder(perClass: number): Promise<string> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-native-'));
  for (const [c, name] of ['a', 'b'].entries()) {
    for (let i = 0; i < perClass; i++) {
      const seed = c * 1000 + i;
      const pixels = Buffer.from(Array.from({ length: 24 * 24 * 3 }, (_, k) => (k * (7 + c) + seed * 13 + ((k * seed) % 97)) % 256));
      fs.mkdirSync(path.join(root, name), { recursive: true });
      await sharp(pixels, { raw: { width: 24, height: 24, channels: 3 } }).png().toFile(path.join(root, name, `${i}.png`));
    }
  }
  return root;
}

/** Runs `body` (JavaScript, with `out` = the compiled src/training folder) in a fresh engine-like process; returns its last stdout line as JSON. */
async function inChild<T>(body: string, timeout = 180_000): Promise<T> {
  const script = `const out = ${JSON.stringify(OUT_SRC)};\n(async () => {\n${body}\n})().then(` +
    `(result) => { process.stdout.write('\\n' + JSON.stringify(result) + '\\n'); process.exit(0); },` +
    `(error) => { console.error(error.stack); process.exit(1); });`;
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script],
      { cwd: REPO_ROOT, env: ENV, timeout, maxBuffer: 64 * 1024 * 1024 });
    return JSON.parse(stdout.trim().split('\n').pop()!) as T;
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`child failed: ${(error as Error).message}\n${(stderr ?? '').split('\n').slice(-20).join('\n')}`);
  }
}

interface EngineRun { messages: EngineMessage[]; started: StartedMessage; stepTimes: number[] }

/** Trains in a forked engine process (as the extension does); `onStep` may ask it to stop. */
function trainInEngine(folder: string, config: TrainConfig, onStep?: (child: ReturnType<typeof fork>, step: number) => void): Promise<EngineRun> {
  const child = fork(ENGINE_PROCESS, [], { env: ENV, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const messages: EngineMessage[] = [];
  const stepTimes: number[] = [];
  child.on('message', (m: EngineMessage) => {
    messages.push(m);
    if (m.type === 'metric' && m.record.kind === 'step') {
      stepTimes.push(performance.now());
      onStep?.(child, m.record.step);
    }
    if ((m.type === 'done' || m.type === 'error') && child.connected) child.disconnect();
  });
  child.send(message({ type: 'train', folder, config }));
  return new Promise((resolve, reject) => child.on('exit', () => {
    const started = messages.find((m): m is StartedMessage => m.type === 'started');
    const error = messages.find((m) => m.type === 'error');
    if (!started || error) reject(new Error(`engine failed: ${JSON.stringify(error ?? messages)}\n${stderr.slice(-3000)}`));
    else resolve({ messages, started, stepTimes });
  }));
}

const imagesPerSecond = ({ stepTimes }: EngineRun, batch: number) =>
  // The first step includes graph building and kernel warm-up; the rest are steady.
  stepTimes.length > 2 ? (batch * (stepTimes.length - 2)) / ((stepTimes.at(-1)! - stepTimes[1]) / 1000) : NaN;

describe('native backend (tfjs-node from the backends folder)', function () {
  this.timeout(240_000);
  let folder: string;
  const runs: Record<'tensorflow' | 'wasm', string> = { tensorflow: '', wasm: '' };

  before(async function () {
    const reason = notBuilt();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    folder = await makeFolder(16);
  });

  after(() => {
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('is what --backend auto picks, trains with loader threads, and stops on request with a checkpoint', async () => {
    const config = resolveConfig('tiny', { ...SMALL, backend: 'auto', epochs: 20, loaderThreads: 2 });
    let stopAt = -1;
    const run = await trainInEngine(folder, config, (child, step) => {
      if (step === 6 && stopAt < 0) {
        stopAt = step;
        child.send(message({ type: 'stop' }));
      }
    });
    assert.match(run.started.backend, /^tfjs-node 4\.22\.0/);
    const done = run.messages.find((m) => m.type === 'done');
    assert.ok(done?.type === 'done' && done.status === 'stopped', JSON.stringify(done));
    assert.ok(done.step >= stopAt && done.step <= stopAt + 2, `asked to stop after step ${stopAt}, stopped at ${done.step}`);
    const losses = run.messages.flatMap((m) => (m.type === 'metric' && m.record.kind === 'step' ? [m.record.loss] : []));
    assert.ok(losses.length >= 6 && losses.every((loss) => Number.isFinite(loss) && loss > -1.01 && loss < 1.01), `losses: ${losses}`);
    assert.strictEqual(readStatus(run.started.runDir).status, 'stopped');
    assert.strictEqual(readCheckpointPointer(run.started.runDir)?.step, done.step, 'the stop saved a checkpoint at its step');
    runs.tensorflow = run.started.runDir;
    console.log(`      tfjs-node: ${imagesPerSecond(run, config.batchSize).toFixed(0)} img/s (16 px, width ×0.125, batch 8)`);
  });

  it('normalises batches on the native path (tf.mean) exactly as the pooled path of the cpu backend does, gradients included', async () => {
    const result = await inChild<{ backend: string; maxDiff: number; scale: number }>(`
      const tf = require('@tensorflow/tfjs');
      const { selectBackend } = require(out + '/tfjs/backend.js');
      const { batchNormTraining } = require(out + '/model/batchNorm.js');
      const info = await selectBackend('node');
      const values = () => tf.tidy(() => {
        const x = tf.randomNormal([4, 6, 6, 8], 1, 2, 'float32', 1);
        const dy = tf.randomNormal([4, 6, 6, 8], 0, 1, 'float32', 2);
        const gamma = tf.randomUniform([8], 0.5, 1.5, 'float32', 3);
        const beta = tf.randomUniform([8], -1, 1, 'float32', 4);
        const f = (x, g, b) => batchNormTraining(x, g, b, 1e-3).y;
        const grads = tf.grads((a, b, c) => f(a, b, c).mul(dy).sum())([x, gamma, beta]);
        return [f(x, gamma, beta), ...grads].map((t) => Array.from(t.dataSync()));
      });
      const native = values();
      await tf.setBackend('cpu');
      const reference = values();
      let maxDiff = 0, scale = 0;
      native.forEach((a, i) => a.forEach((v, j) => { maxDiff = Math.max(maxDiff, Math.abs(v - reference[i][j])); scale = Math.max(scale, Math.abs(reference[i][j])); }));
      return { backend: info.name, maxDiff, scale };`);
    assert.strictEqual(result.backend, 'tensorflow');
    // float32 sums in another order: relative 1e-5 of the largest value.
    assert.ok(result.maxDiff <= 1e-5 * result.scale + 1e-6, JSON.stringify(result));
  });

  it('writes checkpoints that load on wasm, and reads wasm checkpoints, with equal embeddings', async function () {
    if (!runs.tensorflow) this.skip();
    const wasmRun = await trainInEngine(folder, resolveConfig('tiny', { ...SMALL, backend: 'wasm', epochs: 1, replicas: 1, loaderThreads: 1 }));
    runs.wasm = wasmRun.started.runDir;
    console.log(`      wasm: ${imagesPerSecond(wasmRun, SMALL.batchSize!).toFixed(0)} img/s (same model, one training thread)`);
    const files = fs.readdirSync(path.join(folder, 'a')).slice(0, 6).map((name) => ({ path: path.join(folder, 'a', name), relPath: `a/${name}` }));
    const embed = (runDir: string, backend: string) => inChild<{ backend: string; vectors: number[] }>(`
      const { selectBackend } = require(out + '/tfjs/backend.js');
      const { loadCheckpointModel, embedFiles } = require(out + '/retrieval/embedder.js');
      const { readCheckpointPointer } = require(out + '/run/runStore.js');
      const info = await selectBackend(${JSON.stringify(backend)});
      const loaded = await loadCheckpointModel(${JSON.stringify(runDir)}, readCheckpointPointer(${JSON.stringify(runDir)}));
      const { vectors } = await embedFiles(loaded, ${JSON.stringify(files)}, loaded.imageSize);
      return { backend: info.name, vectors: Array.from(vectors) };`);
    for (const [written, runDir] of Object.entries(runs)) {
      const [onNative, onWasm] = await Promise.all([embed(runDir, 'node'), embed(runDir, 'wasm')]);
      assert.deepStrictEqual([onNative.backend, onWasm.backend], ['tensorflow', 'wasm']);
      assert.strictEqual(onNative.vectors.length, onWasm.vectors.length);
      assert.ok(onNative.vectors.length >= 6 * 8);
      // l2-normalised vectors: components within 1e-4 (float32 convolutions summed in another order).
      const maxDiff = Math.max(...onNative.vectors.map((v, i) => Math.abs(v - onWasm.vectors[i])));
      assert.ok(maxDiff < 1e-4, `checkpoint written on ${written}: embeddings differ by up to ${maxDiff}`);
    }
  });

  it('registers into the tfjs compiled into an esbuild bundle of the engine, as the extension ships it', async () => {
    const bundleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-bundle-'));
    try {
      const bundle = path.join(bundleDir, 'engine.js');
      // The same externals as scripts/build.mjs: tfjs itself is inside the bundle.
      await (require('esbuild') as typeof import('esbuild')).build({
        stdin: {
          contents: `import * as tf from '@tensorflow/tfjs';
            import { selectBackend } from './src/training/tfjs/backend';
            selectBackend('auto').then((info) => console.log(JSON.stringify({ info, tfjsFiles: Object.keys(require.cache).filter((f) => f.includes('tfjs-core')).length,
              product: tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).dataSync()[0] })));`,
          resolveDir: REPO_ROOT, loader: 'ts',
        },
        bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: bundle, logLevel: 'error',
        external: ['sharp', 'webgpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'],
      });
      const { stdout } = await promisify(execFile)(process.execPath, [bundle], { cwd: bundleDir, env: ENV });
      const result = JSON.parse(stdout.trim().split('\n').pop()!);
      assert.deepStrictEqual(result.info, { name: 'tensorflow', requested: 'auto', detail: 'tfjs-node 4.22.0', ...(result.info.skipped ? { skipped: result.info.skipped } : {}) });
      // Its kernels ran in the bundle's tfjs: the backends folder's own tfjs-core copy was never loaded.
      assert.strictEqual(result.tfjsFiles, 0);
      assert.strictEqual(result.product, 11);
    } finally {
      fs.rmSync(bundleDir, { recursive: true, force: true });
    }
  });

  it('trains a few steps of the imagenet preset at 224 px in bounded memory', async function () {
    const batch = 4;
    const result = await inChild<{ backend: string; steps: number; maxRssMiB: number; seconds: number }>(`
      const { startTraining, StopSignal } = require(out + '/trainer.js');
      const { resolveConfig } = require(out + '/config.js');
      const config = resolveConfig('imagenet', { batchSize: ${batch}, epochs: 1, backend: 'node', loaderThreads: 1, seed: 3 });
      let steps = 0, backend = '';
      const started = Date.now();
      const stop = new StopSignal();
      await startTraining({ folder: ${JSON.stringify(folder)}, runsDir: ${JSON.stringify(path.join(folder, '.imagenet-runs'))}, config },
        (m) => { if (m.type === 'started') backend = m.backend; if (m.type === 'metric' && m.record.kind === 'step' && ++steps === 3) stop.request(); }, stop);
      return { backend, steps, maxRssMiB: process.resourceUsage().maxRSS / 1024, seconds: (Date.now() - started) / 1000 };`, 220_000);
    console.log(`      imagenet preset, 224 px, batch ${batch}: ${result.steps} steps in ${result.seconds.toFixed(0)} s, peak RSS ${result.maxRssMiB.toFixed(0)} MiB`);
    assert.match(result.backend, /^tfjs-node/);
    assert.ok(result.steps >= 3, JSON.stringify(result));
    // ResNet-50 with its 2048/512 heads: ~100 MB of weights (×4 with momentum and gradients) and
    // ~0.4 GB of activations per 224 px image at this batch; TensorFlow's own arenas come on top.
    assert.ok(result.maxRssMiB < 6 * 1024, `peak RSS ${result.maxRssMiB.toFixed(0)} MiB at batch ${batch}`);
  });
});
