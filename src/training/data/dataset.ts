/**
 * Turns a folder of images into train/test record lists with optional class labels.
 *
 * Layouts understood (class folders may nest further; everything below a class folder belongs to it):
 *   root/*.jpg                         unlabelled, everything is training data
 *   root/<class>/**                    labelled, a stratified test split is held out
 *   root/train/<class>/**, root/test/<class>/** (or val/)   labelled, the given split is used
 *   root/train/*.jpg, root/test/*.jpg  unlabelled, the given split is used
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { deriveSeed, Rng } from './rng';

export interface ImageRecord {
  /** Absolute path. */
  path: string;
  /** Relative to the dataset root, with '/' separators on every platform. */
  relPath: string;
  /** Index into `DatasetScan.classes`, or null when the dataset has no class folders. */
  label: number | null;
  split: 'train' | 'test';
}

export interface DatasetScan {
  root: string;
  /** Sorted class names; [] when unlabelled. */
  classes: string[];
  train: ImageRecord[];
  test: ImageRecord[];
  /** Things the user should know about (ignored files, skipped links, ...), ready to show. */
  warnings: string[];
}

export interface ScanOptions {
  /** Absolute paths never to descend into, e.g. the runs folder. */
  excludeDirs?: string[];
  /** Share of each class held out for testing when the folder has no train/test split; default 0.1. */
  testFraction?: number;
  /** Chooses the held-out images; default 0. */
  seed?: number;
}

export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.bmp'];
/** The same formats as file dialogs' filters take them: without the dot. */
export const IMAGE_EXTENSION_NAMES: readonly string[] = IMAGE_EXTENSIONS.map((extension) => extension.slice(1));

const TRAIN_SPLIT_DIR = 'train';
/** Keeps the hold-out stream apart from the loader's (seed, epoch) shuffle streams. */
const HOLDOUT_STREAM = 0x401d0;
const TEST_SPLIT_DIRS = ['test', 'val'];

