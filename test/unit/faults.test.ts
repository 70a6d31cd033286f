// Issue 6, faults: a trainer killed without warning leaves a run that shows as interrupted and
// resumes from its last checkpoint with a gap-free, duplicate-free history; a write that fails
// (full disk) keeps the previous checkpoint or index usable and says where it failed.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { fork } from 'child_process';
// The module object itself: `import * as` gives a read-only view of it, and the engine reads
// writeFileSync from it at each call, so replacing it here reaches the engine's writes.
import nodeFs = require('fs');
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/training/tfjs/backend';
import { StopSignal, startTraining, resumeTraining } from '../../src/training/trainer';
import { loadCheckpoint } from '../../src/training/run/checkpoint';
import { listRuns, readCheckpointPointer, readMetrics, readStatus } from '../../src/training/run/runStore';
import { resolveConfig } from '../../src/training/config';
import { INDEX_DIR, loadIndex } from '../../src/training/retrieval/embeddingIndex';
import { embedRun } from '../../src/training/retrieval/service';
import { message, type EngineMessage, type EpochRecord, type StartedMessage } from '../../src/training/protocol';
import { Rng } from '../../src/training/data/rng';

/** A model small enough to step in milliseconds, with every component of the real one. */
const SMALL = { imageSize: 16, batchSize: 8, widthMultiplier: 0.125, projectorDim: 32, predictorHiddenDim: 8, backend: 'wasm' };

const ENGINE_PROCESS = path.join(__dirname, '..', '..', 'src', 'training', 'engineProcess.js');

async function writeImage(file: string, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const pixels = Buffer.from(Array.from({ length: 20 * 20 * 3 }, (_, i) => (i * 7 + rng.uniform(0, 120) + seed * 13) % 256));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(pixels, { raw: { width: 20, height: 20, channels: 3 } }).png().toFile(file);
}

/** Two class folders of `perClass` distinct images each. */
async function makeFolder(perClass: number): Promise<string> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-faults-'));
  for (const [c, name] of ['a', 'b'].entries()) {
    for (let i = 0; i < perClass; i++) await writeImage(path.join(root, name, `${i}.png`), c * 1000 + i);
  }
  return root;
}

const stepsOf = (messages: EngineMessage[]) => messages.flatMap((m) => (m.type === 'metric' && m.record.kind === 'step' ? [m.record.step] : []));
const isRecord = (m: EngineMessage, kind: 'step' | 'epoch') => m.type === 'metric' && m.record.kind === kind;

/** The history a complete run of `epochs` × `batchesPerEpoch` steps must have: each step and epoch once, in order. */
function assertCompleteHistory(runDir: string, epochs: number, batchesPerEpoch: number): void {
  const records = readMetrics(runDir);
  const steps = records.filter((r) => r.kind === 'step').map((r) => r.step);
  assert.deepStrictEqual(steps, Array.from({ length: epochs * batchesPerEpoch }, (_, i) => i + 1), 'every step once, in order');
  const epochRecords = records.filter((r): r is EpochRecord => r.kind === 'epoch');
  assert.deepStrictEqual(epochRecords.map((r) => r.epoch), Array.from({ length: epochs }, (_, i) => i + 1), 'every epoch once, in order');
  assert.deepStrictEqual(epochRecords.map((r) => r.step), epochRecords.map((r) => r.epoch * batchesPerEpoch));
  assert.deepStrictEqual(records.filter((r) => r.kind === 'eval').map((r) => r.step), [0], 'one baseline evaluation, before the first step');
}

/** An error shaped like the kernel's answer to write(2) on a full disk: it names no file. */
function diskFull(): NodeJS.ErrnoException {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
}

/**
 * Makes the next write to `file` (by writeFileAtomic, which fills a new `<file>.tmp-…` first) fail
 * with a real ENOSPC: that temporary is opened as /dev/full instead. The fault strikes once.
 */
function failNextAtomicWrite(file: string): void {
  const realOpenSync = nodeFs.openSync;
  nodeFs.openSync = function (target: fs.PathLike, ...rest: unknown[]) {
    if (typeof target !== 'string' || !target.startsWith(`${file}.tmp-`)) return (realOpenSync as (...args: unknown[]) => number)(target, ...rest);
    nodeFs.openSync = realOpenSync;
    return realOpenSync('/dev/full', 'w');
  } as typeof fs.openSync;
}

