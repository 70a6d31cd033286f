// The compiled `simsiam` command as a person runs it: through shell pipes, and on files whose
// names carry terminal escape sequences.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import sharp from 'sharp';
import { printable, printableJson } from '../../src/training/printable';
import { listRuns } from '../../src/training/run/runStore';

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'simsiam.js');
/** What a terminal could take as a command, or that reorders text: every control character but the line feed. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;
/** Small and quick to train on; one thread keeps the test off the other cores. */
const TRAIN_FLAGS = ['--size', '16', '--batch', '32', '--backend', 'wasm', '--threads', '1', '--loader-threads', '1'];

// Names a file system allows: ESC sequences (clear screen, red, window title), BEL, C1's CSI,
// a carriage return and a right-to-left override.
const HOSTILE_CLASS = 'cls\u001b]0;pwned\u0007\u009b2J';
const hostileImage = (i: number) => `photo\u001b[31m\r\u202e${i}.png`;
const BROKEN = 'broken\u001b[2J.png';

describe('printable', function () {
  it('shows control characters, bidi controls and line separators as their escapes', function () {
    assert.strictEqual(
      printable('a\u001b[2J\u0007b\u007f\u009b31m\r\n\t\u202egnp.exe\u2066\u2028\u200f'),
      'a\\x1b[2J\\x07b\\x7f\\x9b31m\\x0d\\x0a\\x09\\u202egnp.exe\\u2066\\u2028\\u200f');
  });

  it('leaves ordinary text alone, non-ASCII letters, emoji and backslashes included', function () {
    const name = 'C:\\Users\\Zoë\\猫 🐈 (2).png';
    assert.strictEqual(printable(name), name);
  });

  it('keeps line feeds when asked, and still escapes the rest', function () {
    assert.strictEqual(printable('one\r\ntwo\u001b[0m', { lineBreaks: true }), 'one\\x0d\ntwo\\x1b[0m');
  });

  it('writes JSON with every control character escaped, which parses back to the same value', function () {
    const value = { path: '/d/a\u001b[2J\u0007\u007f\u0085\u009b\u202e\u2028\u2069.png', n: 1 };
    const json = printableJson(value);
    assert.ok(!RAW_CONTROL.test(json), json);
    assert.ok(!json.includes('\n'));
    assert.deepStrictEqual(JSON.parse(json), value);
  });
});

interface Result {
  stdout: Buffer;
  stderr: string;
  status: number | null;
}

