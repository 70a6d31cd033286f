// Run files are replaced through a temporary file and a rename (runStore.writeFileAtomic) and read
// back through fileChecks.ts: a link planted where the temporary goes is never written through, a
// failed write leaves the previous file and names it, and stored float32 bytes read back exactly.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
// The module object itself (see faults.test.ts): replacing writeSync here reaches the engine's writes.
import nodeFs = require('fs');
import { writeFileAtomic } from '../../src/training/run/runStore';
import { digestOf, float32View } from '../../src/training/run/fileChecks';

describe('run file writes and reads', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-writes-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('never writes through a link planted at a temporary name, and replaces the file itself', () => {
    const file = path.join(dir, 'status.json');
    const victim = path.join(dir, 'victim.txt');
    fs.writeFileSync(file, 'old');
    fs.writeFileSync(victim, 'untouched');
    // The name writeFileAtomic used to write through: `<file>.tmp-<pid>`.
    fs.symlinkSync(victim, `${file}.tmp-${process.pid}`);
    writeFileAtomic(file, 'new');
    assert.strictEqual(fs.readFileSync(victim, 'utf8'), 'untouched');
    assert.ok(!fs.lstatSync(file).isSymbolicLink(), 'the file is a file of its own, not a link');
    assert.strictEqual(fs.readFileSync(file, 'utf8'), 'new');
  });

  it('writes text and bytes whole, and leaves no temporary behind', () => {
    const file = path.join(dir, 'vectors.f32');
    const bytes = new Uint8Array(Array.from({ length: 300_000 }, (_, i) => i % 251));
    writeFileAtomic(file, bytes.subarray(7));
    assert.deepStrictEqual(new Uint8Array(fs.readFileSync(file)), bytes.subarray(7));
    writeFileAtomic(file, 'é\n');
    assert.strictEqual(fs.readFileSync(file, 'utf8'), 'é\n');
    assert.deepStrictEqual(fs.readdirSync(dir), ['vectors.f32']);
  });

  it('keeps the previous file when a write fails, names the file, and leaves no temporary behind', () => {
    const file = path.join(dir, 'manifest.json');
    fs.writeFileSync(file, 'old');
    const realWriteSync = nodeFs.writeSync;
    nodeFs.writeSync = (() => {
      // As the kernel answers write(2) on a full disk: no file named.
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    }) as typeof fs.writeSync;
    try {
      assert.throws(() => writeFileAtomic(file, 'new'),
        (error: Error) => error.message === `Could not write ${file} (any previous version is left as it was): ENOSPC: no space left on device, write`);
    } finally {
      nodeFs.writeSync = realWriteSync;
    }
    assert.strictEqual(fs.readFileSync(file, 'utf8'), 'old');
    assert.deepStrictEqual(fs.readdirSync(dir), ['manifest.json']);
  });

  it('reads float32 bytes at any offset, and digests only the bytes given', () => {
    assert.strictEqual(digestOf(Buffer.from('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const values = new Float32Array([1.5, -0, Number.NaN, 3e38, -7.25]);
    const stored = Buffer.alloc(values.byteLength + 3, 0xff);
    Buffer.from(values.buffer).copy(stored, 1);
    const unaligned = stored.subarray(1, 1 + values.byteLength);
    assert.notStrictEqual(unaligned.byteOffset % 4, 0);
    for (const bytes of [new Uint8Array(values.buffer), unaligned]) {
      assert.deepStrictEqual(Array.from(float32View(bytes)), Array.from(values));
      assert.strictEqual(digestOf(bytes), digestOf(new Uint8Array(values.buffer)));
    }
  });
});
