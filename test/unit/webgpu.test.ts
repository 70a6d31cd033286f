// The WebGPU backend (tfjs-backend-webgpu over Dawn): one training step of the tiny preset's model
// on it equals the cpu backend's, the real trainer runs on it, and where no adapter exists (or
// SIMSIAM_WEBGPU_ADAPTER=none hides it) 'auto' passes it over and says why. In CI the adapter is
// Mesa's lavapipe, a software Vulkan driver (scripts/prepare/lavapipe.sh installs it).
import * as assert from 'assert';
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/training/tfjs/backend';
import { describeWebGpuAdapters, WEBGPU_ADAPTER_ENV } from '../../src/training/tfjs/webgpuBackend';
import { resolveConfig } from '../../src/training/config';
import { buildSimSiam } from '../../src/training/model/simsiam';
import { computeGradients, parametersOf, readAndDisposeAsync } from '../../src/training/step';
import { StopSignal, startTraining } from '../../src/training/trainer';
import { readMetrics } from '../../src/training/run/runStore';
import type { EngineMessage } from '../../src/training/protocol';

const run = promisify(execFile);
const REPO_ROOT = path.resolve(__dirname, '../../..');
const WEBGPU_MODULE = path.resolve(__dirname, '../../src/training/tfjs/webgpuBackend.js');
const BACKEND_MODULE = path.resolve(__dirname, '../../src/training/tfjs/backend.js');

/**
 * Gradients may differ from the cpu backend's by float32 summation order (GPU reductions sum in
 * another order), which batch norm amplifies: every weight's gradient is within 1e-3 of the cpu's,
 * relative to that gradient's largest magnitude (lavapipe: 2e-5); loss and collapse monitor within
 * 1e-5 (lavapipe: 2e-8).
 */
const GRADIENT_TOLERANCE = 1e-3;
const SCALAR_TOLERANCE = 1e-5;

/** Runs `body` (which has `backend` and `webgpu` in scope) in a fresh process: adapters are found once per process. */
async function inChild(env: NodeJS.ProcessEnv, body: string): Promise<unknown> {
  const script = `
    const backend = require(${JSON.stringify(BACKEND_MODULE)});
    const webgpu = require(${JSON.stringify(WEBGPU_MODULE)});
    (async () => { ${body} })().then((r) => { console.log(JSON.stringify(r)); process.exit(0); },
      (e) => { console.log(JSON.stringify({ error: e.message })); process.exit(0); });`;
  const { stdout } = await run(process.execPath, ['-e', script], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
  // The answer is the last line, whatever tfjs printed before it.
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

interface StepResult {
  loss: number;
  zStd: number;
  grads: Map<string, Float32Array>;
}

/** One forward/backward of the SimSiam loss on the current backend, with the given weights. */
async function oneStep(weights: Float32Array[] | null, seed: number): Promise<StepResult & { weights: Float32Array[] }> {
  // The tiny preset's model at 16 px, not 32: the plain-JavaScript cpu backend takes a minute per 32 px step.
  const config = resolveConfig('tiny', { batchSize: 4, imageSize: 16, seed });
  const model = buildSimSiam(config);
  if (weights) {
    const values = model.getWeights().map((w, i) => tf.tensor(weights[i], w.shape));
    model.setWeights(values);
    tf.dispose(values);
  }
  const shape: [number, number, number, number] = [config.batchSize, config.imageSize, config.imageSize, 3];
  const noise = (offset: number) => Float32Array.from({ length: shape.reduce((a, b) => a * b) }, (_, i) => Math.sin(i * 0.37 + offset));
  const [x1, x2] = [noise(0), noise(1)].map((v) => tf.tensor4d(v, shape));
  const parameters = parametersOf(model);
  const gradients = computeGradients(model, x1, x2, parameters.variables);
  const grads = new Map<string, Float32Array>();
  for (const { name, variable } of parameters.all) {
    grads.set(name, (await gradients.grads[variable.name].data()) as Float32Array);
  }
  const usedWeights = await Promise.all(model.getWeights().map((w) => w.data() as Promise<Float32Array>));
  const scalars = await readAndDisposeAsync(gradients);
  tf.dispose([x1, x2]);
  model.dispose();
  return { ...scalars, grads, weights: usedWeights };
}

async function makeFolder(perClass: number): Promise<string> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-webgpu-'));
  for (const [c, name] of ['stripes', 'dots'].entries()) {
    fs.mkdirSync(path.join(root, name));
    for (let i = 0; i < perClass; i++) {
      const pixels = Buffer.alloc(32 * 32 * 3);
      for (let p = 0; p < 32 * 32; p++) {
        const [x, y] = [p % 32, Math.floor(p / 32)];
        const on = c === 0 ? (y + i) % 6 < 3 : x % 7 === i % 7 && y % 7 === 0;
        pixels.fill(on ? 230 : 20 + 9 * i, p * 3, p * 3 + 3);
      }
      await sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path.join(root, name, `${i}.png`));
    }
  }
  return root;
}

