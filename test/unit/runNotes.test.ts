// Renaming a run and writing its note: checked, atomic, and never over a damaged run.json.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import nodeFs = require('fs');
import { resolveConfig } from '../../src/training/config';
import { MAX_RUN_NAME_LENGTH, readRun, renameRun, RUN_FILE, setRunNote } from '../../src/training/run/runStore';
import { writeFinishedRun } from './runFolders';

const DATASET = { root: '/data/fashion', trainImages: 10, testImages: 2, classes: ['a', 'b'] };

describe('run rename and note', function () {
  let root: string;
  let runDir: string;
  const runFile = () => path.join(runDir, RUN_FILE);

  beforeEach(function () {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-notes-'));
    runDir = writeFinishedRun(path.join(root, 'runs'), 'fashion-tiny', resolveConfig('tiny'), DATASET);
  });

  afterEach(function () {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('renames in run.json only: the folder, the id and the rest of the record stay', function () {
    const before = readRun(runDir);
    const after = renameRun(runDir, '  baseline, lr 0.06  ');
    assert.strictEqual(after.name, 'baseline, lr 0.06');
    assert.deepStrictEqual({ ...readRun(runDir), name: before.name }, before);
    assert.ok(fs.existsSync(runFile()));
  });

  it('keeps fields it does not know, and the config exactly as stored', function () {
    const stored = JSON.parse(fs.readFileSync(runFile(), 'utf8'));
    delete stored.config.flipP; // an older run: the reader fills the default in, the file keeps it absent
    stored.addedLater = { by: 'a newer version' };
    fs.writeFileSync(runFile(), JSON.stringify(stored));
    renameRun(runDir, 'renamed');
    const rewritten = JSON.parse(fs.readFileSync(runFile(), 'utf8'));
    assert.deepStrictEqual(rewritten, { ...stored, name: 'renamed' });
  });

  it('stores a note, replaces it, and removes it when emptied', function () {
    assert.strictEqual(setRunNote(runDir, 'why: lower lr\r\nnext: try b128\n\n').note, 'why: lower lr\nnext: try b128');
    assert.strictEqual(readRun(runDir).note, 'why: lower lr\nnext: try b128');
    setRunNote(runDir, 'second thoughts');
    assert.strictEqual(readRun(runDir).note, 'second thoughts');
    setRunNote(runDir, '   ');
    assert.strictEqual(readRun(runDir).note, undefined);
    assert.ok(!('note' in JSON.parse(fs.readFileSync(runFile(), 'utf8'))));
  });

  it('refuses invalid names and notes, leaving the file untouched', function () {
    const before = fs.readFileSync(runFile(), 'utf8');
    assert.throws(() => renameRun(runDir, '   '), /cannot be empty/);
    assert.throws(() => renameRun(runDir, 'x'.repeat(MAX_RUN_NAME_LENGTH + 1)), /at most 120 characters/);
    assert.throws(() => renameRun(runDir, 'two\nlines'), /control characters/);
    assert.throws(() => renameRun(runDir, 'red \u001b[31m'), /control characters/);
    assert.throws(() => setRunNote(runDir, 'bell \u0007'), /control characters other than line breaks/);
    assert.throws(() => setRunNote(runDir, 'x'.repeat(10_001)), /at most 10000 characters/);
    assert.strictEqual(fs.readFileSync(runFile(), 'utf8'), before);
  });

  it('refuses a damaged run.json by name and never overwrites it', function () {
    for (const damaged of ['{ "id": "cut off', JSON.stringify({ id: 'x', name: 3 })]) {
      fs.writeFileSync(runFile(), damaged);
      assert.throws(() => renameRun(runDir, 'new name'), (error: Error) => {
        assert.ok(error.message.includes(runFile()), error.message);
        assert.match(error.message, /^Cannot rename .*The file was left as it is: repair or restore it first\.$/s);
        return true;
      });
      assert.throws(() => setRunNote(runDir, 'a note'), /Cannot set the note of .*left as it is/s);
      assert.strictEqual(fs.readFileSync(runFile(), 'utf8'), damaged);
    }
  });

  it('refuses a folder without run.json', function () {
    fs.rmSync(runFile());
    assert.throws(() => renameRun(runDir, 'x'), /run\.json does not exist/);
    assert.ok(!fs.existsSync(runFile()));
  });

  it('writes through a temporary file and a rename, leaving no temporary behind', function () {
    const inode = fs.statSync(runFile()).ino;
    renameRun(runDir, 'atomic');
    // A rename over the old file gives run.json a new inode; writing in place would keep it.
    assert.notStrictEqual(fs.statSync(runFile()).ino, inode);
    assert.deepStrictEqual(fs.readdirSync(runDir).filter((f) => f.includes('.tmp-')), []);
  });

  it('leaves run.json as it was, and no temporary, when the write fails', function () {
    const before = fs.readFileSync(runFile(), 'utf8');
    const rename = nodeFs.renameSync;
    // A full disk or an I/O error at the last moment: the rename over run.json fails.
    nodeFs.renameSync = () => {
      throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
    };
    try {
      assert.throws(() => renameRun(runDir, 'cannot write'), /Could not write .*run\.json \(any previous version is left as it was\): EIO/);
      assert.throws(() => setRunNote(runDir, 'cannot write'), /Could not write .*run\.json/);
    } finally {
      nodeFs.renameSync = rename;
    }
    assert.strictEqual(fs.readFileSync(runFile(), 'utf8'), before);
    assert.deepStrictEqual(fs.readdirSync(runDir).filter((f) => f.includes('.tmp-')), []);
  });

  it('renames and annotates from the command line, refusing what the extension refuses', function () {
    const bin = path.join(__dirname, '..', '..', '..', 'bin', 'simsiam.js');
    const cli = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
    const renamed = cli('rename', runDir, 'from the terminal');
    assert.strictEqual(renamed.status, 0, renamed.stderr);
    assert.match(renamed.stdout, /to from the terminal\n$/);
    assert.strictEqual(cli('note', runDir, 'two\nlines').status, 0);
    assert.deepStrictEqual([readRun(runDir).name, readRun(runDir).note], ['from the terminal', 'two\nlines']);
    const refused = cli('rename', runDir, ' ');
    assert.strictEqual(refused.status, 1);
    assert.match(refused.stderr, /error: Cannot rename .*: A run name cannot be empty\./);
    assert.strictEqual(readRun(runDir).name, 'from the terminal');
  });
});
