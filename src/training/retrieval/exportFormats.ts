// Embeddings for use outside the engine: NumPy .npy (format version 1.0, written by hand: a
// magic string, a Python-literal header, then the raw array) with a paths file listing row i's
// image as element i of a JSON array (any file name survives it, line breaks included), and CSV
// with one row per image (path, label, f0 … fn). An export never replaces a file of the run it
// comes from, and a file it replaces is either the old one or the whole new one.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CHECKPOINT_POINTER, METRICS_FILE, RUN_FILE, STATUS_FILE, moveIntoPlace, writeTemporary } from '../run/runStore';
import { RUN_LOCK_FILES } from '../run/runLock';
import { isInsideFolder } from '../paths';

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

/** The run's own files: an export may sit beside them in the run folder, but never replace one. */
const RUN_OWN_FILES = [RUN_FILE, STATUS_FILE, METRICS_FILE, CHECKPOINT_POINTER, ...Object.values(RUN_LOCK_FILES)];

const realFolder = (folder: string) => fs.realpathSync.native(folder);

/**
 * Refuses an export target that would write over one of the run's own files or anywhere inside its
 * folders (checkpoints/, index/), also through links to them, or that cannot be a file at all.
 */
export function checkExportTarget(runDir: string, target: string): void {
  const folder = path.dirname(target);
  let resolved: string;
  try {
    resolved = path.join(realFolder(folder), path.basename(target));
  } catch {
    throw new Error(`Cannot export to ${target}: its folder ${folder} does not exist. Create it, or choose another file.`);
  }
  if (fs.statSync(resolved, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`Cannot export to ${target}: it is a folder. Give a file name, such as ${path.join(target, 'embeddings.npy')}.`);
  }
  let run = path.resolve(runDir);
  try {
    run = realFolder(run);
  } catch {
    // a run folder that does not exist owns no files
  }
  if (!isInsideFolder(run, resolved)) return;
  const [first, ...inside] = path.relative(run, resolved).split(path.sep);
  if (inside.length) {
    throw new Error(`Cannot export to ${target}: it is inside the ${first}/ folder of run ${run}, which only the run writes. ` +
      'Choose a file outside the run folder, or directly in it.');
  }
  // Case-insensitive: on macOS and Windows RUN.JSON is run.json.
  if (RUN_OWN_FILES.some((name) => name.toLowerCase() === first.toLowerCase())) {
    throw new Error(`Cannot export to ${target}: it would replace the ${first} of run ${run}. Choose another file name.`);
  }
}

/** The paths file that goes with an .npy export: <file without .npy>.paths.json. */
export function npyPathsFile(file: string): string {
  return `${file.replace(/\.npy$/i, '')}.paths.json`;
}

/**
 * A JSON array of strings, one element per line. JSON escapes line breaks and control characters;
 * the Unicode line separators are escaped too, so that no editor or line reader splits an element.
 */
export function pathsJson(paths: string[]): string {
  if (!paths.length) return '[]\n';
  const escape = (text: string) => JSON.stringify(text).replace(/[\u0085\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `[\n${paths.map(escape).join(',\n')}\n]\n`;
}

/**
 * `vectors` (one row of `dims` float32 per path, row-major) as a .npy file loadable by numpy.load,
 * and `paths` as its paths file: row i is the image paths[i]. Both are written to temporaries
 * first; then the paths file is moved into place and the .npy last, so a reader never finds a new
 * .npy beside an old paths file, and a failure before that leaves the old pair as it was.
 */
export function writeNpyWithPaths(file: string, pathsFile: string, vectors: Float32Array, dims: number, paths: string[]): void {
  const count = paths.length;
  const npyTemporary = writeTemporary(file, (append) => {
    append(npyHeader([count, dims]));
    append(new Uint8Array(vectors.buffer, vectors.byteOffset, count * dims * 4));
  });
  let pathsTemporary: string;
  try {
    pathsTemporary = writeTemporary(pathsFile, (append) => append(pathsJson(paths)));
  } catch (error) {
    fs.rmSync(npyTemporary, { force: true });
    throw error;
  }
  try {
    moveIntoPlace(pathsTemporary, pathsFile);
  } catch (error) {
    fs.rmSync(npyTemporary, { force: true });
    throw error;
  }
  try {
    moveIntoPlace(npyTemporary, file);
  } catch (error) {
    // The old .npy stays: a paths file describing other rows must not stay beside it.
    fs.rmSync(pathsFile, { force: true });
    throw new Error(`${(error as Error).message}; ${pathsFile} was removed, as it no longer matched it.`, { cause: error });
  }
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
  moveIntoPlace(writeTemporary(file, (append) => {
    append(['path', 'label', ...Array.from({ length: dims }, (_, j) => `f${j}`)].join(',') + '\n');
    for (let start = 0; start < paths.length; start += CSV_ROWS_PER_WRITE) {
      const rows: string[] = [];
      for (let row = start; row < Math.min(paths.length, start + CSV_ROWS_PER_WRITE); row++) {
        const values = Array.from(vectors.subarray(row * dims, (row + 1) * dims), formatFloat32);
        rows.push([csvField(paths[row]), csvField(labels[row] ?? ''), ...values].join(',') + '\n');
      }
      append(rows.join(''));
    }
  }), file);
}