export function isImageFileName(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

function isSplitDirName(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === TRAIN_SPLIT_DIR || TEST_SPLIT_DIRS.includes(lower);
}

/**
 * The class name the scan gives the image at `relPath` ('/'-separated, relative to the root), by
 * the layouts above: root/<class>/** or root/<split>/<class>/**; null for images outside a class
 * folder, or when the dataset has no classes. A class may itself be named like a split folder;
 * a path that fits both layouts is read as the split layout.
 */
export function labelOfRelativePath(relPath: string, classes: readonly string[]): string | null {
  const parts = relPath.split('/');
  if (parts.length > 2 && isSplitDirName(parts[0]) && classes.includes(parts[1])) return parts[1];
  return parts.length > 1 && classes.includes(parts[0]) ? parts[0] : null;
}

/**
 * Absolute paths of up to `limit` image files below `root`, in no particular order, skipping what
 * the scan skips (hidden entries, links to folders, unreadable folders). Unlike the scan it does
 * not sort or group, so a bounded sample of a huge folder stays cheap.
 */
export async function listImageFiles(root: string, limit: number): Promise<string[]> {
  const walker = new ImageWalker(path.resolve(root), []);
  const found: string[] = [];
  for await (const relPath of walker.imagesBelow('')) {
    if (found.length >= limit) break;
    found.push(walker.absolute(relPath));
  }
  return found;
}

export async function scanDataset(root: string, options: ScanOptions = {}): Promise<DatasetScan> {
  const absoluteRoot = path.resolve(root);
  const testFraction = options.testFraction ?? 0.1;
  if (!(testFraction >= 0 && testFraction < 1)) {
    throw new Error(`testFraction must be in [0, 1), got ${testFraction}`);
  }
  await assertDirectory(absoluteRoot);

  const walker = new ImageWalker(absoluteRoot, options.excludeDirs ?? []);
  const topLevel = await walker.listDir(absoluteRoot);
  const trainDir = topLevel?.dirs.find((name) => name.toLowerCase() === TRAIN_SPLIT_DIR);
  const testDirs = (topLevel?.dirs ?? []).filter((name) => TEST_SPLIT_DIRS.includes(name.toLowerCase()));

  let scan: DatasetScan;
  if (trainDir !== undefined && testDirs.length > 0) {
    const testDir = testDirs.find((name) => name.toLowerCase() === 'test') ?? testDirs[0];
    for (const ignored of testDirs.filter((name) => name !== testDir)) {
      walker.warnings.push(`Both "${testDir}" and "${ignored}" exist in ${absoluteRoot}; "${testDir}" is used as the test split and "${ignored}" is ignored.`);
    }
    scan = await scanGivenSplits(walker, trainDir, testDir);
  } else {
    scan = await scanWithHoldout(walker, testFraction, options.seed ?? 0);
  }

  if (scan.train.length + scan.test.length === 0) {
    throw new Error(
      `No images found in ${absoluteRoot}. Choose a folder that contains images (${IMAGE_EXTENSIONS.join(', ')}), ` +
        `either directly or in one subfolder per class.`,
    );
  }
  if (scan.train.length === 0) {
    throw new Error(`No training images found in ${path.join(absoluteRoot, trainDir ?? '')}. Put images (or one subfolder per class) there.`);
  }
  return scan;
}

async function scanGivenSplits(walker: ImageWalker, trainDir: string, testDir: string): Promise<DatasetScan> {
  const trainGroups = await walker.groupByClass(trainDir);
  const testGroups = await walker.groupByClass(testDir);
  if (!hasClassFolders(trainGroups)) {
    return {
      root: walker.root,
      classes: [],
      train: allImages(trainGroups).map((relPath) => walker.record(relPath, null, 'train')),
      test: allImages(testGroups).map((relPath) => walker.record(relPath, null, 'test')),
      warnings: walker.warnings,
    };
  }
  // The test split may legitimately hold a single class, so any of its subfolders is a class.
  const classes = sortedUnique([...trainGroups.classNames, ...testGroups.classNames]);
  warnUntrainedTestClasses(walker, trainGroups, testGroups, testDir);
  const toRecords = (groups: ClassGroups, split: 'train' | 'test'): ImageRecord[] => {
    warnLooseImages(walker, groups);
    return groups.classNames.flatMap((name) => groups.imagesByClass.get(name)!.map((relPath) => walker.record(relPath, classes.indexOf(name), split)));
  };
  return {
    root: walker.root,
    classes,
    train: sortRecords(toRecords(trainGroups, 'train')),
    test: sortRecords(toRecords(testGroups, 'test')),
    warnings: walker.warnings,
  };
}

/** A test image of a class the training split lacks can never be matched by the kNN monitor. */
function warnUntrainedTestClasses(walker: ImageWalker, train: ClassGroups, test: ClassGroups, testDir: string): void {
  const missing = test.classNames.filter((name) => !train.classNames.includes(name));
  if (!missing.length) return;
  const total = test.classNames.reduce((n, name) => n + test.imagesByClass.get(name)!.length, 0);
  const unmatched = missing.reduce((n, name) => n + test.imagesByClass.get(name)!.length, 0);
  walker.warnings.push(`${testDir}/ has ${missing.length === 1 ? 'a class' : 'classes'} that ${TRAIN_SPLIT_DIR}/ lacks ` +
    `(${missing.map((name) => `"${name}"`).join(', ')}): the kNN monitor can never match their ${unmatched} of ${total} test images, ` +
    `so its accuracy is capped at ${(((total - unmatched) / total) * 100).toFixed(1)} %. Add those classes to ${TRAIN_SPLIT_DIR}/ ` +
    'or remove them from the test split.');
}

async function scanWithHoldout(walker: ImageWalker, testFraction: number, seed: number): Promise<DatasetScan> {
  const groups = await walker.groupByClass('');
  if (!hasClassFolders(groups)) {
    return {
      root: walker.root,
      classes: [],
      train: allImages(groups).map((relPath) => walker.record(relPath, null, 'train')),
      test: [],
      warnings: walker.warnings,
    };
  }
  warnLooseImages(walker, groups);
  const classes = groups.classNames;
  const train: ImageRecord[] = [];
  const test: ImageRecord[] = [];
  classes.forEach((name, label) => {
    const images = groups.imagesByClass.get(name)!;
    // A per-class stream keeps each class's held-out images stable when other classes change.
    const heldOutOrder = new Rng(deriveSeed(seed, HOLDOUT_STREAM, label)).shuffle(images.map((_, i) => i));
    // Never hold out a class's last image: the kNN bank needs every class.
    const testCount = Math.min(Math.round(images.length * testFraction), images.length - 1);
    const heldOut = new Set(heldOutOrder.slice(0, testCount));
    images.forEach((relPath, i) => {
      const split = heldOut.has(i) ? 'test' : 'train';
      (split === 'test' ? test : train).push(walker.record(relPath, label, split));
    });
  });
  return { root: walker.root, classes, train: sortRecords(train), test: sortRecords(test), warnings: walker.warnings };
}

/**
 * Two or more subfolders with images make a labelled dataset. A single subfolder (say `photos/`)
 * is just where the images happen to live, and one class would make the kNN monitor meaningless.
 */
function hasClassFolders(groups: ClassGroups): boolean {
  return groups.classNames.length >= 2;
}

function allImages(groups: ClassGroups): string[] {
  return [...groups.looseImages, ...groups.classNames.flatMap((name) => groups.imagesByClass.get(name)!)].sort(compareCodeUnits);
}

function warnLooseImages(walker: ImageWalker, groups: ClassGroups): void {
  if (groups.looseImages.length > 0) {
    const where = path.join(walker.root, path.dirname(groups.looseImages[0]));
    walker.warnings.push(
      `${groups.looseImages.length} image(s) directly in ${where} are not in a class subfolder and were ignored (e.g. ${groups.looseImages[0]}). ` +
        `Move them into a class subfolder to use them.`,
    );
  }
}

interface ClassGroups {
  /** Sorted names of first-level subfolders that hold at least one image. */
  classNames: string[];
  /** Sorted relPaths of every image under each class folder. */
  imagesByClass: Map<string, string[]>;
  /** Sorted relPaths of images directly in the scanned folder. */
  looseImages: string[];
}

interface DirListing {
  files: string[];
  dirs: string[];
}

class ImageWalker {
  readonly warnings: string[] = [];
  private readonly excluded: Set<string>;

  constructor(
    readonly root: string,
    excludeDirs: string[],
  ) {
    this.excluded = new Set(excludeDirs.map((dir) => path.resolve(dir)));
  }

  record(relPath: string, label: number | null, split: 'train' | 'test'): ImageRecord {
    return { path: this.absolute(relPath), relPath, label, split };
  }

  /** Classifies the images under `relDir`: one group per first-level subfolder that holds images, plus the loose ones. */
  async groupByClass(relDir: string): Promise<ClassGroups> {
    const listing = (await this.listDir(this.absolute(relDir))) ?? { files: [], dirs: [] };
    const looseImages = listing.files.filter(isImageFileName).map((name) => joinRel(relDir, name));
    const imagesByClass = new Map<string, string[]>();
    for (const name of listing.dirs) {
      const images = await this.collectImages(joinRel(relDir, name));
      if (images.length > 0) {
        imagesByClass.set(name, images);
      }
    }
    return { classNames: [...imagesByClass.keys()], imagesByClass, looseImages };
  }

  /** Sorted relPaths of every image below `relDir`. */
  private async collectImages(relDir: string): Promise<string[]> {
    const images: string[] = [];
    for await (const relPath of this.imagesBelow(relDir)) images.push(relPath);
    return images.sort(compareCodeUnits);
  }

  /** relPaths of every image below `relDir`, depth first, as the folders are read. */
  async *imagesBelow(relDir: string): AsyncGenerator<string> {
    const listing = await this.listDir(this.absolute(relDir));
    if (listing === undefined) {
      return;
    }
    for (const name of listing.files) {
      if (isImageFileName(name)) yield joinRel(relDir, name);
    }
    for (const name of listing.dirs) {
      yield* this.imagesBelow(joinRel(relDir, name));
    }
  }

  /**
   * Visible regular files and directories of `dir`, sorted. Symlinks to files count as files;
   * symlinks to directories are skipped so that a link to a parent cannot loop forever, and so are
   * image-named links that cannot be followed (dangling or looping), with a warning.
   * Returns undefined (with a warning) when the folder cannot be read.
   */
  async listDir(dir: string): Promise<DirListing | undefined> {
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (error) {
      this.warnings.push(`Could not read folder ${dir}: ${(error as Error).message}`);
      return undefined;
    }
    const files: string[] = [];
    const dirs: string[] = [];
    for (const entry of entries) {
      if (entry.name.startsWith('.')) {
        continue;
      }
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!this.excluded.has(full)) {
          dirs.push(entry.name);
        }
      } else if (entry.isFile()) {
        files.push(entry.name);
      } else if (entry.isSymbolicLink()) {
        const target = await fs.stat(full).catch(() => undefined);
        if (target?.isFile()) {
          files.push(entry.name);
        } else if (target?.isDirectory()) {
          this.warnings.push(`Skipped ${full}: it is a link to a folder (links to folders are not followed).`);
        } else if (target === undefined && isImageFileName(entry.name)) {
          this.warnings.push(`Skipped ${full}: it is a link that leads nowhere (its target is missing, or it loops).`);
        }
      }
    }
    return { files: files.sort(compareCodeUnits), dirs: dirs.sort(compareCodeUnits) };
  }

  absolute(relPath: string): string {
    return relPath === '' ? this.root : path.join(this.root, ...relPath.split('/'));
  }
}

async function assertDirectory(dir: string): Promise<void> {
  const stats = await fs.stat(dir).catch(() => undefined);
  if (stats === undefined) {
    throw new Error(`Dataset folder ${dir} does not exist. Choose an existing folder of images.`);
  }
  if (!stats.isDirectory()) {
    throw new Error(`Dataset path ${dir} is not a folder. Choose the folder that contains the images, not a single file.`);
  }
}

function joinRel(relDir: string, name: string): string {
  return relDir === '' ? name : `${relDir}/${name}`;
}

/** Locale-independent order, so every machine lists (and therefore splits and shuffles) identically. */
function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortedUnique(names: string[]): string[] {
  return [...new Set(names)].sort(compareCodeUnits);
}

function sortRecords(records: ImageRecord[]): ImageRecord[] {
  return records.sort((a, b) => compareCodeUnits(a.relPath, b.relPath));
}
