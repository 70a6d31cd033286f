// Embeddings for use outside the engine: NumPy .npy (format version 1.0, written by hand: a
// magic string, a Python-literal header, then the raw array) with the row's image path per line in
// a paths file, and CSV with one row per image (path, label, f0 … fn).
import * as fs from 'fs';
import * as os from 'os';

const NPY_MAGIC = [0x93, ...Buffer.from('NUMPY', 'latin1')];
/** numpy aligns the data to 64 bytes (the 1.0 spec asks for 16; 64 satisfies both). */
const NPY_ALIGNMENT = 64;
/** Rows of CSV text gathered before each write. */
const CSV_ROWS_PER_WRITE = 256;

/**
 * The .npy 1.0 preamble for a C-order float32 array: magic, version 1.0, little-endian uint16
 * header length, then the header dict padded with spaces and ended by '\n'.
 */
export function npyHeader(shape: number[]): Uint8Array {
  const descr = os.endianness() === 'LE' ? '<f4' : '>f4';
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const preamble = NPY_MAGIC.length + 2 + 2;
  const unpadded = preamble + dict.length + 1;
  const headerLength = dict.length + 1 + ((NPY_ALIGNMENT - (unpadded % NPY_ALIGNMENT)) % NPY_ALIGNMENT);
  const bytes = new Uint8Array(preamble + headerLength);
  bytes.set(NPY_MAGIC, 0);
  bytes.set([1, 0], NPY_MAGIC.length);
  new DataView(bytes.buffer).setUint16(NPY_MAGIC.length + 2, headerLength, true);
  const text = dict.padEnd(headerLength - 1, ' ') + '\n';
  bytes.set(Buffer.from(text, 'latin1'), preamble);
  return bytes;
}

/** Opens `${file}.tmp-<pid>`, lets `write` fill it, then renames it over `file`. */
function writeThroughTemporary(file: string, write: (fd: number) => void): void {
  const temporary = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(temporary, 'w');
  try {
    try {
      write(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw error;
  }
}

function writeAll(fd: number, data: Uint8Array | string): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  for (let offset = 0; offset < bytes.byteLength;) offset += fs.writeSync(fd, bytes, offset, bytes.byteLength - offset);
}

/** `vectors` (count × dims, row-major) as a .npy file loadable by numpy.load. */
export function writeNpy(file: string, vectors: Float32Array, count: number, dims: number): void {
  writeThroughTemporary(file, (fd) => {
    writeAll(fd, npyHeader([count, dims]));
    writeAll(fd, new Uint8Array(vectors.buffer, vectors.byteOffset, count * dims * 4));
  });
}

/** One line per path; a path containing a line break could not be read back, so it is refused. */
export function writeLines(file: string, lines: string[]): void {
  const broken = lines.find((line) => /[\r\n]/.test(line));
  if (broken !== undefined) throw new Error(`Cannot list ${JSON.stringify(broken)} one per line: its name contains a line break.`);
  writeThroughTemporary(file, (fd) => writeAll(fd, lines.map((line) => line + '\n').join('')));
}

/** RFC 4180: quote a field holding a comma, quote or line break; double its quotes. */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** 9 significant digits, which always give back the same float32, without trailing zeros. */
export function formatFloat32(value: number): string {
  return String(Number(value.toPrecision(9)));
}

/** CSV with a header row: path, label, f0 … f(dims-1); an unlabelled image has an empty label. */
export function writeCsv(file: string, paths: string[], labels: (string | null)[], vectors: Float32Array, dims: number): void {
  writeThroughTemporary(file, (fd) => {
    writeAll(fd, ['path', 'label', ...Array.from({ length: dims }, (_, j) => `f${j}`)].join(',') + '\n');
    for (let start = 0; start < paths.length; start += CSV_ROWS_PER_WRITE) {
      const rows: string[] = [];
      for (let row = start; row < Math.min(paths.length, start + CSV_ROWS_PER_WRITE); row++) {
        const values = Array.from(vectors.subarray(row * dims, (row + 1) * dims), formatFloat32);
        rows.push([csvField(paths[row]), csvField(labels[row] ?? ''), ...values].join(',') + '\n');
      }
      writeAll(fd, rows.join(''));
    }
  });
}