describe('simsiam CLI', function () {
  let root: string;
  let data: string;
  let runDir: string;
  let images: number;
  let trainOutput: Result;

  /** Runs the CLI with stdout into a file. */
  function toFile(args: string[]): Result {
    const file = path.join(root, 'stdout');
    const fd = fs.openSync(file, 'w');
    try {
      const result = spawnSync(process.execPath, [BIN, ...args], { stdio: ['ignore', fd, 'pipe'] });
      return { stdout: fs.readFileSync(file), stderr: result.stderr.toString(), status: result.status };
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Runs the CLI with stdout through a shell pipe into `reader`; status is the CLI's own. */
  function throughPipe(args: string[], reader: string): Result {
    const statusFile = path.join(root, 'status');
    fs.rmSync(statusFile, { force: true });
    const result = spawnSync('sh', ['-c', `("$@"; echo $? > "$STATUS_FILE") | ${reader}`, 'sh', process.execPath, BIN, ...args],
      { env: { ...process.env, STATUS_FILE: statusFile }, maxBuffer: 64 * 1024 * 1024 });
    return { stdout: result.stdout, stderr: result.stderr.toString(), status: Number(fs.readFileSync(statusFile, 'utf8')) };
  }

  async function writeImage(file: string, seed: number): Promise<void> {
    const pixels = Buffer.alloc(8 * 8 * 3, 0).map((_, j) => (seed * 37 + j * ((seed % 7) + 1)) & 255);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await sharp(pixels, { raw: { width: 8, height: 8, channels: 3 } }).png().toFile(file);
  }

  /**
   * 360 images in classes with long folder names, so that a listing of all neighbours is well
   * over a pipe's 64 KiB, plus four hostile names and a broken file; trained for one epoch.
   */
  before(async function () {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-cli-'));
    data = path.join(root, 'data');
    images = 0;
    for (const letter of ['a', 'b', 'c']) {
      for (let i = 0; i < 120; i++) await writeImage(path.join(data, `class-${letter}-${'x'.repeat(230)}`, `${i}.png`), images++);
    }
    for (let i = 0; i < 4; i++) await writeImage(path.join(data, HOSTILE_CLASS, hostileImage(i)), images++);
    fs.writeFileSync(path.join(data, HOSTILE_CLASS, BROKEN), 'not a png');
    trainOutput = toFile(['train', data, ...TRAIN_FLAGS, '--epochs', '1', '--out', path.join(root, 'runs')]);
    assert.strictEqual(trainOutput.status, 0, trainOutput.stderr);
    runDir = listRuns(path.join(root, 'runs'))[0];
  });

  after(function () {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('writes all of a long answer into a pipe, as into a file, with exit status 0', function () {
    const query = path.join(data, `class-a-${'x'.repeat(230)}`, '0.png');
    for (const args of [
      ['similar', runDir, query, '-k', '5000', '--json'],
      ['similar', runDir, query, '-k', '5000'],
      ['duplicates', runDir, '--threshold', '-1', '--json'],
    ]) {
      const file = toFile(args);
      assert.strictEqual(file.status, 0, file.stderr);
      assert.ok(file.stdout.length > 65536, `${args.join(' ')} prints more than a pipe holds`);
      const piped = throughPipe(args, 'cat');
      assert.strictEqual(piped.status, 0, piped.stderr);
      assert.strictEqual(piped.stdout.length, file.stdout.length, args.join(' '));
      assert.ok(piped.stdout.equals(file.stdout), args.join(' '));
    }
    const answer = JSON.parse(toFile(['similar', runDir, query, '-k', '5000', '--json']).stdout.toString());
    assert.strictEqual(answer.neighbours.length, images - 1);
  });

  it('ends quietly, with status 0, when the reader of an answer leaves early', function () {
    const result = throughPipe(['similar', runDir, path.join(data, HOSTILE_CLASS, hostileImage(0)), '-k', '5000'], 'head -c 100');
    assert.strictEqual(result.stdout.length, 100);
    assert.strictEqual(result.status, 0);
    assert.strictEqual(result.stderr, '');
  });

  it('stops training like Ctrl-C when the reader of --json leaves: checkpoint, status stopped, status 0', function () {
    const runs = path.join(root, 'piped-runs');
    const result = throughPipe(['train', data, ...TRAIN_FLAGS, '--epochs', '1000', '--out', runs, '--json'],
      `sed -n '/"type":"started"/{p;q;}'`);
    assert.strictEqual(JSON.parse(result.stdout.toString()).type, 'started');
    assert.strictEqual(result.status, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /EPIPE|Error|\n\s+at /);
    assert.match(result.stderr, /stdout was closed: stopping after this step/);
    const run = listRuns(runs)[0];
    assert.strictEqual(JSON.parse(fs.readFileSync(path.join(run, 'status.json'), 'utf8')).status, 'stopped');
    const pointer = JSON.parse(fs.readFileSync(path.join(run, 'checkpoint.json'), 'utf8'));
    // The stop lands before the next step: at step 0 when it comes during the untrained network's evaluation.
    assert.ok(Number.isInteger(pointer.step) && pointer.step >= 0, `a checkpoint where it stopped (${pointer.step})`);
    assert.ok(fs.existsSync(path.join(run, pointer.dir, 'model.json')));
  });

  it('shows hostile file names escaped while training', function () {
    assert.ok(!RAW_CONTROL.test(trainOutput.stderr), JSON.stringify(trainOutput.stderr));
    assert.ok(trainOutput.stderr.includes(`warning: Skipped ${printable(path.join(data, HOSTILE_CLASS, BROKEN))}`), trainOutput.stderr);
  });

  it('shows hostile file names escaped in answers', function () {
    const query = path.join(data, HOSTILE_CLASS, hostileImage(0));
    const printed = [
      toFile(['similar', runDir, query, '-k', '3']),
      toFile(['duplicates', runDir, '--threshold', '-1']),
      toFile(['export', runDir, '--format', 'csv', '--out', path.join(root, 'export\u001b[2J.csv')]),
    ];
    for (const result of printed) {
      assert.strictEqual(result.status, 0, result.stderr);
      const text = result.stdout.toString();
      assert.ok(!RAW_CONTROL.test(text), JSON.stringify(text));
    }
    assert.ok(printed[0].stdout.toString().startsWith(`neighbours of ${printable(query)}:\n`));
    assert.ok(printed[1].stdout.toString().includes(printable(path.join(data, HOSTILE_CLASS, hostileImage(1)))));
    assert.ok(printed[2].stdout.toString().includes('export\\x1b[2J.csv'));
  });

  it('shows hostile names escaped in errors and usage errors', function () {
    const missing = toFile(['similar', runDir, path.join(data, 'gone\u001b[2J.png')]);
    assert.strictEqual(missing.status, 1);
    assert.match(missing.stderr, /^error: .*gone\\x1b\[2J\.png/);
    const unknown = toFile(['similar', runDir, path.join(data, HOSTILE_CLASS, hostileImage(0)), '--k\u001b[2J']);
    assert.strictEqual(unknown.status, 1);
    assert.match(unknown.stderr, /unknown option '--k\\x1b\[2J'/);
    for (const result of [missing, unknown]) assert.ok(!RAW_CONTROL.test(result.stderr), JSON.stringify(result.stderr));
  });

  it('names the flag that fixes a refused training: --batch for a folder smaller than one batch', function () {
    const refused = toFile(['train', path.join(data, HOSTILE_CLASS), ...TRAIN_FLAGS, '--out', path.join(root, 'refused')]);
    assert.strictEqual(refused.status, 1);
    assert.match(refused.stderr, /^error: .*has 4 of 5 training image files that could be read, fewer than one batch of 32: .*lower the batch size \(--batch\)\.$/m);
    assert.ok(!fs.existsSync(path.join(root, 'refused')), 'no run folder was created');
    const invalid = toFile(['train', data, ...TRAIN_FLAGS, '--threads', '65', '--crop-min', '0', '--out', path.join(root, 'refused')]);
    assert.strictEqual(invalid.status, 1);
    assert.match(invalid.stderr, /^error: Invalid training config: .*replicas must be an integer in \[0, 64\].*cropScaleMin must be .* \(--threads, --crop-min\)\.$/m);
  });

  it('writes hostile names exactly in --json, with every control character escaped', function () {
    const query = path.join(data, HOSTILE_CLASS, hostileImage(0));
    const json = toFile(['similar', runDir, query, '-k', '5000', '--json']).stdout.toString();
    assert.ok(!RAW_CONTROL.test(json), json);
    const answer = JSON.parse(json);
    assert.strictEqual(answer.query, query);
    const hostile = answer.neighbours.filter((n: { label: string }) => n.label === HOSTILE_CLASS).map((n: { path: string }) => n.path);
    assert.deepStrictEqual(hostile.sort(), [1, 2, 3].map((i) => path.join(data, HOSTILE_CLASS, hostileImage(i))).sort());
  });
});
