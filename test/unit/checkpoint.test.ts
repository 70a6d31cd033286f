// Issue 11: a checkpoint on disk is data, not trust. Each test damages a real checkpoint written by
// saveCheckpoint the way a crash, a full disk, a bad sector or a diverged run would, and expects a
// CheckpointError that names the file and says what to do — never a TypeError, a tfjs shape error
// or a model that loads with wrong values.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { resolveConfig } from '../../src/training/config';
import { StopSignal, resumeTraining, startTraining } from '../../src/training/trainer';
import { buildSimSiam } from '../../src/training/model/simsiam';
import {
  CheckpointError, lastGoodCheckpoint, loadCheckpoint, loadLastGoodCheckpoint, loadModel, removeStaleTemporaries, saveCheckpoint,
  type LoadedCheckpoint,
} from '../../src/training/run/checkpoint';
import { readCheckpointPointer, readStatus, writeJsonAtomic, RUN_FILE } from '../../src/training/run/runStore';
import type { EngineMessage, StartedMessage } from '../../src/training/protocol';
import { processStartTime, RUN_LOCK_FILES } from '../../src/training/run/runLock';

const CONFIG = resolveConfig('tiny', { imageSize: 16, widthMultiplier: 0.125, projectorDim: 32, predictorHiddenDim: 8 });

const name = (step: number) => `step-${String(step).padStart(8, '0')}`;
const folderOf = (runDir: string, step: number) => path.join(runDir, 'checkpoints', name(step));

type Spec = { name: string; shape: number[]; dtype: string };
type Json = Record<string, any>;

const readJsonFile = (file: string): Json => JSON.parse(fs.readFileSync(file, 'utf8'));
function editJson(file: string, edit: (json: Json) => void): void {
  const json = readJsonFile(file);
  edit(json);
  fs.writeFileSync(file, JSON.stringify(json));
}

/** Offset (in float32 values) of the weight `index` of `specs`. */
const offsetOf = (specs: Spec[], index: number) => specs.slice(0, index).reduce((n, s) => n + s.shape.reduce((a, d) => a * d, 1), 0);

function writeFloat(file: string, at: number, value: number): void {
  const bytes = fs.readFileSync(file);
  bytes.writeFloatLE(value, at * 4);
  fs.writeFileSync(file, bytes);
}

function dispose(loaded: LoadedCheckpoint | null): void {
  if (!loaded) return;
  loaded.model.dispose();
  tf.dispose(Object.values(loaded.optimizerState));
}

/** Momentum buffers like the trainer's: one per trainable weight, under its original name, distinct values. */
function momentumOf(model: tf.LayersModel): Record<string, tf.Tensor> {
  return Object.fromEntries(model.trainableWeights.map((w, i) => [w.originalName, tf.fill(w.shape as number[], 0.001 * (i + 1))]));
}

/** Rejects with a CheckpointError whose message names `file` and matches `problem`. */
async function assertRefused(promise: Promise<unknown>, file: string, problem: RegExp): Promise<CheckpointError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof CheckpointError, `expected a CheckpointError, got ${caught instanceof Error ? `${caught.name}: ${caught.message}` : caught}`);
  assert.ok(caught.message.includes(file), `names ${file}: ${caught.message}`);
  assert.match(caught.message, problem);
  return caught;
}

const EARLIER = /Resume the run to continue from the checkpoint before it \(checkpoints.step-00000005\), or start a new run\./;

