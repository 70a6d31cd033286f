/**
 * Writes the shipped sample dataset: Fashion-MNIST images as class-folder PNGs.
 *
 *   node out/scripts/make-sample.js [--source dir] [--out dir] [--train-per-class N] [--test-per-class N] [--overwrite]
 *
 * Reads the IDX files of Debian's dataset-fashion-mnist package and takes the first N images of
 * each class from the training and test sets, so the sample is the same on every machine.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { gunzipSync } from 'zlib';
import sharp from 'sharp';

export const FASHION_MNIST_CLASSES = ['T-shirt_top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle_boot'];

const IDX_IMAGES_MAGIC = 0x00000803;
const IDX_LABELS_MAGIC = 0x00000801;

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  /** count * rows * cols grey bytes. */
  pixels: Uint8Array;
}

/** Parses an IDX3 unsigned-byte image file (gzipped or not). */
export function readIdxImages(file: Buffer): IdxImages {
  const bytes = maybeGunzip(file);
  expectMagic(bytes, IDX_IMAGES_MAGIC, 'image');
  const count = bytes.readUInt32BE(4);
  const rows = bytes.readUInt32BE(8);
  const cols = bytes.readUInt32BE(12);
  const expected = 16 + count * rows * cols;
  if (bytes.length !== expected) {
    throw new Error(`IDX image file has ${bytes.length} bytes, expected ${expected} for ${count} images of ${rows}x${cols}`);
  }
  return { count, rows, cols, pixels: new Uint8Array(bytes.buffer, bytes.byteOffset + 16, count * rows * cols) };
}

/** Parses an IDX1 unsigned-byte label file (gzipped or not). */
export function readIdxLabels(file: Buffer): Uint8Array {
  const bytes = maybeGunzip(file);
  expectMagic(bytes, IDX_LABELS_MAGIC, 'label');
  const count = bytes.readUInt32BE(4);
  if (bytes.length !== 8 + count) {
    throw new Error(`IDX label file has ${bytes.length} bytes, expected ${8 + count} for ${count} labels`);
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset + 8, count);
}

/** Indices of the first `perClass` images of each class, in file order. */
export function firstPerClass(labels: Uint8Array, classCount: number, perClass: number): number[] {
  const taken = new Array<number>(classCount).fill(0);
  const chosen: number[] = [];
  labels.forEach((label, index) => {
    if (taken[label] < perClass) {
      taken[label] += 1;
      chosen.push(index);
    }
  });
  const short = taken.findIndex((n) => n < perClass);
  if (short >= 0) {
    throw new Error(`class ${short} has only ${taken[short]} images, fewer than ${perClass}`);
  }
  return chosen;
}

export interface SampleOptions {
  sourceDir: string;
  outDir: string;
  trainPerClass: number;
  testPerClass: number;
  overwrite: boolean;
}

export async function writeSample(options: SampleOptions): Promise<{ train: number; test: number }> {
  await prepareOutDir(options.outDir, options.overwrite);
  const train = await writeSplit(options, 'train', 'train', options.trainPerClass);
  const test = await writeSplit(options, 't10k', 'test', options.testPerClass);
  return { train, test };
}

async function writeSplit(options: SampleOptions, idxPrefix: string, split: string, perClass: number): Promise<number> {
  const images = readIdxImages(await fs.readFile(path.join(options.sourceDir, `${idxPrefix}-images-idx3-ubyte.gz`)));
  const labels = readIdxLabels(await fs.readFile(path.join(options.sourceDir, `${idxPrefix}-labels-idx1-ubyte.gz`)));
  if (labels.length !== images.count) {
    throw new Error(`${idxPrefix}: ${images.count} images but ${labels.length} labels`);
  }
  for (const name of FASHION_MNIST_CLASSES) {
    await fs.mkdir(path.join(options.outDir, split, name), { recursive: true });
  }
  const imageBytes = images.rows * images.cols;
  const chosen = firstPerClass(labels, FASHION_MNIST_CLASSES.length, perClass);
  for (const index of chosen) {
    const pixels = images.pixels.subarray(index * imageBytes, (index + 1) * imageBytes);
    const file = path.join(options.outDir, split, FASHION_MNIST_CLASSES[labels[index]], `${String(index).padStart(5, '0')}.png`);
    await sharp(pixels, { raw: { width: images.cols, height: images.rows, channels: 1 } })
      .toColourspace('b-w')
      .png({ compressionLevel: 9 })
      .toFile(file);
  }
  return chosen.length;
}

/** Refuses to mix a new sample into old files; with --overwrite, replaces only the train/ and test/ it writes. */
async function prepareOutDir(outDir: string, overwrite: boolean): Promise<void> {
  const existing = await fs.readdir(outDir).catch(() => [] as string[]);
  const splits = existing.filter((name) => name === 'train' || name === 'test');
  if (splits.length > 0 && !overwrite) {
    throw new Error(`${outDir} already holds ${splits.join(' and ')}/. Pass --overwrite to replace them, or choose another --out.`);
  }
  for (const split of splits) {
    await fs.rm(path.join(outDir, split), { recursive: true });
  }
}

function maybeGunzip(file: Buffer): Buffer {
  return file[0] === 0x1f && file[1] === 0x8b ? gunzipSync(file) : file;
}

function expectMagic(bytes: Buffer, magic: number, kind: string): void {
  if (bytes.length < 8 || bytes.readUInt32BE(0) !== magic) {
    throw new Error(`not an IDX ${kind} file (magic number ${bytes.length >= 4 ? bytes.readUInt32BE(0).toString(16) : 'missing'})`);
  }
}

function parseArguments(argv: string[]): SampleOptions {
  const options: SampleOptions = {
    sourceDir: '/usr/share/datasets/fashion-mnist',
    outDir: path.resolve(__dirname, '..', '..', 'sample', 'fashion-mnist'),
    trainPerClass: 100,
    testPerClass: 20,
    overwrite: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const next = argv[++i];
      if (next === undefined) {
        throw new Error(`${flag} needs a value`);
      }
      return next;
    };
    const count = () => {
      const n = Number(value());
      if (!(Number.isInteger(n) && n > 0)) {
        throw new Error(`${flag} needs a positive integer`);
      }
      return n;
    };
    switch (flag) {
      case '--source': options.sourceDir = path.resolve(value()); break;
      case '--out': options.outDir = path.resolve(value()); break;
      case '--train-per-class': options.trainPerClass = count(); break;
      case '--test-per-class': options.testPerClass = count(); break;
      case '--overwrite': options.overwrite = true; break;
      default: throw new Error(`unknown option ${flag}`);
    }
  }
  return options;
}

if (require.main === module) {
  const options = parseArguments(process.argv.slice(2));
  writeSample(options).then(
    ({ train, test }) => console.log(`Wrote ${train} training and ${test} test images to ${options.outDir}`),
    (error: Error) => {
      console.error(`make-sample: ${error.message}`);
      process.exitCode = 1;
    },
  );
}
