// Issue 11, one writer per run: a run folder is trained, resumed or indexed by one process at a
// time, and "running" means that a live process holds the run's lock, never just what
// status.json says (it may be empty, garbled, or name a process that is gone or is now another).
import * as assert from 'assert';
import * as fs from 'fs';
// The module object itself, so that replacing a function here reaches the lock's renames.
import nodeFs = require('fs');
import * as os from 'os';
import * as path from 'path';
import { spawn, type ChildProcess } from 'child_process';
import sharp from 'sharp';
import { selectBackend } from '../../src/training/tfjs/backend';
import { resolveConfig } from '../../src/training/config';
import { StopSignal, startTraining, resumeTraining } from '../../src/training/trainer';
import { readMetrics, readStatus, STATUS_FILE } from '../../src/training/run/runStore';
import type { EngineMessage } from '../../src/training/protocol';
import {
  acquireRunLock, isProvenHolder, processStartTime, runLockState, RunLockedError, RUN_LOCK_FILES, withEveryRunLock, type LockHolder,
} from '../../src/training/run/runLock';

const RUN_LOCK_MODULE = path.join(__dirname, '..', '..', 'src', 'training', 'run', 'runLock.js');

/** A model small enough to step in milliseconds. */
const SMALL = { imageSize: 16, batchSize: 8, widthMultiplier: 0.125, projectorDim: 32, predictorHiddenDim: 8, epochs: 1, backend: 'wasm' };

async function makeFolder(perClass: number): Promise<string> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-lock-'));
  for (const [c, name] of ['a', 'b'].entries()) {
    fs.mkdirSync(path.join(root, name));
    for (let i = 0; i < perClass; i++) {
      const pixels = Buffer.alloc(12 * 12 * 3, (c * 97 + i * 13) % 256);
      for (let p = 0; p < 12 * 12; p += 3 + c) pixels[p * 3 + (i % 3)] = 255;
      await sharp(pixels, { raw: { width: 12, height: 12, channels: 3 } }).png().toFile(path.join(root, name, `${i}.png`));
    }
  }
  return root;
}

const stepsIn = (runDir: string) => readMetrics(runDir).filter((r) => r.kind === 'step').map((r) => r.step);
const warningsIn = (messages: EngineMessage[]) => messages.flatMap((m) => (m.type === 'warning' ? [m.message] : []));

describe('one writer per run: training and status', function () {
  this.timeout(120_000);
  let folder: string;
  let runDir: string;
  let perEpoch: number;

  before(async () => {
    await selectBackend('wasm');
    folder = await makeFolder(9);
    const done = await startTraining({ folder, config: resolveConfig('tiny', { ...SMALL, testFraction: 0 }) }, () => undefined, new StopSignal());
    runDir = done.runDir;
    perEpoch = done.step;
    assert.ok(perEpoch >= 2, `${perEpoch} steps per epoch`);
  });
  after(() => fs.rmSync(folder, { recursive: true, force: true }));

  it('trains a run once when two resumes of it start at the same time: the second is refused, naming the holder', async () => {
    const results = await Promise.allSettled([
      resumeTraining({ runDir, epochs: 2 }, () => undefined, new StopSignal()),
      resumeTraining({ runDir, epochs: 2 }, () => undefined, new StopSignal()),
    ]);
    const done = results.filter((r) => r.status === 'fulfilled');
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    assert.strictEqual(done.length, 1, `one resume trains: ${refused.map((e) => e.message).join(' | ')}`);
    assert.strictEqual(refused.length, 1);
    const text = refused[0].message;
    for (const part of [runDir, `process ${process.pid}`, os.hostname(), 'resuming']) {
      assert.ok(text.includes(part), `"${text}" names ${part}`);
    }
    assert.deepStrictEqual(stepsIn(runDir), Array.from({ length: 2 * perEpoch }, (_, i) => i + 1), 'every step once');
    assert.strictEqual(readStatus(runDir).status, 'completed');
  });

  it('reads a "running" status.json whose process is alive but holds no lock as interrupted, and resumes it', async () => {
    // This test's own process: alive, but not training the run (as after a crash, once the pid is reused).
    const file = path.join(runDir, STATUS_FILE);
    fs.writeFileSync(file, JSON.stringify({ status: 'running', step: 2 * perEpoch, epoch: 2, updatedAt: new Date().toISOString(), pid: process.pid }));
    assert.strictEqual(readStatus(runDir).status, 'interrupted');
    const done = await resumeTraining({ runDir, epochs: 3 }, () => undefined, new StopSignal());
    assert.strictEqual(done.status, 'completed');
    assert.deepStrictEqual(stepsIn(runDir), Array.from({ length: 3 * perEpoch }, (_, i) => i + 1));
  });

  for (const [what, content] of [['an empty', ''], ['a garbled', '{"status": "runn'], ['an invalid', '{"status": "asleep", "step": -1}']] as const) {
    it(`shows a run with ${what} status.json as interrupted, saying what is wrong, and resumes it from its checkpoint`, async () => {
      const file = path.join(runDir, STATUS_FILE);
      fs.writeFileSync(file, content);
      const shown = readStatus(runDir);
      assert.strictEqual(shown.status, 'interrupted');
      assert.ok(shown.message?.includes(file), `the message names the file: ${shown.message}`);
      assert.match(shown.message ?? '', /[Rr]esum/);

      const epochs = Math.max(...readMetrics(runDir).filter((r) => r.kind === 'epoch').map((r) => r.epoch)) + 1;
      const messages: EngineMessage[] = [];
      const done = await resumeTraining({ runDir, epochs }, (m) => messages.push(m), new StopSignal());
      assert.strictEqual(done.status, 'completed');
      assert.ok(warningsIn(messages).some((w) => w.includes(file)), `resume reports what it found: ${warningsIn(messages).join(' | ')}`);
      assert.strictEqual(readStatus(runDir).status, 'completed', 'status.json is rewritten');
      assert.deepStrictEqual(stepsIn(runDir), Array.from({ length: epochs * perEpoch }, (_, i) => i + 1));
    });
  }
});