describe('checkpoint files are checked when read', function () {
  this.timeout(60_000);
  const folders: string[] = [];
  /** A run folder with two checkpoints, step 5 (epoch 1) and step 10 (epoch 2), copied afresh for each test. */
  let template: string;
  let runDir: string;
  let latest: string;

  before(async () => {
    await tf.ready();
    template = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-ckpt-template-'));
    folders.push(template);
    const model = buildSimSiam(CONFIG);
    const state = momentumOf(model);
    await saveCheckpoint(template, model, state, 5, 1);
    await saveCheckpoint(template, model, state, 10, 2);
    tf.dispose(Object.values(state));
    model.dispose();
  });

  beforeEach(() => {
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-ckpt-'));
    folders.push(runDir);
    fs.cpSync(template, runDir, { recursive: true });
    latest = folderOf(runDir, 10);
  });

  after(() => folders.forEach((f) => fs.rmSync(f, { recursive: true, force: true })));

  const weightSpecs = () => readJsonFile(path.join(latest, 'model.json')).weightsManifest[0].weights as Spec[];
  const momentumSpecs = () => readJsonFile(path.join(latest, 'optimizer.json')).specs as Spec[];
  const pointer = () => readCheckpointPointer(runDir)!;

  it('loads an intact checkpoint, with the checksums it was written with', async () => {
    const loaded = await loadCheckpoint(runDir);
    assert.ok(loaded);
    assert.deepStrictEqual([loaded.step, loaded.epoch, loaded.imageSize], [10, 2, 16]);
    assert.strictEqual(Object.keys(loaded.optimizerState).length, loaded.model.trainableWeights.length);
    dispose(loaded);
    assert.match(readJsonFile(path.join(latest, 'model.json')).userDefinedMetadata.weightsSha256, /^[0-9a-f]{64}$/);
    assert.match(readJsonFile(path.join(latest, 'optimizer.json')).sha256, /^[0-9a-f]{64}$/);
  });

  it('refuses a truncated weights.bin, naming it and the checkpoint to go back to', async () => {
    const file = path.join(latest, 'weights.bin');
    fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
    const error = await assertRefused(loadCheckpoint(runDir), file, /holds \d+ bytes where model.json describes \d+/);
    assert.match(error.message, EARLIER);
    await assertRefused(loadModel(runDir, pointer()), file, /holds \d+ bytes/);
  });

  it('refuses a missing weights.bin', async () => {
    const file = path.join(latest, 'weights.bin');
    fs.rmSync(file);
    await assertRefused(loadCheckpoint(runDir), file, /is missing/);
  });

  it('refuses non-finite weights by the name of the weight, for training and for embedding', async () => {
    const specs = weightSpecs();
    const index = specs.length - 3;
    writeFloat(path.join(latest, 'weights.bin'), offsetOf(specs, index) + 1, NaN);
    const file = path.join(latest, 'weights.bin');
    const pattern = new RegExp(`holds NaN in weight "${specs[index].name}"`);
    await assertRefused(loadCheckpoint(runDir), file, pattern);
    await assertRefused(loadModel(runDir, pointer()), file, pattern);
    writeFloat(file, 0, -Infinity);
    await assertRefused(loadCheckpoint(runDir), file, new RegExp(`holds -Infinity in weight "${specs[0].name}"`));
  });

  it('refuses a weights.bin whose bytes changed on disk (zero-filled) by its checksum', async () => {
    const file = path.join(latest, 'weights.bin');
    fs.writeFileSync(file, Buffer.alloc(fs.statSync(file).size));
    await assertRefused(loadCheckpoint(runDir), file, /does not match the checksum it was written with/);
    await assertRefused(loadModel(runDir, pointer()), file, /does not match the checksum/);
  });

  it('refuses a garbled model.json, whatever is wrong with it', async () => {
    const file = path.join(latest, 'model.json');
    const original = fs.readFileSync(file, 'utf8');
    const cases: [string, (json: Json) => void, RegExp][] = [
      ['a weight without a shape', (json) => delete json.weightsManifest[0].weights[2].shape, /field "weightsManifest\.0\.weights\.2\.shape"/],
      ['a weight file outside the folder', (json) => { json.weightsManifest[0].paths = ['../../secrets.bin']; }, /field "weightsManifest\.0\.paths\.0"/],
      ['no topology', (json) => { json.modelTopology = null; }, /field "modelTopology"/],
      ['a topology that builds nothing', (json) => { json.modelTopology = { model_config: { class_name: 'Nothing' } }; }, /does not describe a model its weights fit/],
      ['a weight listed twice', (json) => { json.weightsManifest[0].weights[1].name = json.weightsManifest[0].weights[0].name; }, /describes weight ".*" twice/],
      ['a kernel with its shape transposed', (json) => {
        const kernel = (json.weightsManifest[0].weights as Spec[]).find((s) => s.shape.length === 2 && s.shape[0] !== s.shape[1])!;
        kernel.shape.reverse();
      }, /does not describe a model its weights fit/],
    ];
    for (const [what, edit, pattern] of cases) {
      fs.writeFileSync(file, original);
      editJson(file, edit);
      await assertRefused(loadCheckpoint(runDir), file, pattern).catch((error: Error) => assert.fail(`${what}: ${error.message}`));
    }
    fs.writeFileSync(file, original.slice(0, 200));
    await assertRefused(loadCheckpoint(runDir), file, /is not JSON/);
  });

  it('refuses optimizer state that does not match the model\'s trainable weights', async () => {
    const meta = path.join(latest, 'optimizer.json');
    const bin = path.join(latest, 'optimizer.bin');
    const original = { meta: fs.readFileSync(meta), bin: fs.readFileSync(bin) };
    const specs = momentumSpecs();
    const last = specs[specs.length - 1];
    const lastBytes = last.shape.reduce((a, d) => a * d, 1) * 4;

    // An entry dropped with its bytes (and the checksum, as in a checkpoint written before checksums).
    editJson(meta, (json) => { json.specs.pop(); delete json.sha256; });
    fs.writeFileSync(bin, original.bin.subarray(0, original.bin.length - lastBytes));
    await assertRefused(loadCheckpoint(runDir), meta, new RegExp(`has no momentum for the trainable weight "${last.name}"`));

    // The same entry under another name.
    fs.writeFileSync(bin, original.bin);
    fs.writeFileSync(meta, original.meta);
    editJson(meta, (json) => { json.specs[json.specs.length - 1].name = 'nobody/kernel'; delete json.sha256; });
    await assertRefused(loadCheckpoint(runDir), meta, new RegExp(`has no momentum for the trainable weight "${last.name}"`));

    // A shape that holds the same number of values.
    fs.writeFileSync(meta, original.meta);
    editJson(meta, (json) => { const spec = json.specs[json.specs.length - 1]; spec.shape = [1, ...spec.shape]; delete json.sha256; });
    await assertRefused(loadCheckpoint(runDir), meta, new RegExp(`gives momentum "${last.name}" the shape \\[1,${last.shape}\\]`));

    // Too few bytes for the specs.
    fs.writeFileSync(meta, original.meta);
    fs.writeFileSync(bin, original.bin.subarray(0, 100));
    await assertRefused(loadCheckpoint(runDir), bin, /holds 100 bytes/);

    // A NaN momentum, by name.
    fs.writeFileSync(bin, original.bin);
    writeFloat(bin, offsetOf(specs, 3), NaN);
    await assertRefused(loadCheckpoint(runDir), bin, new RegExp(`holds NaN in momentum "${specs[3].name}"`));

    // Another step than the one checkpoint.json names.
    fs.writeFileSync(bin, original.bin);
    editJson(meta, (json) => { json.epoch = 7; });
    await assertRefused(loadCheckpoint(runDir), meta, /is for step 10, epoch 7, but checkpoint.json says step 10, epoch 2/);
  });

  it('refuses a checkpoint.json that names a folder outside the run\'s checkpoints', async () => {
    const file = path.join(runDir, 'checkpoint.json');
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-outside-'));
    folders.push(outside);
    fs.cpSync(latest, outside, { recursive: true });
    for (const dir of [path.relative(runDir, outside), outside, path.join('checkpoints', name(5))]) {
      writeJsonAtomic(file, { dir, step: 10, epoch: 2 });
      await assertRefused(loadCheckpoint(runDir), file, /names ".*" for step 10, not checkpoints.step-00000010/);
      await assertRefused(loadModel(runDir, pointer()), file, /names/);
    }
  });

  it('does not write a checkpoint of non-finite weights: the previous one stays the latest', async () => {
    const model = buildSimSiam(CONFIG);
    const weight = model.trainableWeights[4];
    weight.write(tf.fill(weight.shape as number[], NaN));
    const state = momentumOf(model);
    try {
      await assert.rejects(saveCheckpoint(runDir, model, state, 15, 3),
        (error: Error) => error.message.includes(path.join(runDir, 'checkpoints')) &&
          error.message.includes(`holds NaN in weight "${weight.originalName}"`) && /previous checkpoint is kept/.test(error.message));
    } finally {
      tf.dispose(Object.values(state));
      model.dispose();
    }
    assert.strictEqual(pointer().step, 10);
    assert.deepStrictEqual(fs.readdirSync(path.join(runDir, 'checkpoints')).sort(), [name(5), name(10)]);
  });

  it('names as the last good checkpoint only one that loads with finite values, and makes it the current one', async () => {
    assert.deepStrictEqual(await lastGoodCheckpoint(runDir), pointer(), 'an intact latest checkpoint is the last good one');
    assert.strictEqual(pointer().step, 10);

    const specs = weightSpecs();
    writeFloat(path.join(latest, 'weights.bin'), offsetOf(specs, 1), NaN);
    const refused: CheckpointError[] = [];
    const good = await lastGoodCheckpoint(runDir, (error) => refused.push(error));
    assert.deepStrictEqual(good, { dir: path.join('checkpoints', name(5)), step: 5, epoch: 1 });
    assert.deepStrictEqual(pointer(), good, 'checkpoint.json now names the good one, so a resume continues from it');
    assert.strictEqual(refused.length, 1);
    assert.ok(refused[0].message.includes(path.join(latest, 'weights.bin')) && refused[0].message.includes('NaN'), refused[0].message);
    const loaded = await loadCheckpoint(runDir);
    assert.strictEqual(loaded?.step, 5);
    dispose(loaded);

    fs.truncateSync(path.join(folderOf(runDir, 5), 'optimizer.bin'), 8);
    assert.strictEqual(await lastGoodCheckpoint(runDir), null, 'no checkpoint is intact');
    await assertRefused(loadLastGoodCheckpoint(runDir, () => undefined), path.join(folderOf(runDir, 5), 'optimizer.bin'),
      /No checkpoint of .* can be used: .*holds 8 bytes.* Start a new run\./);
  });

  /** A run of 2 epochs of 3 steps on 24 small images: checkpoints at steps 3 and 6. */
  async function trainedRun(): Promise<string> {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-trained-'));
    folders.push(folder);
    for (let i = 0; i < 24; i++) {
      const pixels = Buffer.from(Array.from({ length: 12 * 12 * 3 }, (_, j) => (j * (i + 3) * 7) % 256));
      await sharp(pixels, { raw: { width: 12, height: 12, channels: 3 } }).png().toFile(path.join(folder, `${i}.png`));
    }
    const config = resolveConfig('tiny', { imageSize: 16, batchSize: 8, widthMultiplier: 0.125, projectorDim: 32, predictorHiddenDim: 8, epochs: 2 });
    const { runDir: trained } = await startTraining({ folder, config }, () => undefined, new StopSignal());
    assert.deepStrictEqual(readCheckpointPointer(trained), { dir: path.join('checkpoints', name(6)), step: 6, epoch: 2 });
    return trained;
  }

  it('a resume refuses a damaged latest checkpoint by name and continues from the one before it', async () => {
    const trained = await trainedRun();
    const weights = path.join(folderOf(trained, 6), 'weights.bin');
    writeFloat(weights, 10, NaN);
    const messages: EngineMessage[] = [];
    const done = await resumeTraining({ runDir: trained, epochs: 3 }, (m) => messages.push(m), new StopSignal());
    const warnings = messages.flatMap((m) => (m.type === 'warning' ? [m.message] : []));
    assert.ok(warnings.some((w) => w.includes(weights) && /holds NaN in weight/.test(w)), `warnings: ${JSON.stringify(warnings)}`);
    assert.strictEqual(messages.find((m): m is StartedMessage => m.type === 'started')?.startStep, 3);
    assert.deepStrictEqual([done.status, done.step], ['completed', 9]);
  });

  it('the NaN-loss rollback names as the last good checkpoint an intact one, not the damaged latest', async () => {
    const trained = await trainedRun();
    // Resumed at a learning rate that diverges at once; meanwhile a bad sector zeroes the latest checkpoint's weights.
    const runFile = path.join(trained, RUN_FILE);
    const record = readJsonFile(runFile);
    writeJsonAtomic(runFile, { ...record, config: { ...record.config, baseLr: 1e30 } });
    const weights = path.join(folderOf(trained, 6), 'weights.bin');
    await assert.rejects(resumeTraining({ runDir: trained, epochs: 4 }, (m) => {
      if (m.type === 'started') fs.writeFileSync(weights, Buffer.alloc(fs.statSync(weights).size));
    }, new StopSignal()), /Loss became NaN at step \d+ .*The last good checkpoint \(step 3\) is kept/);
    assert.strictEqual(readCheckpointPointer(trained)?.step, 3, 'a resume continues from the good one');
    assert.match(readStatus(trained).message ?? '', /last good checkpoint \(step 3\)/);
  });

  it('falls back to the newest intact checkpoint when checkpoint.json itself is garbled', async () => {
    fs.writeFileSync(path.join(runDir, 'checkpoint.json'), '{"dir": 12');
    const refused: string[] = [];
    const loaded = await loadLastGoodCheckpoint(runDir, (error) => refused.push(error.message));
    assert.strictEqual(loaded?.step, 10);
    dispose(loaded);
    assert.ok(refused.length === 1 && refused[0].includes(path.join(runDir, 'checkpoint.json')), refused.join('\n'));
    assert.strictEqual(pointer().step, 10, 'checkpoint.json is written again');
  });

  it('uses the checkpoint folder on disk when a crash came before checkpoint.json named it', async () => {
    fs.rmSync(path.join(runDir, 'checkpoint.json'));
    const loaded = await loadLastGoodCheckpoint(runDir, () => undefined);
    assert.strictEqual(loaded?.step, 10);
    dispose(loaded);
    assert.strictEqual(pointer().step, 10, 'checkpoint.json is written');
  });

  describe('half-written checkpoints', () => {
    const children: ChildProcess[] = [];
    after(() => children.forEach((child) => child.kill()));

    function liveProcess(): number {
      const child = spawn('sleep', ['60'], { stdio: 'ignore' });
      children.push(child);
      return child.pid!;
    }

    const deadProcess = () => spawnSync('true').pid;

    function plantTemporary(step: number, pid: number): string {
      const dir = path.join(runDir, 'checkpoints', `.tmp-${name(step)}-${pid}`);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.alloc(1000));
      return dir;
    }

    /** The run's training lock, held by `pid`, as runLock.ts writes it. */
    function lockFor(pid: number): void {
      const started = processStartTime(pid);
      fs.writeFileSync(path.join(runDir, RUN_LOCK_FILES.training), JSON.stringify({
        pid, host: os.hostname(), since: new Date().toISOString(), activity: 'training', token: 'test', ...(started ? { started } : {}),
      }));
    }

    it('removes those of processes that are gone, and of this one when it is not writing them', () => {
      const dead = plantTemporary(15, deadProcess());
      const mine = plantTemporary(20, process.pid);
      const other = path.join(runDir, 'checkpoints', 'notes.txt');
      fs.writeFileSync(other, 'kept');
      removeStaleTemporaries(runDir);
      assert.ok(!fs.existsSync(dead) && !fs.existsSync(mine));
      assert.deepStrictEqual(fs.readdirSync(path.join(runDir, 'checkpoints')).sort(), ['notes.txt', name(5), name(10)]);
    });

    it('keeps the one a live process holding the run\'s training lock is writing', () => {
      const writer = liveProcess();
      lockFor(writer);
      const writing = plantTemporary(15, writer);
      removeStaleTemporaries(runDir);
      assert.ok(fs.existsSync(writing), 'the lock holder\'s checkpoint in progress stays');
    });

    it('removes that of a live process that does not hold the lock (its writer\'s pid, reused)', () => {
      lockFor(process.pid);
      const reused = plantTemporary(15, liveProcess());
      removeStaleTemporaries(runDir);
      assert.ok(!fs.existsSync(reused));
    });

    it('saveCheckpoint clears leftovers and leaves a live writer\'s temporary alone', async () => {
      const writer = liveProcess();
      lockFor(writer);
      const writing = plantTemporary(15, writer);
      const dead = plantTemporary(12, deadProcess());
      const model = buildSimSiam(CONFIG);
      const state = momentumOf(model);
      try {
        await saveCheckpoint(runDir, model, state, 20, 4);
      } finally {
        tf.dispose(Object.values(state));
        model.dispose();
      }
      assert.ok(fs.existsSync(writing), 'a live writer\'s temporary stays');
      assert.ok(!fs.existsSync(dead), 'a dead writer\'s temporary goes');
    });
  });
});
