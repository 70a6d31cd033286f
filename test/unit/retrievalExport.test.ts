import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Rng } from '../../src/training/data/rng';
import { csvField, formatFloat32, npyHeader, writeCsv, writeLines } from '../../src/training/retrieval/exportFormats';

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

  it('writes a CSV row per vector and refuses a paths file it could not read back', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-export-'));
    try {
      const file = path.join(dir, 'e.csv');
      writeCsv(file, ['x/a,1.png', 'b.png'], ['x', null], Float32Array.from([0.25, -1, 3e-8, 0.1]), 2);
      assert.strictEqual(fs.readFileSync(file, 'utf8'), `path,label,f0,f1\n"x/a,1.png",x,0.25,-1\nb.png,,${formatFloat32(Math.fround(3e-8))},${formatFloat32(Math.fround(0.1))}\n`);
      assert.throws(() => writeLines(path.join(dir, 'p.txt'), ['ok.png', 'bad\nname.png']), /line break/);
      assert.deepStrictEqual(fs.readdirSync(dir), ['e.csv'], 'no temporary file is left behind');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
