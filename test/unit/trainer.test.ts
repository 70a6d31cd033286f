import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/training/tfjs/backend';
import { resolveConfig, type TrainConfig } from '../../src/training/config';
import { buildSimSiam } from '../../src/training/model/simsiam';
import { SgdMomentum } from '../../src/training/optimizer';
import { StopSignal, startTraining, resumeTraining, TrainingError } from '../../src/training/trainer';
import { trainStep } from '../../src/training/step';
import { loadCheckpoint, saveCheckpoint } from '../../src/training/run/checkpoint';
import { readCheckpointPointer, readMetrics, readRun, readStatus, listRuns } from '../../src/training/run/runStore';
import { message, type EngineMessage, type StartedMessage } from '../../src/training/protocol';

/** A model small enough to step in milliseconds, with every component of the real one. */
const SMALL = { imageSize: 16, batchSize: 8, widthMultiplier: 0.125, projectorDim: 32, predictorHiddenDim: 8, epochs: 2 };

async function makeFolder(perClass: number, extra?: (dir: string) => void): Promise<string> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-trainer-'));
  for (const [c, name] of ['stripes', 'dots'].entries()) {
    fs.mkdirSync(path.join(root, name));
    for (let i = 0; i < perClass; i++) {
      const pixels = Buffer.alloc(20 * 20 * 3);
      for (let y = 0; y < 20; y++) {
        for (let x = 0; x < 20; x++) {
          const on = c === 0 ? (y + i) % 4 < 2 : (x % 5 === i % 5 && y % 5 === 0);
          pixels.fill(on ? 230 : 20 + 7 * i, (y * 20 + x) * 3, (y * 20 + x) * 3 + 3);
        }
      }
      await sharp(pixels, { raw: { width: 20, height: 20, channels: 3 } }).png().toFile(path.join(root, name, `${i}.png`));
    }
  }
  extra?.(root);
  return root;
}

function randomViews(config: TrainConfig): [tf.Tensor4D, tf.Tensor4D] {
  const shape: [number, number, number, number] = [config.batchSize, config.imageSize, config.imageSize, 3];
  return [tf.randomNormal(shape, 0, 1, 'float32', 1) as tf.Tensor4D, tf.randomNormal(shape, 0, 1, 'float32', 2) as tf.Tensor4D];
}