describe('WebGPU backend', function () {
  this.timeout(300_000);
  let adapterMissing: string | undefined;
  let fallbackOnly = false;
  let previousBackend: string;

  before(async () => {
    previousBackend = tf.getBackend();
    const { adapters, reason } = await describeWebGpuAdapters();
    adapterMissing = adapters.length ? undefined : reason;
    fallbackOnly = adapters.length > 0 && adapters.every((a) => a.fallback);
  });

  after(async () => {
    await selectBackend((previousBackend as 'cpu') ?? 'cpu');
  });

  function needsAdapter(context: Mocha.Context): void {
    if (adapterMissing !== undefined) {
      context.test!.title += ` (skipped: no WebGPU adapter: ${adapterMissing})`;
      context.skip();
    }
  }

  it(`with ${WEBGPU_ADAPTER_ENV}=none, auto skips webgpu with the reason and --backend webgpu says why it cannot`, async () => {
    const result = await inChild({ [WEBGPU_ADAPTER_ENV]: 'none' }, `
      const auto = await backend.selectBackend('auto');
      const forced = await backend.selectBackend('webgpu').then(() => 'loaded', (e) => e.message);
      return { name: auto.name, skipped: await backend.autoSkipped(), forced, described: await webgpu.describeWebGpuAdapters() };`) as
      { name: string; skipped: string[]; forced: string; described: unknown };
    assert.notStrictEqual(result.name, 'webgpu');
    const reason = `no WebGPU adapter: ${WEBGPU_ADAPTER_ENV}=none hides them`;
    assert.ok(result.skipped.includes(`webgpu: ${reason}`), `auto skipped: ${JSON.stringify(result.skipped)}`);
    assert.strictEqual(result.forced, reason);
    assert.deepStrictEqual(result.described, { adapters: [], reason: `${WEBGPU_ADAPTER_ENV}=none hides them` });
  });

  it('on a Linux without a Vulkan driver, auto skips webgpu and says which driver to install', async function () {
    if (process.platform !== 'linux') {
      this.test!.title += ' (skipped: the Vulkan loader is hidden only on Linux)';
      this.skip();
    }
    // The Vulkan loader then finds no driver at all: Dawn's own "no adapter" path, not the variable's.
    const result = await inChild({ VK_ICD_FILENAMES: path.join(os.tmpdir(), 'simsiam-no-such-icd.json'), VK_DRIVER_FILES: '' }, `
      const auto = await backend.selectBackend('auto');
      return { name: auto.name, skipped: await backend.autoSkipped(), described: await webgpu.describeWebGpuAdapters() };`) as
      { name: string; skipped: string[]; described: { adapters: unknown[]; reason: string } };
    assert.notStrictEqual(result.name, 'webgpu');
    assert.ok(result.skipped.some((s) => /^webgpu: no WebGPU adapter: Dawn found no adapter on linux: install a Vulkan driver/.test(s)),
      JSON.stringify(result.skipped));
    assert.deepStrictEqual(result.described.adapters, []);
    assert.match(result.described.reason, /^Dawn found no adapter on linux: install a Vulkan driver .*lavapipe/);
  });

  it('auto passes over a software adapter (slower than wasm) unless SIMSIAM_WEBGPU_ADAPTER=any', async function () {
    needsAdapter(this);
    const result = await inChild({}, `
      const auto = await backend.selectBackend('auto');
      return { name: auto.name, skipped: await backend.autoSkipped() };`) as { name: string; skipped: string[] };
    const anyAdapter = await inChild({ [WEBGPU_ADAPTER_ENV]: 'any' }, `
      const auto = await backend.selectBackend('auto');
      return { name: auto.name, detail: auto.detail };`) as { name: string; detail: string };
    // Where tfjs-node(-gpu) loads it comes first, and WebGPU is never tried.
    if (result.name !== 'tensorflow' && fallbackOnly) {
      assert.ok(result.skipped.some((s) => /^webgpu: no WebGPU adapter but the software one \(.+\), slower than wasm/.test(s)),
        JSON.stringify(result.skipped));
      assert.notStrictEqual(result.name, 'webgpu');
    } else if (result.name !== 'tensorflow') {
      assert.strictEqual(result.name, 'webgpu');
    }
    if (anyAdapter.name !== 'tensorflow') {
      assert.strictEqual(anyAdapter.name, 'webgpu');
      assert.match(anyAdapter.detail, /^webgpu \(.+\)$/);
    }
  });

  it('describes its adapters for the doctor without selecting the backend', async function () {
    needsAdapter(this);
    const { adapters, reason } = await describeWebGpuAdapters();
    assert.strictEqual(reason, undefined);
    for (const adapter of adapters) {
      assert.strictEqual(typeof adapter.description, 'string');
      assert.strictEqual(typeof adapter.fallback, 'boolean');
      if (process.platform === 'linux') assert.strictEqual(adapter.backendType, 'vulkan');
    }
    assert.notStrictEqual(tf.getBackend(), 'webgpu');
  });

  it(`computes one training step of the tiny preset's model as the cpu backend does (every gradient within ${GRADIENT_TOLERANCE})`, async function () {
    needsAdapter(this);
    await selectBackend('cpu');
    const reference = await oneStep(null, 5);
    const info = await selectBackend('webgpu');
    assert.strictEqual(info.name, 'webgpu');
    assert.match(info.detail, /^webgpu \(.+\)$/);
    // tfjs-backend-webgpu hands small tensors it holds on the CPU to cpu kernels: here every kernel runs on the GPU.
    const handoff = tf.env().getBool('WEBGPU_CPU_FORWARD');
    tf.env().set('WEBGPU_CPU_FORWARD', false);
    let actual: StepResult;
    try {
      actual = await oneStep(reference.weights, 5);
    } finally {
      tf.env().set('WEBGPU_CPU_FORWARD', handoff);
    }

    assert.ok(Math.abs(actual.loss - reference.loss) < SCALAR_TOLERANCE, `loss ${actual.loss} vs cpu ${reference.loss}`);
    assert.ok(Math.abs(actual.zStd - reference.zStd) < SCALAR_TOLERANCE, `z std ${actual.zStd} vs cpu ${reference.zStd}`);
    assert.deepStrictEqual([...actual.grads.keys()], [...reference.grads.keys()]);
    const worst = [...reference.grads].map(([name, expected]) => {
      const got = actual.grads.get(name)!;
      const scale = expected.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      const diff = expected.reduce((m, x, i) => Math.max(m, Math.abs(x - got[i])), 0);
      assert.ok(got.every(Number.isFinite), `${name}: non-finite gradient on webgpu`);
      return { name, relative: scale > 0 ? diff / scale : diff };
    }).sort((a, b) => b.relative - a.relative);
    // Every kind of weight is there: convolutions (stride 1 and 2), batch norm, dense layers.
    for (const part of ['stem_conv', 'layer2_0_conv1', 'layer2_0_down_conv', '_bn', 'projector_fc', 'predictor_fc']) {
      assert.ok(worst.some((w) => w.name.includes(part)), `the model has a ${part} weight`);
    }
    if (process.env.SIMSIAM_TEST_VERBOSE) console.log(worst.slice(0, 5), actual.loss - reference.loss, actual.zStd - reference.zStd);
    assert.ok(worst[0].relative < GRADIENT_TOLERANCE,
      `largest gradient differences: ${worst.slice(0, 3).map((w) => `${w.name} ${w.relative.toExponential(2)}`).join(', ')}`);
  });

  it('trains the tiny preset through the real trainer: finite loss, a checkpoint, the kNN monitor', async function () {
    needsAdapter(this);
    const folder = await makeFolder(8);
    try {
      const messages: EngineMessage[] = [];
      // 16 images at batch 8: two steps, as --backend webgpu would run them.
      const config = resolveConfig('tiny', { batchSize: 8, epochs: 1, backend: 'webgpu', knnK: 5, testFraction: 0.25 });
      const done = await startTraining({ folder, config }, (m) => messages.push(m), new StopSignal());
      assert.strictEqual(done.status, 'completed');
      const started = messages.find((m) => m.type === 'started');
      assert.ok(started && started.type === 'started' && started.backend.startsWith('webgpu ('), JSON.stringify(started));
      const steps = readMetrics(done.runDir).filter((r) => r.kind === 'step');
      assert.ok(steps.length >= 1, 'at least one step was recorded');
      for (const step of steps) {
        assert.ok(step.kind === 'step' && Number.isFinite(step.loss), `step loss ${JSON.stringify(step)}`);
      }
      assert.ok(messages.some((m) => m.type === 'checkpoint'), 'a checkpoint was written');
      const evals = readMetrics(done.runDir).filter((r) => r.kind === 'eval');
      assert.ok(evals.length >= 1 && evals.every((r) => r.kind === 'eval' && r.knnTop1 >= 0 && r.knnTop1 <= 1), JSON.stringify(evals));
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});
