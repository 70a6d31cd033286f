// A run's embeddings as a TensorBoard projector folder, in the format its projector plugin reads
// (tensorboard/plugins/projector: projector_config.proto and projector_plugin.py; the format is
// described at https://www.tensorflow.org/tensorboard/tensorboard_projector_plugin):
//   tensors.tsv             one row per image, one tab-separated float per dimension, no header
//   metadata.tsv            a header row (path, class[, split]) then one row per image, in order
//   sprite.png              every image's thumbnail on a square grid, row-major in the same order
//   projector_config.pbtxt  a text-format ProjectorConfig naming the three files (relative paths,
//                           which the plugin resolves against the folder holding the config)
// `tensorboard --logdir <folder>` then shows it under Projector. The folder is written beside its
// target under a temporary name and renamed into place, so it is always a whole export.
// `simsiam export <run> --format projector` is exportProjector, on the run's up-to-date index.
import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';
import sharp from 'sharp';
import { decodeImage, ImageDecodeError } from '../data/imageDecode';
import { DECODE_CONCURRENCY, mapWithConcurrency } from '../data/batchLoader';
import { scanDataset } from '../data/dataset';
import { SkippedFiles } from '../data/skippedFiles';
import { message, type Emit } from '../protocol';
import { isInsideFolder } from '../paths';
import { formatFloat32 } from './exportFormats';
import { withFreshIndex } from './service';

export const PROJECTOR_FILES = {
  tensors: 'tensors.tsv',
  metadata: 'metadata.tsv',
  sprite: 'sprite.png',
  config: 'projector_config.pbtxt',
} as const;

/** The projector's web client refuses sprite images larger than this on either side. */
export const MAX_SPRITE_SIDE = 8192;
/** Thumbnails are at most this many pixels wide; fewer when the grid would outgrow MAX_SPRITE_SIDE. */
export const MAX_THUMBNAIL_SIDE = 64;
/** Below this a thumbnail shows nothing recognisable: the sprite is left out instead. */
const MIN_THUMBNAIL_SIDE = 4;
/** Grey, so an image that could not be decoded stands out from black and white thumbnails. */
const MISSING_TILE = 128;
const TENSOR_ROWS_PER_WRITE = 256;
/** The run's own folders: an export never goes inside one of them. */
const RUN_OWN_FOLDERS = ['checkpoints', 'index'];

export interface ProjectorRow {
  /** Shown in the projector: '/'-separated, relative to the dataset root. */
  relPath: string;
  /** Absolute, for the thumbnail. */
  file: string;
  label: string | null;
  split: 'train' | 'test' | null;
}

export interface ProjectorExport {
  folder: string;
  files: string[];
  /** Side of one thumbnail in sprite.png; null when the sprite was left out. */
  thumbnailSide: number | null;
  /** Images whose thumbnail could not be made (a grey tile stands in), with the reason. */
  missingThumbnails: { file: string; reason: string }[];
}

export interface ProjectorOptions {
  /** The embedding's name in the projector's menu. */
  tensorName?: string;
  /** Largest thumbnail side; default MAX_THUMBNAIL_SIDE. 0 leaves the sprite out. */
  maxThumbnailSide?: number;
  onProgress?: (done: number, total: number) => void;
}

/** The thumbnail side that fits `count` thumbnails on a square grid within MAX_SPRITE_SIDE, or null. */
export function spriteLayout(count: number, maxThumbnailSide = MAX_THUMBNAIL_SIDE): { columns: number; side: number } | null {
  if (count === 0 || maxThumbnailSide < MIN_THUMBNAIL_SIDE) return null;
  const columns = Math.ceil(Math.sqrt(count));
  const side = Math.min(maxThumbnailSide, Math.floor(MAX_SPRITE_SIDE / columns));
  return side < MIN_THUMBNAIL_SIDE ? null : { columns, side };
}

/**
 * A TSV field: the projector splits rows on '\n' and fields on '\t' and knows no quoting, so
 * those characters (and '\r', which it would keep) are written as the two characters \t, \n, \r.
 */
export function tsvField(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}