function variablesOf(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

async function finalWeights(runDir: string): Promise<Float32Array[]> {
  const checkpoint = await loadCheckpoint(runDir);
  assert.ok(checkpoint, `no checkpoint in ${runDir}`);
  const values = await Promise.all(checkpoint.model.getWeights().map((w) => w.data() as Promise<Float32Array>));
  checkpoint.model.dispose();
  tf.dispose(Object.values(checkpoint.optimizerState));
  return values;
}

describe('trainer', function () {
  this.timeout(120_000);
  const folders: string[] = [];
  const collect = (messages: EngineMessage[]) => (m: EngineMessage) => messages.push(m);

  before(async () => {
    await selectBackend('wasm');
  });
  after(() => folders.forEach((f) => fs.rmSync(f, { recursive: true, force: true })));

  it('changes every trainable weight of backbone, projector and predictor', () => {
    // Without weight decay, so only gradients can move a weight. Two steps: the last BN gamma of
    // each residual branch starts at zero, which blocks the gradient of the conv before it until
    // the first step has moved that gamma.
    const config = resolveConfig('tiny', { ...SMALL, weightDecay: 0 });
    const model = buildSimSiam(config);
    const variables = variablesOf(model);
    const before = variables.map((v) => v.dataSync().slice());
    const optimizer = new SgdMomentum(config.momentum, 0);
    const groups = [{ variables, lr: 0.05 }];
    for (let i = 0; i < 2; i++) {
      const [a, b] = randomViews(config);
      trainStep(model, a, b, variables, optimizer, groups);
      tf.dispose([a, b]);
    }
    const unchanged = variables.filter((v, i) => v.dataSync().every((x, j) => x === before[i][j])).map((v) => v.name);
    assert.deepStrictEqual(unchanged, []);
    for (const part of ['stem_conv', 'layer4_1_conv2', 'projector_fc2', 'predictor_fc1', 'predictor_fc2']) {
      assert.ok(variables.some((v) => v.name.startsWith(part)), `the model has ${part}`);
    }
    optimizer.dispose();
    model.dispose();
  });

  it('leaks no tensors across 20 steps', () => {
    const config = resolveConfig('tiny', SMALL);
    const model = buildSimSiam(config);
    const variables = variablesOf(model);
    const optimizer = new SgdMomentum(config.momentum, config.weightDecay);
    const groups = [{ variables, lr: 0.05 }];
    const counts: number[] = [];
    for (let i = 0; i < 20; i++) {
      const [a, b] = randomViews(config);
      trainStep(model, a, b, variables, optimizer, groups);
      tf.dispose([a, b]);
      counts.push(tf.memory().numTensors);
    }
    assert.strictEqual(counts[19], counts[0], `tensors per step: ${counts.join(' ')}`);
    optimizer.dispose();
    model.dispose();
  });

  it('round-trips a checkpoint: same weights, same optimizer state, same outputs', async () => {
    const config = resolveConfig('tiny', SMALL);
    const model = buildSimSiam(config);
    const variables = variablesOf(model);
    const optimizer = new SgdMomentum(config.momentum, config.weightDecay);
    const [a, b] = randomViews(config);
    trainStep(model, a, b, variables, optimizer, [{ variables, lr: 0.05 }]);
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-ckpt-'));
    folders.push(runDir);
    const state = Object.fromEntries(model.trainableWeights.map((w, i) => [w.originalName, optimizer.bufferValues(variables)[i]]));
    await saveCheckpoint(runDir, model, state, 1, 0);
    const loaded = await loadCheckpoint(runDir);
    assert.ok(loaded);
    assert.strictEqual(loaded.step, 1);
    const expected = (model.predict(a) as tf.Tensor[])[2].dataSync();
    const actual = (loaded.model.predict(a) as tf.Tensor[])[2].dataSync();
    assert.ok(expected.every((x, i) => Math.abs(x - actual[i]) < 1e-6), 'eval outputs match (BN moving stats saved too)');
    for (const w of model.trainableWeights) {
      const saved = loaded.optimizerState[w.originalName].dataSync();
      const live = optimizer.bufferValues([w.read() as tf.Variable])[0].dataSync();
      assert.ok(live.every((x, i) => x === saved[i]), `momentum of ${w.originalName}`);
    }
    assert.ok(fs.existsSync(path.join(runDir, 'checkpoints', 'step-00000001', 'model.json')));
    tf.dispose([a, b]);
    optimizer.dispose();
    model.dispose();
    loaded.model.dispose();
  });

  it('resumes to the same result: 2 epochs ≡ 1½ epochs, stop, resume (same seed)', async () => {
    const folder = await makeFolder(16);
    folders.push(folder);
    const request = { folder, config: resolveConfig('tiny', { ...SMALL, seed: 3 }) };
    const straight = await startTraining({ ...request, name: 'straight' }, () => undefined, new StopSignal());
    assert.strictEqual(straight.status, 'completed');

    const stop = new StopSignal();
    const messages: EngineMessage[] = [];
    const stopped = await startTraining({ ...request, name: 'interrupted' }, (m) => {
      messages.push(m);
      if (m.type === 'metric' && m.record.kind === 'step' && m.record.step === 4) stop.request(); // mid second epoch (3 steps per epoch)
    }, stop);
    assert.strictEqual(stopped.status, 'stopped');
    assert.strictEqual(stopped.step, 4);
    assert.strictEqual(readStatus(stopped.runDir).status, 'stopped');
    assert.strictEqual(readCheckpointPointer(stopped.runDir)?.step, 4);
    // A resume stopped while its images are read trains nothing and says where the run stands.
    const early = new StopSignal();
    early.request();
    const untouched = fs.readFileSync(path.join(stopped.runDir, 'metrics.jsonl'), 'utf8');
    assert.deepStrictEqual(await resumeTraining({ runDir: stopped.runDir }, () => undefined, early),
      message({ type: 'done', status: 'stopped', step: 4, epoch: 1, runDir: stopped.runDir }));
    assert.strictEqual(fs.readFileSync(path.join(stopped.runDir, 'metrics.jsonl'), 'utf8'), untouched);
    const resumed = await resumeTraining({ runDir: stopped.runDir }, collect(messages), new StopSignal());
    assert.strictEqual(resumed.status, 'completed');
    assert.strictEqual(resumed.step, straight.step);

    const a = await finalWeights(straight.runDir);
    const b = await finalWeights(resumed.runDir);
    const maxDiff = Math.max(...a.map((w, i) => Math.max(...w.map((x, j) => Math.abs(x - b[i][j])))));
    assert.ok(maxDiff < 1e-4, `weights differ by ${maxDiff}`);

    const steps = readMetrics(resumed.runDir).filter((r) => r.kind === 'step').map((r) => r.step);
    assert.deepStrictEqual(steps, [1, 2, 3, 4, 5, 6], 'every step once, in order');
    const epochs = readMetrics(resumed.runDir).filter((r) => r.kind === 'epoch').map((r) => r.epoch);
    assert.deepStrictEqual(epochs, [1, 2]);

    // Nothing left to train: refused with what to do, and the run stays completed.
    await assert.rejects(resumeTraining({ runDir: resumed.runDir, epochs: 2 }, () => undefined, new StopSignal()),
      /has already trained 2 epochs \(step 6\): resume it with more epochs/);
    assert.strictEqual(readStatus(resumed.runDir).status, 'completed');
  });

  it('stops on a non-finite loss with a clear message and keeps the last good checkpoint', async () => {
    const folder = await makeFolder(16);
    folders.push(folder);
    const messages: EngineMessage[] = [];
    await assert.rejects(
      startTraining({ folder, config: resolveConfig('tiny', { ...SMALL, epochs: 30, baseLr: 1e30 })}, collect(messages), new StopSignal()),
      /Loss became NaN at step \d+ .*training stopped/);
    const runDir = listRuns(path.join(folder, '.simsiam', 'runs'))[0];
    const status = readStatus(runDir);
    assert.strictEqual(status.status, 'failed');
    assert.match(status.message ?? '', /Lower the learning rate/);
    const pointer = readCheckpointPointer(runDir);
    if (pointer) {
      const checkpoint = await loadCheckpoint(runDir);
      const finite = checkpoint!.model.getWeights().every((w) => w.dataSync().every(Number.isFinite));
      assert.ok(finite, 'the kept checkpoint has no NaN weights');
      checkpoint!.model.dispose();
    }
  });

  it('refuses an empty folder and a folder smaller than one batch, before building a model', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-empty-'));
    folders.push(empty);
    await assert.rejects(startTraining({ folder: empty, config: resolveConfig('tiny', SMALL) }, () => undefined, new StopSignal()),
      (error: Error) => error.message.includes(empty) && /no images/i.test(error.message));
    const small = await makeFolder(3);
    folders.push(small);
    await assert.rejects(startTraining({ folder: small, config: resolveConfig('tiny', SMALL) }, () => undefined, new StopSignal()),
      /fewer than one batch of 8: add images or lower the batch size/);
    assert.strictEqual(fs.existsSync(path.join(small, '.simsiam')), false, 'no run folder was created');
  });

  it('counts only images that decode: a folder of mostly broken files is refused before training, naming the count and the field', async () => {
    // 2 classes × 2 readable images, 38 broken files: 4 of 42, fewer than a batch of 8.
    const folder = await makeFolder(2, (root) => {
      for (let i = 0; i < 38; i++) fs.writeFileSync(path.join(root, i % 2 ? 'dots' : 'stripes', `broken-${i}.png`), 'not a png');
    });
    folders.push(folder);
    const messages: EngineMessage[] = [];
    const holdout = { ...SMALL, testFraction: 0 };
    await assert.rejects(startTraining({ folder, config: resolveConfig('tiny', holdout) }, collect(messages), new StopSignal()),
      (error: TrainingError) => /has 4 of 42 training image files that could be read, fewer than one batch of 8/.test(error.message) &&
        error.field === 'batchSize');
    assert.strictEqual(messages.filter((m) => m.type === 'warning' && /broken-\d+\.png/.test(m.message)).length, 38, 'each broken file named once');
    const decoded = messages.filter((m) => m.type === 'progress' && m.task === 'decode');
    assert.deepStrictEqual(decoded.at(-1), message({ type: 'progress', task: 'decode', done: 42, total: 42 }));
    assert.strictEqual(fs.existsSync(path.join(folder, '.simsiam')), false, 'no run folder was created');
  });

  it('refuses an image size at which not even two images fit the wasm heap, naming the size that fits', async () => {
    const folder = await makeFolder(8);
    folders.push(folder);
    let refusal: TrainingError | undefined;
    const config = resolveConfig('tiny', { ...SMALL, batchSize: 8, epochs: 1, backend: 'wasm', imageSize: 1024 });
    await assert.rejects(startTraining({ folder, config }, () => undefined, new StopSignal()),
      (error: TrainingError) => (refusal = error) !== undefined);
    assert.strictEqual(refusal!.field, 'imageSize', refusal!.message);
    const largest = Number(/even a training step of 2 images per thread .* the largest image size that fits is about (\d+) px/.exec(refusal!.message)?.[1]);
    assert.ok(largest >= 64 && largest < 1024, refusal!.message);
    assert.strictEqual(fs.existsSync(path.join(folder, '.simsiam')), false, 'no run folder was created');
  });

  it('trains a batch too large for the wasm heap in micro-batches sized from the measured heap', async () => {
    // At 256 px a thread's 16 images of this model need about 4 GiB, more than a wasm heap
    // (about 12 fit): measured, split into 8 + 8, and trained at the configured batch of 32.
    const folder = await makeFolder(18);
    folders.push(folder);
    const messages: EngineMessage[] = [];
    const config = resolveConfig('tiny', { ...SMALL, batchSize: 32, epochs: 1, backend: 'wasm', imageSize: 256, testFraction: 0 });
    const done = await startTraining({ folder, config }, collect(messages), new StopSignal());
    assert.strictEqual(done.status, 'completed');
    const started = messages.find((m): m is StartedMessage => m.type === 'started')!;
    const microBatch = Number(/micro-batches of (\d+)/.exec(started.backend)?.[1]);
    assert.ok(microBatch >= 2 && microBatch < 16, started.backend);
    assert.ok(messages.some((m) => m.type === 'warning' && new RegExp(`micro-batches of at most ${microBatch}\\b`).test(m.message)),
      JSON.stringify(messages.filter((m) => m.type === 'warning')));
    assert.strictEqual(readRun(done.runDir).config.batchSize, 32, 'the batch is the one asked for');
  });

  it('sizes an epoch by the images that decode, not by the files found', async () => {
    // 20 readable + 4 broken with batch 8: 2 steps per epoch (3 if the broken ones counted).
    const folder = await makeFolder(10, (root) => {
      for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(root, 'dots', `broken-${i}.png`), 'not a png');
    });
    folders.push(folder);
    const messages: EngineMessage[] = [];
    const done = await startTraining({ folder, config: resolveConfig('tiny', { ...SMALL, epochs: 1, testFraction: 0 }) },
      collect(messages), new StopSignal());
    const started = messages.find((m): m is StartedMessage => m.type === 'started')!;
    assert.deepStrictEqual([started.batchesPerEpoch, started.dataset.trainImages, done.step], [2, 20, 2]);
    assert.ok(messages.some((m) => m.type === 'warning' && /training on 20 of 24 training image files that could be read/.test(m.message)));
  });

  it('skips an undecodable file with one warning naming it, and trains on', async () => {
    const folder = await makeFolder(16, (root) => fs.writeFileSync(path.join(root, 'dots', 'broken.png'), 'not a png'));
    folders.push(folder);
    const messages: EngineMessage[] = [];
    const done = await startTraining({ folder, config: resolveConfig('tiny', { ...SMALL, epochs: 1 })}, collect(messages), new StopSignal());
    assert.strictEqual(done.status, 'completed');
    const warnings = messages.filter((m) => m.type === 'warning' && m.message.includes('broken.png'));
    assert.strictEqual(warnings.length, 1, JSON.stringify(warnings));
    const epoch = readMetrics(done.runDir).find((r) => r.kind === 'epoch');
    assert.strictEqual(epoch?.kind === 'epoch' && epoch.skippedFiles, 1);
    const waited = epoch?.kind === 'epoch' ? epoch.loaderWaitSeconds : undefined;
    assert.ok(waited !== undefined && waited >= 0 && waited <= epoch!.seconds, `loader wait ${waited} of the epoch's seconds`);
  });
});
