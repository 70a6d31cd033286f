import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Rng } from '../../src/training/data/rng';
import {
  checkExportTarget, csvField, formatFloat32, npyHeader, npyPathsFile, pathsJson, writeCsv, writeNpyWithPaths,
} from '../../src/training/retrieval/exportFormats';
import { RUN_FILE } from '../../src/training/run/runStore';

/** Reads back what npyHeader wrote: version, header text, and where the data starts. */
function parseNpyPreamble(bytes: Uint8Array): { major: number; minor: number; header: string; dataOffset: number } {
  assert.deepStrictEqual([...bytes.subarray(0, 6)], [0x93, ...Buffer.from('NUMPY')]);
  const headerLength = bytes[8] | (bytes[9] << 8);
  return { major: bytes[6], minor: bytes[7], header: Buffer.from(bytes.subarray(10, 10 + headerLength)).toString('latin1'), dataOffset: 10 + headerLength };
}

describe('retrieval export formats', () => {
  it('writes an NPY 1.0 header whose data starts 64-byte aligned, for any shape', () => {
    for (const shape of [[0, 512], [1, 1], [50_000, 512], [123_456_789, 2048], [7]]) {
      const { major, minor, header, dataOffset } = parseNpyPreamble(npyHeader(shape));
      assert.deepStrictEqual([major, minor], [1, 0]);
      assert.strictEqual(dataOffset % 64, 0, `shape ${shape}`);
      assert.ok(header.endsWith('\n') && !header.slice(0, -1).includes('\n'));
      const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
      assert.strictEqual(header.trimEnd(), `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`);
    }
  });

  it('formats every float32 so that it parses back to the same float32', () => {
    const rng = new Rng(4);
    const view = new DataView(new ArrayBuffer(4));
    for (let i = 0; i < 20_000; i++) {
      view.setUint32(0, Math.floor(rng.next() * 2 ** 32));
      const value = view.getFloat32(0);
      if (!Number.isFinite(value)) continue;
      assert.strictEqual(Math.fround(Number(formatFloat32(value))), value, `${value} → ${formatFloat32(value)}`);
    }
    assert.strictEqual(formatFloat32(Math.fround(0.5)), '0.5');
    assert.strictEqual(formatFloat32(-1), '-1');
  });

  it('quotes CSV fields with commas, quotes or line breaks', () => {
    assert.strictEqual(csvField('cats/a.png'), 'cats/a.png');
    assert.strictEqual(csvField('a,b.png'), '"a,b.png"');
    assert.strictEqual(csvField('say "cheese".png'), '"say ""cheese"".png"');
    assert.strictEqual(csvField('two\nlines.png'), '"two\nlines.png"');
  });

  it('writes a CSV row per vector, through a temporary file it does not leave behind', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-export-'));
    try {
      const file = path.join(dir, 'e.csv');
      writeCsv(file, ['x/a,1.png', 'b.png'], ['x', null], Float32Array.from([0.25, -1, 3e-8, 0.1]), 2);
      assert.strictEqual(fs.readFileSync(file, 'utf8'), `path,label,f0,f1\n"x/a,1.png",x,0.25,-1\nb.png,,${formatFloat32(Math.fround(3e-8))},${formatFloat32(Math.fround(0.1))}\n`);
      assert.deepStrictEqual(fs.readdirSync(dir), ['e.csv'], 'no temporary file is left behind');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lists any file names as a JSON array that reads back the same, one name per line', () => {
    const rng = new Rng(11);
    const specials = ['\n', '\r', '\r\n', '\u0085', '\u2028', '\u2029', '\t', '\0', '"', '\\', ',', '\ud83d', '\ude00', '🐱', 'é'];
    const names = Array.from({ length: 300 }, () => Array.from({ length: 1 + Math.floor(rng.next() * 8) }, () =>
      rng.next() < 0.5 ? specials[Math.floor(rng.next() * specials.length)] : String.fromCharCode(Math.floor(rng.next() * 0x3000))).join(''));
    const text = pathsJson(names);
    assert.deepStrictEqual(JSON.parse(text), names);
    assert.strictEqual(text.split(/\r\n|[\n\r\u0085\u2028\u2029\v\f\x1c-\x1e]/).length, names.length + 3, 'no name spans lines, even for Python\'s splitlines');
    assert.deepStrictEqual(JSON.parse(pathsJson([])), []);
  });

  it('writes the .npy and its paths file as a pair with the same rows', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-export-'));
    try {
      const file = path.join(dir, 'E.NPY');
      assert.strictEqual(npyPathsFile(file), path.join(dir, 'E.paths.json'));
      assert.strictEqual(npyPathsFile(path.join(dir, 'plain')), path.join(dir, 'plain.paths.json'));
      const names = ['a\nb.png', 'c.png', 'd\u2028e.png'];
      writeNpyWithPaths(file, npyPathsFile(file), Float32Array.from([1, 2, 3, 4, 5, 6]), 2, names);
      const bytes = fs.readFileSync(file);
      const headerLength = bytes.readUInt16LE(8);
      assert.match(bytes.subarray(10, 10 + headerLength).toString('latin1'), /'shape': \(3, 2\)/);
      assert.deepStrictEqual([...new Float32Array(bytes.buffer.slice(bytes.byteOffset + 10 + headerLength, bytes.byteOffset + bytes.byteLength))], [1, 2, 3, 4, 5, 6]);
      assert.deepStrictEqual(JSON.parse(fs.readFileSync(npyPathsFile(file), 'utf8')), names);
      assert.deepStrictEqual(fs.readdirSync(dir).sort(), ['E.NPY', 'E.paths.json']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses targets that are the run's own files or inside its folders, also through a linked folder or in another case", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-export-'));
    try {
      const runDir = path.join(root, 'run');
      fs.mkdirSync(path.join(runDir, 'checkpoints', 'step-1'), { recursive: true });
      fs.writeFileSync(path.join(runDir, RUN_FILE), '{}');
      fs.symlinkSync(runDir, path.join(root, 'link'));
      for (const target of ['run.json', 'RUN.JSON', 'status.json', 'metrics.jsonl', 'checkpoint.json', 'training.lock', 'index.lock',
        'checkpoints/step-1/weights.bin', 'checkpoints/new.npy', 'index/e.npy']) {
        for (const base of [runDir, path.join(root, 'link')]) {
          const file = path.join(base, ...target.split('/'));
          if (target.startsWith('index/')) fs.mkdirSync(path.join(runDir, 'index'), { recursive: true });
          assert.throws(() => checkExportTarget(runDir, file), (error: Error) => error.message.includes(file) && error.message.includes(runDir), file);
        }
      }
      for (const allowed of [path.join(runDir, 'embeddings.npy'), path.join(runDir, 'run.json.npy'), path.join(root, 'run.json'), path.join(root, '..e.npy')]) {
        checkExportTarget(runDir, allowed);
      }
      // A link to a run file is replaced, not written through.
      const link = path.join(root, 'features.csv');
      fs.symlinkSync(path.join(runDir, RUN_FILE), link);
      checkExportTarget(runDir, link);
      writeCsv(link, ['a.png'], [null], Float32Array.from([1]), 1);
      assert.strictEqual(fs.readFileSync(path.join(runDir, RUN_FILE), 'utf8'), '{}');
      assert.ok(!fs.lstatSync(link).isSymbolicLink());

      assert.throws(() => checkExportTarget(runDir, path.join(root, 'missing', 'e.npy')), /missing.*does not exist/);
      assert.throws(() => checkExportTarget(runDir, runDir), /is a folder/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