/** Double-quoted text-format proto string. */
function protoString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export function projectorConfigText(tensorName: string, count: number, dims: number, thumbnailSide: number | null): string {
  const lines = [
    'embeddings {',
    `  tensor_name: ${protoString(tensorName)}`,
    `  tensor_shape: ${count}`,
    `  tensor_shape: ${dims}`,
    `  tensor_path: ${protoString(PROJECTOR_FILES.tensors)}`,
    `  metadata_path: ${protoString(PROJECTOR_FILES.metadata)}`,
  ];
  if (thumbnailSide !== null) {
    lines.push('  sprite {', `    image_path: ${protoString(PROJECTOR_FILES.sprite)}`,
      `    single_image_dim: ${thumbnailSide}`, `    single_image_dim: ${thumbnailSide}`, '  }');
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

/** Header and rows; the split column only when some row has a split. */
export function metadataText(rows: ProjectorRow[]): string {
  const withSplit = rows.some((row) => row.split !== null);
  const header = ['path', 'class', ...(withSplit ? ['split'] : [])].join('\t');
  const lines = rows.map((row) => [tsvField(row.relPath), tsvField(row.label ?? ''), ...(withSplit ? [row.split ?? ''] : [])].join('\t'));
  return [header, ...lines].join('\n') + '\n';
}

function writeTensors(file: string, vectors: Float32Array, count: number, dims: number): void {
  const fd = fs.openSync(file, 'wx');
  try {
    for (let start = 0; start < count; start += TENSOR_ROWS_PER_WRITE) {
      const rows: string[] = [];
      for (let row = start; row < Math.min(count, start + TENSOR_ROWS_PER_WRITE); row++) {
        rows.push(Array.from(vectors.subarray(row * dims, (row + 1) * dims), formatFloat32).join('\t') + '\n');
      }
      fs.writeSync(fd, rows.join(''));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** `file` as a side × side RGB thumbnail: the centre square, as the model's eval view crops it. */
async function thumbnail(file: string, side: number): Promise<Buffer> {
  // decodeImage reads what the engine reads (BMP included), upright and flattened to sRGB.
  const image = await decodeImage(file, side);
  return sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.length),
    { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(side, side, { fit: 'cover', position: 'centre' })
    .raw()
    .toBuffer();
}

async function writeSprite(file: string, rows: ProjectorRow[], layout: { columns: number; side: number },
  onThumbnail: () => void): Promise<ProjectorExport['missingThumbnails']> {
  const { columns, side } = layout;
  const gridRows = Math.ceil(rows.length / columns);
  const width = columns * side;
  const pixels = Buffer.alloc(width * gridRows * side * 3, 0);
  const missing: ProjectorExport['missingThumbnails'] = [];
  const positions = rows.map((_, i) => i);
  await mapWithConcurrency(positions, DECODE_CONCURRENCY, async (i) => {
    let tile: Buffer;
    try {
      tile = await thumbnail(rows[i].file, side);
    } catch (error) {
      missing.push({ file: rows[i].file, reason: error instanceof ImageDecodeError ? error.reason : (error as Error).message });
      tile = Buffer.alloc(side * side * 3, MISSING_TILE);
    }
    const left = (i % columns) * side;
    const top = Math.floor(i / columns) * side;
    for (let y = 0; y < side; y++) {
      tile.copy(pixels, ((top + y) * width + left) * 3, y * side * 3, (y + 1) * side * 3);
    }
    onThumbnail();
  });
  await sharp(pixels, { raw: { width, height: gridRows * side, channels: 3 } }).png().toFile(file);
  return missing.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

/**
 * Refuses a target that is the run folder itself, lies inside one of its own folders, or is an
 * existing folder that is not a projector export (which this would replace). Folders directly in
 * the run folder (the default, <run>/projector) and anywhere outside it are fine.
 */
export function checkProjectorTarget(runDir: string, folder: string): void {
  const run = fs.existsSync(runDir) ? fs.realpathSync.native(runDir) : path.resolve(runDir);
  const parent = path.dirname(path.resolve(folder));
  let resolved: string;
  try {
    resolved = path.join(fs.realpathSync.native(parent), path.basename(folder));
  } catch {
    throw new Error(`Cannot export to ${folder}: its parent folder ${parent} does not exist. Create it, or choose another folder.`);
  }
  if (resolved === run) throw new Error(`Cannot export to ${folder}: it is the run folder itself. Choose a folder in it, such as ${path.join(folder, 'projector')}.`);
  if (isInsideFolder(run, resolved)) {
    const [first, ...inside] = path.relative(run, resolved).split(path.sep);
    if (inside.length || RUN_OWN_FOLDERS.includes(first.toLowerCase())) {
      throw new Error(`Cannot export to ${folder}: it is inside the ${first}/ folder of run ${run}, which only the run writes. ` +
        'Choose a folder outside the run folder, or directly in it.');
    }
  }
  const stats = fs.statSync(resolved, { throwIfNoEntry: false });
  if (!stats) return;
  if (!stats.isDirectory()) throw new Error(`Cannot export to ${folder}: it is a file. Give the name of a folder to create.`);
  const entries = fs.readdirSync(resolved);
  if (entries.length && !entries.includes(PROJECTOR_FILES.config)) {
    throw new Error(`Cannot export to ${folder}: it is a folder that holds other files (it has no ${PROJECTOR_FILES.config} of an earlier export). ` +
      'Give a new folder name, or empty it first.');
  }
}

/** Replaces `folder` (an earlier export, or nothing) with the filled `temporary` folder. */
function moveFolderIntoPlace(temporary: string, folder: string): void {
  const old = `${folder}.old-${process.pid}-${randomBytes(6).toString('hex')}`;
  const hadOld = fs.existsSync(folder);
  if (hadOld) fs.renameSync(folder, old);
  try {
    fs.renameSync(temporary, folder);
  } catch (error) {
    if (hadOld) fs.renameSync(old, folder);
    throw error;
  }
  if (hadOld) fs.rmSync(old, { recursive: true, force: true });
}

/**
 * Writes `vectors` (one row of `dims` float32 per row of `rows`, row-major) as a projector folder
 * at `folder`, replacing an earlier export there. Check the target with checkProjectorTarget first.
 */
export async function writeProjectorFolder(folder: string, rows: ProjectorRow[], vectors: Float32Array, dims: number,
  options: ProjectorOptions = {}): Promise<ProjectorExport> {
  const count = rows.length;
  if (vectors.length < count * dims) throw new Error(`${count} rows of ${dims} floats need ${count * dims} values; got ${vectors.length}.`);
  const target = path.resolve(folder);
  const temporary = `${target}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  const layout = spriteLayout(count, options.maxThumbnailSide ?? MAX_THUMBNAIL_SIDE);
  let done = 0;
  const total = layout ? count : 0;
  options.onProgress?.(0, total);
  let missingThumbnails: ProjectorExport['missingThumbnails'] = [];
  try {
    fs.mkdirSync(temporary);
    writeTensors(path.join(temporary, PROJECTOR_FILES.tensors), vectors, count, dims);
    fs.writeFileSync(path.join(temporary, PROJECTOR_FILES.metadata), metadataText(rows), { flag: 'wx' });
    if (layout) {
      missingThumbnails = await writeSprite(path.join(temporary, PROJECTOR_FILES.sprite), rows, layout,
        () => options.onProgress?.(++done, total));
    }
    fs.writeFileSync(path.join(temporary, PROJECTOR_FILES.config),
      projectorConfigText(options.tensorName ?? 'embeddings', count, dims, layout?.side ?? null), { flag: 'wx' });
    moveFolderIntoPlace(temporary, target);
  } catch (error) {
    fs.rmSync(temporary, { recursive: true, force: true });
    throw new Error(`Could not write the projector folder ${target}: ${(error as Error).message}. ` +
      'Free disk space or fix permissions, or choose another folder.', { cause: error });
  }
  const names = [PROJECTOR_FILES.tensors, PROJECTOR_FILES.metadata, ...(layout ? [PROJECTOR_FILES.sprite] : []), PROJECTOR_FILES.config];
  return { folder: target, files: names.map((name) => path.join(target, name)), thumbnailSide: layout?.side ?? null, missingThumbnails };
}

/**
 * The split ('train' / 'test') of each of `relPaths` as the run's dataset scan assigns it (the
 * same options give the same held-out images), null for a path the scan no longer lists.
 */
export async function splitsOf(root: string, runsDir: string, options: { testFraction: number; seed: number },
  relPaths: string[]): Promise<('train' | 'test' | null)[]> {
  const scan = await scanDataset(root, { excludeDirs: [runsDir], ...options });
  const splitOf = new Map<string, 'train' | 'test'>();
  for (const record of [...scan.train, ...scan.test]) splitOf.set(record.relPath, record.split);
  return relPaths.map((relPath) => splitOf.get(relPath) ?? null);
}

/**
 * The run's embeddings (its index brought up to date with the latest checkpoint, as the npy and
 * CSV exports use) as a projector folder at `out` (default <run>/projector), with each image's
 * class folder and split. Images that give no thumbnail are reported as skipped files. Returns the
 * files written.
 */
export async function exportProjector(runDir: string, out: string | undefined, emit: Emit): Promise<string[]> {
  const resolvedRun = path.resolve(runDir);
  const folder = path.resolve(out ?? path.join(resolvedRun, 'projector'));
  if (fs.existsSync(resolvedRun)) checkProjectorTarget(resolvedRun, folder);
  return withFreshIndex(resolvedRun, `exporting embeddings to ${folder}`, emit, async ({ record, manifest, search }) => {
    const { relPath, label } = manifest.files;
    const splits = await splitsOf(manifest.datasetRoot, path.dirname(resolvedRun), record.config, relPath);
    const rows = relPath.map((rel, row): ProjectorRow => ({
      relPath: rel,
      file: path.join(manifest.datasetRoot, ...rel.split('/')),
      label: label[row] === null ? null : manifest.classes[label[row]!] ?? null,
      split: splits[row],
    }));
    const written = await writeProjectorFolder(folder, rows, await search.rows(), manifest.dims, {
      tensorName: `${path.basename(resolvedRun)} (step ${manifest.checkpoint.step})`,
      onProgress: (done, total) => emit(message({ type: 'progress', task: 'thumbnails', done, total })),
    });
    const skipped = new SkippedFiles(emit);
    for (const { file, reason } of written.missingThumbnails) skipped.report(file, reason);
    return written.files;
  });
}