describe('faults', function () {
  this.timeout(60_000);
  const folders: string[] = [];

  /** 10 % held out: 86 training images, 10 steps per epoch, so a kill after a few steps lands mid-epoch. */
  let killFolder: string;

  before(async () => {
    await selectBackend('wasm');
    killFolder = await makeFolder(48);
    folders.push(killFolder);
  });
  after(() => folders.forEach((f) => fs.rmSync(f, { recursive: true, force: true })));

  /**
   * Trains in an engine process and SIGKILLs it when `killNow` says so; then checks the run shows
   * as interrupted, resumes from its last checkpoint and ends with every step and epoch once.
   * Returns the step of the checkpoint it resumed from and the run's steps per epoch.
   */
  async function killThenResume(killNow: (m: EngineMessage) => boolean): Promise<{ resumedFrom: number; batchesPerEpoch: number; lastStepSeen: number }> {
    const epochs = 3;
    const child = fork(ENGINE_PROCESS, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const seen: EngineMessage[] = [];
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.on('message', (m: EngineMessage) => {
      seen.push(m);
      if (killNow(m)) child.kill('SIGKILL');
      if (m.type === 'done' || m.type === 'error') child.disconnect();
    });
    child.send(message({ type: 'train', folder: killFolder, config: resolveConfig('tiny', { ...SMALL, epochs }) }));
    assert.strictEqual(await exited, 'SIGKILL', `the trainer was killed, not finished: ${JSON.stringify(seen.filter((m) => !isRecord(m, 'step')))} ${stderr}`);

    const { runDir, batchesPerEpoch } = seen.find((m): m is StartedMessage => m.type === 'started')!;
    assert.strictEqual(readStatus(runDir).status, 'interrupted');
    const pointer = readCheckpointPointer(runDir);
    assert.ok(pointer && pointer.step > 0 && pointer.step % batchesPerEpoch === 0, `an end-of-epoch checkpoint: ${JSON.stringify(pointer)}`);
    assert.ok(pointer.step < epochs * batchesPerEpoch);

    // A kill during a checkpoint write leaves the half-written temporary folder of a process that
    // no longer exists; the kill above lands there only by chance, so such a leftover is planted.
    const leftover = path.join(runDir, 'checkpoints', `.tmp-step-${String(pointer.step + batchesPerEpoch).padStart(8, '0')}-${child.pid}`);
    fs.mkdirSync(leftover, { recursive: true });
    fs.writeFileSync(path.join(leftover, 'weights.bin'), Buffer.alloc(1000));

    const messages: EngineMessage[] = [];
    const done = await resumeTraining({ runDir }, (m) => messages.push(m), new StopSignal());
    const resumed = messages.find((m): m is StartedMessage => m.type === 'started')!;
    assert.strictEqual(resumed.startStep, pointer.step, 'resumes from the last checkpoint');
    assert.strictEqual(stepsOf(messages)[0], pointer.step + 1);
    assert.strictEqual(done.status, 'completed');
    assert.strictEqual(done.step, epochs * batchesPerEpoch);
    assert.strictEqual(readStatus(runDir).status, 'completed');
    assertCompleteHistory(runDir, epochs, batchesPerEpoch);
    const checkpoints = fs.readdirSync(path.join(runDir, 'checkpoints'));
    assert.deepStrictEqual(checkpoints.filter((name) => !name.startsWith('step-')), [], 'no half-written checkpoint outlives the resumed run');
    return { resumedFrom: pointer.step, batchesPerEpoch, lastStepSeen: Math.max(...stepsOf(seen)) };
  }

  it('kill -9 mid-epoch: the run shows as interrupted and resumes from its last checkpoint with a gap-free history', async () => {
    let checkpointed = false;
    let stepsSinceCheckpoint = 0;
    const { lastStepSeen, batchesPerEpoch } = await killThenResume((m) => {
      if (m.type === 'checkpoint') checkpointed = true;
      return isRecord(m, 'step') && checkpointed && ++stepsSinceCheckpoint === 3;
    });
    assert.ok(lastStepSeen % batchesPerEpoch !== 0, `killed mid-epoch (last step seen ${lastStepSeen} of ${batchesPerEpoch} per epoch)`);
  });

  it('kill -9 between an epoch\'s metrics and its checkpoint: the resumed history drops the uncheckpointed records', async () => {
    // The epoch message follows the metrics flush and precedes the checkpoint write; the kill
    // usually lands first (then the flushed records of epoch 2 outlive their checkpoint), and the
    // history must come out the same either way.
    let epochsSeen = 0;
    const { resumedFrom, batchesPerEpoch } = await killThenResume((m) => isRecord(m, 'epoch') && ++epochsSeen === 2);
    assert.ok([batchesPerEpoch, 2 * batchesPerEpoch].includes(resumedFrom), `resumed from step ${resumedFrom}`);
  });

  /**
   * Trains in an engine process with one training thread, and asks it to stop (`how`) once the
   * first step is reported; returns that step and where the run stopped.
   */
  async function stopAfterFirstStep(how: (child: ReturnType<typeof fork>) => void): Promise<{ first: number; done: EngineMessage | undefined; status: string }> {
    const child = fork(ENGINE_PROCESS, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const seen: EngineMessage[] = [];
    let first = -1;
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    child.on('message', (m: EngineMessage) => {
      seen.push(m);
      if (first < 0 && isRecord(m, 'step')) {
        first = stepsOf([m])[0];
        how(child);
      }
      if ((m.type === 'done' || m.type === 'error') && child.connected) child.disconnect();
    });
    child.send(message({ type: 'train', folder: killFolder, config: resolveConfig('tiny', { ...SMALL, epochs: 1, replicas: 1 }) }));
    await exited;
    const started = seen.find((m): m is StartedMessage => m.type === 'started')!;
    return { first, done: seen.find((m) => m.type === 'done' || m.type === 'error'), status: readStatus(started.runDir).status };
  }

  it('a stop request lands within a step with one training thread, by message and by SIGTERM', async () => {
    for (const [how, stop] of [
      ['stop message', (child: ReturnType<typeof fork>) => child.send(message({ type: 'stop' }))],
      ['SIGTERM', (child: ReturnType<typeof fork>) => child.kill('SIGTERM')],
    ] as const) {
      const { first, done, status } = await stopAfterFirstStep(stop);
      assert.ok(done?.type === 'done' && done.status === 'stopped', `${how}: ${JSON.stringify(done)}`);
      // The request arrives while step first + 1 may already be running; it must not wait for the epoch's 10 steps.
      assert.ok(done.step <= first + 2, `${how}: asked to stop after step ${first}, stopped at step ${done.step}`);
      assert.strictEqual(status, 'stopped', how);
    }
  });

  it('a stop while the images are read lands before any step: no run is created, or the run stops at step 0 with a checkpoint', async () => {
    const child = fork(ENGINE_PROCESS, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const seen: EngineMessage[] = [];
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    let stopped = false;
    child.on('message', (m: EngineMessage) => {
      seen.push(m);
      if (!stopped && m.type === 'progress' && m.task === 'decode') {
        stopped = true;
        child.send(message({ type: 'stop' }));
      }
      if ((m.type === 'done' || m.type === 'cancelled' || m.type === 'error') && child.connected) child.disconnect();
    });
    const folder = await makeFolder(48);
    folders.push(folder);
    child.send(message({ type: 'train', folder, config: resolveConfig('tiny', { ...SMALL, epochs: 3 }) }));
    await exited;
    assert.deepStrictEqual(stepsOf(seen), [], 'no step was trained');
    const end = seen.find((m) => m.type === 'done' || m.type === 'cancelled' || m.type === 'error');
    if (end?.type === 'cancelled') {
      assert.match(end.message, /Stopped before training started: no run was created/);
      assert.ok(!fs.existsSync(path.join(folder, '.simsiam')), 'no run folder');
    } else {
      assert.ok(end?.type === 'done' && end.status === 'stopped' && end.step === 0, JSON.stringify(end));
      assert.strictEqual(readStatus(end.runDir).status, 'stopped');
      assert.strictEqual(readCheckpointPointer(end.runDir)?.step, 0);
    }
  });

  it('a checkpoint that cannot be written (disk full mid-file) keeps the previous one loadable and names the folder', async () => {
    const folder = await makeFolder(16); // 28 training images, 3 steps per epoch
    folders.push(folder);
    const realWriteFileSync = nodeFs.writeFileSync;
    let armed = false;
    let failed = '';
    // The second checkpoint's weights are where the disk "fills up".
    nodeFs.writeFileSync = function (file, ...rest) {
      if (armed && typeof file === 'string' && file.endsWith('weights.bin')) {
        armed = false;
        failed = file;
        throw diskFull();
      }
      return (realWriteFileSync as (...args: unknown[]) => void)(file, ...rest);
    } as typeof fs.writeFileSync;
    let firstCheckpoint = -1;
    const tensorsBefore = tf.memory().numTensors;
    try {
      await assert.rejects(
        startTraining({ folder, config: resolveConfig('tiny', { ...SMALL, epochs: 3 }) }, (m) => {
          if (m.type === 'checkpoint' && firstCheckpoint < 0) {
            firstCheckpoint = m.step;
            armed = true;
          }
        }, new StopSignal()),
        (error: Error) => error.message.includes(path.join(folder, '.simsiam', 'runs')) && /checkpoints/.test(error.message) &&
          /ENOSPC/.test(error.message) && /previous checkpoint is kept/.test(error.message));
    } finally {
      nodeFs.writeFileSync = realWriteFileSync;
    }
    assert.ok(failed, 'the fault was injected');
    // The engine process outlives a failed run and starts the next one: the failed run's model,
    // optimizer state and batches must all be released.
    assert.strictEqual(tf.memory().numTensors, tensorsBefore, 'the failed run left no tensors behind');
    const runDir = listRuns(path.join(folder, '.simsiam', 'runs'))[0];
    const status = readStatus(runDir);
    assert.strictEqual(status.status, 'failed');
    assert.match(status.message ?? '', /Could not write a checkpoint/);
    assert.strictEqual(readCheckpointPointer(runDir)?.step, firstCheckpoint, 'the pointer still names the previous checkpoint');
    assert.deepStrictEqual(fs.readdirSync(path.join(runDir, 'checkpoints')), [`step-${String(firstCheckpoint).padStart(8, '0')}`],
      'no half-written checkpoint is left behind');
    const loaded = await loadCheckpoint(runDir);
    assert.ok(loaded && loaded.model.getWeights().every((w) => w.dataSync().every(Number.isFinite)));
    loaded.model.dispose();
    tf.dispose(Object.values(loaded.optimizerState));

    const done = await resumeTraining({ runDir }, () => undefined, new StopSignal());
    assert.strictEqual(done.status, 'completed');
    assertCompleteHistory(runDir, 3, firstCheckpoint);
    assert.strictEqual(tf.memory().numTensors, tensorsBefore, 'the resumed run left no tensors behind');
  });

  it('a checkpoint pointer that cannot be written (ENOSPC from /dev/full) keeps the previous checkpoint and names the file', async () => {
    const folder = await makeFolder(16);
    folders.push(folder);
    let firstCheckpoint = -1;
    let runDir = '';
    await assert.rejects(
      startTraining({ folder, config: resolveConfig('tiny', { ...SMALL, epochs: 3 }) }, (m) => {
        if (m.type === 'started') runDir = m.runDir;
        if (m.type === 'checkpoint' && firstCheckpoint < 0) {
          firstCheckpoint = m.step;
          failNextAtomicWrite(path.join(runDir, 'checkpoint.json'));
        }
      }, new StopSignal()),
      (error: Error) => error.message.includes(path.join(runDir, 'checkpoint.json')) && /ENOSPC/.test(error.message));
    assert.strictEqual(readStatus(runDir).status, 'failed');
    assert.strictEqual(readCheckpointPointer(runDir)?.step, firstCheckpoint);
    const loaded = await loadCheckpoint(runDir);
    assert.ok(loaded, 'the previous checkpoint loads');
    assert.strictEqual(loaded.step, firstCheckpoint);
    loaded.model.dispose();
    tf.dispose(Object.values(loaded.optimizerState));
    assert.ok(!fs.readdirSync(runDir).some((name) => name.includes('.tmp-')), 'no temporary file is left behind');
  });

  it('an index that cannot be written (ENOSPC from /dev/full) keeps the previous index and names the folder', async () => {
    const folder = await makeFolder(8);
    folders.push(folder);
    const { runDir } = await startTraining({ folder, config: resolveConfig('tiny', { ...SMALL, epochs: 1 }) }, () => undefined, new StopSignal());
    const first = await embedRun(runDir, () => undefined);
    const before = loadIndex(runDir);
    assert.ok(before);

    await writeImage(path.join(folder, 'a', 'new.png'), 4242);
    const indexDir = path.join(runDir, INDEX_DIR);
    failNextAtomicWrite(path.join(indexDir, 'manifest.json'));
    await assert.rejects(embedRun(runDir, () => undefined),
      (error: Error) => error.message.includes(indexDir) && /ENOSPC/.test(error.message));
    const after = loadIndex(runDir);
    assert.ok(after, 'the previous index still loads');
    assert.strictEqual(after.stored.stamp, before.stored.stamp);
    assert.deepStrictEqual(after.stored.manifest, before.stored.manifest);
    assert.deepStrictEqual(after.vectors, before.vectors);

    const retried = await embedRun(runDir, () => undefined);
    assert.strictEqual(retried.images, first.images + 1, 'the next update succeeds and includes the new image');
    assert.deepStrictEqual(fs.readdirSync(indexDir).sort(), [loadIndex(runDir)!.stored.manifest.vectorsFile, 'manifest.json'].sort(),
      'vectors orphaned by the failed update are cleaned up');
  });
});