/** A node process that takes the run's training lock, says so, and exits (without releasing it) on a line of input. */
function lockingChild(runDir: string): { child: ChildProcess; locked: Promise<void>; exited: Promise<void> } {
  const script = `const lock = require(${JSON.stringify(RUN_LOCK_MODULE)}).acquireRunLock(process.argv[1], 'training', 'training in a child');
    process.stdout.write('locked\\n');
    process.stdin.on('data', () => process.exit(0));`;
  const child = spawn(process.execPath, ['-e', script, runDir], { stdio: ['pipe', 'pipe', 'inherit'] });
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve());
    child.on('exit', (code) => reject(new Error(`the child exited (${code}) before taking the lock`)));
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return { child, locked, exited };
}

describe('run lock', () => {
  let runDir: string;
  const lockFile = () => path.join(runDir, RUN_LOCK_FILES.training);
  const plant = (holder: Partial<LockHolder> | string, ageSeconds = 0) => {
    const text = typeof holder === 'string' ? holder : JSON.stringify({
      pid: process.pid, host: os.hostname(), since: new Date().toISOString(), activity: 'training', token: 'planted', ...holder,
    });
    fs.writeFileSync(lockFile(), text);
    const when = new Date(Date.now() - ageSeconds * 1000);
    fs.utimesSync(lockFile(), when, when);
  };
  /** A pid that belonged to a process that has exited. */
  const deadPid = async () => {
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => child.on('exit', resolve));
    return child.pid!;
  };

  beforeEach(() => {
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-runlock-'));
  });
  afterEach(() => fs.rmSync(runDir, { recursive: true, force: true }));

  it('is taken, held, and released, leaving nothing behind', () => {
    assert.deepStrictEqual(runLockState(runDir, 'training'), { held: false });
    const lock = acquireRunLock(runDir, 'training', 'training');
    assert.strictEqual(lock.note, undefined);
    const state = runLockState(runDir, 'training');
    assert.ok(state.held && state.holder?.pid === process.pid && state.holder.host === os.hostname() && state.holder.activity === 'training');
    assert.deepStrictEqual(runLockState(runDir, 'index'), { held: false }, 'the index has a lock of its own');
    lock.release();
    lock.release();
    assert.deepStrictEqual(fs.readdirSync(runDir), []);
    acquireRunLock(runDir, 'training', 'again').release();
  });

  it('refuses a second holder, naming the run, the process, its host, since when and what it does', () => {
    const lock = acquireRunLock(runDir, 'training', 'exporting embeddings to /x.npy');
    try {
      assert.throws(() => acquireRunLock(runDir, 'training', 'training'), (error: Error) => {
        assert.ok(error instanceof RunLockedError);
        for (const part of [runDir, `process ${process.pid}`, os.hostname(), lock.holder.since, 'exporting embeddings to /x.npy']) {
          assert.ok(error.message.includes(part), `"${error.message}" names ${part}`);
        }
        return true;
      });
    } finally {
      lock.release();
    }
  });

  it('is held across processes, released when its holder exits, and taken over from a killed one with a note', async function () {
    this.timeout(30_000);
    const first = lockingChild(runDir);
    await first.locked;
    assert.throws(() => acquireRunLock(runDir, 'training', 'training'),
      (error: Error) => error.message.includes(`process ${first.child.pid}`) && error.message.includes('training in a child'));
    first.child.stdin!.write('exit\n');
    await first.exited;
    assert.ok(!fs.existsSync(lockFile()), 'an exit that skips the finally blocks still removes the lock');

    const second = lockingChild(runDir);
    await second.locked;
    second.child.kill('SIGKILL');
    await second.exited;
    assert.ok(fs.existsSync(lockFile()), 'a killed holder leaves its lock');
    const state = runLockState(runDir, 'training');
    assert.ok(!state.held && state.stale?.includes(`process ${second.child.pid} is no longer running`), JSON.stringify(state));
    const lock = acquireRunLock(runDir, 'training', 'training');
    assert.match(lock.note ?? '', new RegExp(`process ${second.child.pid} is no longer running.*training in a child`));
    lock.release();
  });

  it('takes over the lock of a dead process', async () => {
    const pid = await deadPid();
    plant({ pid });
    const lock = acquireRunLock(runDir, 'training', 'training');
    assert.match(lock.note ?? '', new RegExp(`process ${pid} is no longer running`));
    assert.strictEqual(JSON.parse(fs.readFileSync(lockFile(), 'utf8')).pid, process.pid);
    lock.release();
  });

  it('takes over the lock of a pid that now belongs to another process (started at another time)', () => {
    const started = processStartTime(process.pid);
    assert.ok(started, 'this platform tells when a process started');
    plant({ pid: process.pid, started: `${started}0` });
    const state = runLockState(runDir, 'training');
    assert.ok(!state.held && /is now another program/.test(state.stale ?? ''), JSON.stringify(state));
    const lock = acquireRunLock(runDir, 'training', 'training');
    assert.match(lock.note ?? '', /is now another program/);
    lock.release();
  });

  it('leaves the fresh lock of a process that took over the same stale lock first', async () => {
    plant({ pid: await deadPid() });
    const { renameSync } = nodeFs;
    let raced = false;
    nodeFs.renameSync = ((from: fs.PathLike, to: fs.PathLike) => {
      if (!raced && String(from) === lockFile() && String(to).includes('.stale-')) {
        raced = true; // another process removes the stale lock and takes it, just before this one moves it aside
        plant({ pid: process.pid, activity: 'training elsewhere', token: 'fresh' });
      }
      renameSync(from, to);
    }) as typeof nodeFs.renameSync;
    try {
      assert.throws(() => acquireRunLock(runDir, 'training', 'training'), /training elsewhere/);
    } finally {
      nodeFs.renameSync = renameSync;
    }
    assert.ok(raced);
    assert.strictEqual(JSON.parse(fs.readFileSync(lockFile(), 'utf8')).token, 'fresh');
    assert.deepStrictEqual(fs.readdirSync(runDir), [RUN_LOCK_FILES.training]);
  });

  it('puts back, without overwriting anything, a fresh lock it moved aside, even when a third process took the lock meanwhile', async () => {
    plant({ pid: await deadPid() });
    const started = processStartTime(process.pid) ?? undefined;
    const { renameSync } = nodeFs;
    let raced = false;
    nodeFs.renameSync = ((from: fs.PathLike, to: fs.PathLike) => {
      const takingOver = !raced && String(from) === lockFile() && String(to).includes('.stale-');
      // A second process has replaced the stale lock with its own, just before this one moves it aside ...
      if (takingOver) plant({ pid: process.pid, started, activity: 'training in the second process', token: 'second' });
      renameSync(from, to);
      // ... and a third finds the path free, and takes the lock, before this one can put the second's back.
      if (takingOver) {
        raced = true;
        plant({ pid: process.pid, started, activity: 'training in the third process', token: 'third' });
      }
    }) as typeof nodeFs.renameSync;
    try {
      assert.throws(() => acquireRunLock(runDir, 'training', 'training'), /training in the third process/);
    } finally {
      nodeFs.renameSync = renameSync;
    }
    assert.ok(raced);
    assert.strictEqual(JSON.parse(fs.readFileSync(lockFile(), 'utf8')).token, 'third', "the third process's lock stands");
    assert.deepStrictEqual(fs.readdirSync(runDir), [RUN_LOCK_FILES.training], 'no moved-aside lock file is left behind');
  });

  it('holds a lock that lacks the start time this machine tells only while it is new, like a garbled one', async function () {
    if (processStartTime(process.pid) === null) this.skip(); // Windows: the live pid is all there is to go by
    plant({ pid: process.pid, activity: 'training by hand' });
    assert.throws(() => acquireRunLock(runDir, 'training', 'training'),
      (error: Error) => error instanceof RunLockedError && error.message.includes('training by hand') &&
        error.message.includes(`If process ${process.pid} is not SimSiam`) && error.message.includes(`delete ${lockFile()}`));
    plant({ pid: process.pid, activity: 'training by hand' }, 60);
    const state = runLockState(runDir, 'training');
    assert.ok(!state.held && state.stale?.includes(`does not say when process ${process.pid} started`), JSON.stringify(state));
    const lock = acquireRunLock(runDir, 'training', 'training');
    assert.match(lock.note ?? '', /does not say when process \d+ started.*training by hand/);
    lock.release();
  });

  it('proves a holder to be the process that took the lock only by its start time, on this machine', async function () {
    if (processStartTime(process.pid) === null) this.skip(); // Windows: no holder is ever proven, so none is signalled
    const lock = acquireRunLock(runDir, 'training', 'training');
    lock.release();
    const { started, ...withoutStart } = lock.holder;
    assert.ok(isProvenHolder(lock.holder));
    assert.ok(!isProvenHolder(withoutStart), 'a lock file without a start time may name any process (pid 1, say)');
    assert.ok(!isProvenHolder({ ...lock.holder, started: `${started}0` }), 'a reused pid');
    assert.ok(!isProvenHolder({ ...lock.holder, pid: await deadPid() }), 'a process that is gone');
    assert.ok(!isProvenHolder({ ...lock.holder, host: `not-${os.hostname()}` }), 'a process on another host');
  });

  it('takes every lock of a run, or none, for work on the whole run, refusing while another holder has either', () => {
    for (const kind of ['training', 'index'] as const) {
      const other = acquireRunLock(runDir, kind, `${kind} elsewhere`);
      try {
        let ran = false;
        assert.throws(() => withEveryRunLock(runDir, 'deleting the run', () => {
          ran = true;
        }), (error: Error) => error instanceof RunLockedError && error.message.includes(`${kind} elsewhere`) &&
          error.message.includes(`process ${process.pid}`));
        assert.ok(!ran, `the work ran while the ${kind} lock was held`);
        assert.deepStrictEqual(fs.readdirSync(runDir), [RUN_LOCK_FILES[kind]], 'a lock taken before the refusal is let go');
      } finally {
        other.release();
      }
    }
    withEveryRunLock(runDir, 'deleting the run', () => {
      for (const kind of ['training', 'index'] as const) {
        const state = runLockState(runDir, kind);
        assert.ok(state.held && state.holder?.activity === 'deleting the run', `${kind}: ${JSON.stringify(state)}`);
      }
      fs.rmSync(runDir, { recursive: true });
    });
    assert.ok(!fs.existsSync(runDir));
  });

  it('keeps the lock of a live pid whose start time cannot be compared, and of another host, saying what to do', () => {
    plant({ pid: process.pid }); // as written on Windows: no start time (held while new where start times are told)
    assert.throws(() => acquireRunLock(runDir, 'training', 'training'),
      (error: Error) => error instanceof RunLockedError && error.message.includes(`If process ${process.pid} is not SimSiam`) &&
        error.message.includes(`delete ${lockFile()}`));
    plant({ pid: 1, host: `not-${os.hostname()}` });
    assert.throws(() => acquireRunLock(runDir, 'training', 'training'),
      (error: Error) => error.message.includes(`host not-${os.hostname()}`) && error.message.includes(`delete ${lockFile()}`));
  });

  it('treats a garbled lock file as being written while it is new, and takes it over once it is old', () => {
    for (const garbled of ['', '{"pid": 12', '{"pid": "twelve"}', 'null']) {
      plant(garbled);
      assert.deepStrictEqual(runLockState(runDir, 'training'), { held: true, holder: null });
      assert.throws(() => acquireRunLock(runDir, 'training', 'training'), /just taking its lock.*Try again/);
      plant(garbled, 60);
      const lock = acquireRunLock(runDir, 'training', 'training');
      assert.match(lock.note ?? '', /unreadable/);
      lock.release();
    }
    assert.deepStrictEqual(fs.readdirSync(runDir), [], 'no moved-aside lock file is left behind');
  });

  it('makes a run read as running while a live process holds its training lock, whatever status.json says', async () => {
    const file = path.join(runDir, STATUS_FILE);
    const lock = acquireRunLock(runDir, 'training', 'resuming training');
    try {
      for (const content of [undefined, '', JSON.stringify({ status: 'stopped', step: 4, epoch: 1, updatedAt: 'then', message: 'stopped by hand' })]) {
        if (content === undefined) fs.rmSync(file, { force: true });
        else fs.writeFileSync(file, content);
        const status = readStatus(runDir);
        assert.strictEqual(status.status, 'running', `status.json ${JSON.stringify(content)}`);
        assert.strictEqual(status.pid, process.pid);
        assert.strictEqual(status.holder?.activity, 'resuming training');
        assert.strictEqual(status.message, undefined);
      }
    } finally {
      lock.release();
    }
    assert.strictEqual(readStatus(runDir).status, 'stopped');
    plant({ pid: await deadPid() }); // a killed trainer's lock
    fs.writeFileSync(file, JSON.stringify({ status: 'running', step: 4, epoch: 1, updatedAt: 'then', pid: process.pid }));
    assert.strictEqual(readStatus(runDir).status, 'interrupted');
  });

  it('reads how the holder ended its run while the holder is still letting go of the lock', () => {
    const lock = acquireRunLock(runDir, 'training', 'training');
    try {
      // An earlier end of the run (before this holder took the lock) is old news: it trains again.
      fs.writeFileSync(path.join(runDir, STATUS_FILE), JSON.stringify({ status: 'stopped', step: 4, epoch: 1, updatedAt: new Date(Date.now() - 60_000).toISOString() }));
      assert.strictEqual(readStatus(runDir).status, 'running');
      fs.writeFileSync(path.join(runDir, STATUS_FILE), JSON.stringify({ status: 'completed', step: 8, epoch: 2, updatedAt: new Date(Date.now() + 1).toISOString() }));
      assert.strictEqual(readStatus(runDir).status, 'completed');
    } finally {
      lock.release();
    }
  });

  it('releases only its own lock', () => {
    const lock = acquireRunLock(runDir, 'training', 'training');
    plant({ pid: process.pid, token: 'someone else' });
    lock.release();
    assert.ok(fs.existsSync(lockFile()), 'a lock that is no longer ours stays');
  });

  it('tells processes apart by start time, from /proc on Linux and from ps elsewhere', async function () {
    if (process.platform === 'win32') this.skip();
    const platforms: NodeJS.Platform[] = process.platform === 'linux' ? ['linux', 'darwin'] : [process.platform];
    const pid = await deadPid();
    for (const platform of platforms) {
      const own = processStartTime(process.pid, platform);
      assert.ok(own, platform);
      assert.strictEqual(processStartTime(process.pid, platform), own, `${platform}: stable`);
      assert.strictEqual(processStartTime(pid, platform), null, `${platform}: a dead process has none`);
    }
    assert.strictEqual(processStartTime(process.pid, 'win32'), null);
  });
});
