import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { IMAGE_EXTENSION_NAMES, isImageFileName, labelOfRelativePath, listImageFiles, scanDataset, type DatasetScan } from '../../src/training/data/dataset';

async function writePng(file: string, grey = 128): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: grey, g: grey, b: grey } } }).png().toFile(file);
}

/** Writes `count` images named 000.png.. under each of root/<dir>. */
async function writeImages(root: string, dirs: string[], count: number): Promise<void> {
  for (const dir of dirs) {
    for (let i = 0; i < count; i++) {
      await writePng(path.join(root, dir, `${String(i).padStart(3, '0')}.png`));
    }
  }
}

function relPaths(scan: DatasetScan, split: 'train' | 'test'): string[] {
  return scan[split].map((record) => record.relPath);
}

describe('scanDataset', () => {
  let root: string;

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'simsiam-dataset-'));
  });

  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('labels images by class folder and holds out a stratified test split', async () => {
    await writeImages(root, ['dog', 'cat', 'bird'], 10);
    const scan = await scanDataset(root, {});
    assert.deepStrictEqual(scan.classes, ['bird', 'cat', 'dog']);
    assert.strictEqual(scan.train.length + scan.test.length, 30);
    for (const [label, name] of scan.classes.entries()) {
      assert.strictEqual(scan.test.filter((r) => r.label === label).length, 1, `test images of ${name}`);
      assert.strictEqual(scan.train.filter((r) => r.label === label).length, 9, `train images of ${name}`);
    }
    for (const record of [...scan.train, ...scan.test]) {
      assert.strictEqual(record.relPath.split('/')[0], scan.classes[record.label!]);
      assert.strictEqual(record.path, path.join(root, ...record.relPath.split('/')));
      assert.ok(path.isAbsolute(record.path));
    }
    assert.ok(scan.train.every((r) => r.split === 'train') && scan.test.every((r) => r.split === 'test'));
    assert.deepStrictEqual(relPaths(scan, 'train'), [...relPaths(scan, 'train')].sort());
  });

  it('chooses the held-out images from the seed, reproducibly', async () => {
    await writeImages(root, ['a', 'b', 'c', 'd'], 20);
    const first = await scanDataset(root, { seed: 1, testFraction: 0.25 });
    const again = await scanDataset(root, { seed: 1, testFraction: 0.25 });
    const otherSeed = await scanDataset(root, { seed: 2, testFraction: 0.25 });
    assert.deepStrictEqual(relPaths(again, 'test'), relPaths(first, 'test'));
    assert.notDeepStrictEqual(relPaths(otherSeed, 'test'), relPaths(first, 'test'));
    assert.strictEqual(first.test.length, 20);
    assert.strictEqual(first.test.filter((r) => r.label === 2).length, 5);
  });

  it('never holds out the only image of a class', async () => {
    await writeImages(root, ['big'], 10);
    await writeImages(root, ['tiny'], 1);
    const scan = await scanDataset(root, { testFraction: 0.5 });
    assert.deepStrictEqual(relPaths(scan, 'test').filter((p) => p.startsWith('tiny/')), []);
    assert.strictEqual(scan.test.length, 5);
  });

  it('counts everything below a class folder as that class', async () => {
    await writeImages(root, ['cat/indoor', 'cat/outdoor', 'dog'], 2);
    const scan = await scanDataset(root, { testFraction: 0 });
    assert.deepStrictEqual(scan.classes, ['cat', 'dog']);
    assert.deepStrictEqual(
      scan.train.map((r) => [r.relPath, r.label]),
      [['cat/indoor/000.png', 0], ['cat/indoor/001.png', 0], ['cat/outdoor/000.png', 0], ['cat/outdoor/001.png', 0], ['dog/000.png', 1], ['dog/001.png', 1]],
    );
  });

  it('uses train/ and test/ (or val/) folders as the split', async () => {
    await writeImages(root, ['train/cat', 'train/dog', 'test/cat', 'test/dog'], 3);
    const scan = await scanDataset(root, {});
    assert.deepStrictEqual(scan.classes, ['cat', 'dog']);
    assert.deepStrictEqual(relPaths(scan, 'test'), ['test/cat/000.png', 'test/cat/001.png', 'test/cat/002.png', 'test/dog/000.png', 'test/dog/001.png', 'test/dog/002.png']);
    assert.strictEqual(scan.train.length, 6);
    assert.deepStrictEqual(scan.test.map((r) => r.label), [0, 0, 0, 1, 1, 1]);

    await fs.rename(path.join(root, 'test'), path.join(root, 'val'));
    const withVal = await scanDataset(root, {});
    assert.deepStrictEqual(relPaths(withVal, 'test'), relPaths(scan, 'test').map((p) => p.replace(/^test\//, 'val/')));
  });

  it('accepts a test split that holds only some of the classes', async () => {
    await writeImages(root, ['train/cat', 'train/dog', 'train/emu', 'test/dog'], 2);
    const scan = await scanDataset(root, {});
    assert.deepStrictEqual(scan.classes, ['cat', 'dog', 'emu']);
    assert.deepStrictEqual(scan.test.map((r) => r.label), [1, 1]);
    assert.deepStrictEqual(scan.warnings, []);
  });

  it('warns that the kNN monitor is capped when the test split has classes the training split lacks', async () => {
    await writeImages(root, ['train/cat', 'train/dog', 'test/dog', 'test/frog'], 2);
    await writeImages(root, ['test/frog2'], 1);
    const scan = await scanDataset(root, {});
    assert.strictEqual(scan.warnings.length, 1, scan.warnings.join('\n'));
    assert.match(scan.warnings[0], /test\/ has classes that train\/ lacks \("frog", "frog2"\).* their 3 of 5 test images.* capped at 40\.0 %/);
  });

  it('treats images directly in the folder as unlabelled, with no test split', async () => {
    await writeImages(root, [''], 5);
    const scan = await scanDataset(root, {});
    assert.deepStrictEqual(scan.classes, []);
    assert.deepStrictEqual(scan.test, []);
    assert.deepStrictEqual(relPaths(scan, 'train'), ['000.png', '001.png', '002.png', '003.png', '004.png']);
    assert.ok(scan.train.every((r) => r.label === null));
  });

  it('treats a single subfolder as where the images live, not as one class', async () => {
    await writeImages(root, ['photos/2021', 'photos/2022'], 2);
    const scan = await scanDataset(root, {});
    assert.deepStrictEqual(scan.classes, []);
    assert.strictEqual(scan.train.length, 4);
  });

  it('ignores hidden files and folders, excluded folders and non-images; matches extensions in any case', async () => {
    await writeImages(root, ['a', 'b', 'a/.thumbnails', '.simsiam/run1', 'runs', 'b/.git'], 2);
    await writePng(path.join(root, 'a', '.hidden.png'));
    await writePng(path.join(root, 'b', 'UPPER.PNG'));
    await fs.writeFile(path.join(root, 'a', 'notes.txt'), 'not an image');
    await fs.writeFile(path.join(root, 'b', 'data.json'), '{}');
    const scan = await scanDataset(root, { excludeDirs: [path.join(root, 'runs')], testFraction: 0 });
    assert.deepStrictEqual(scan.classes, ['a', 'b']);
    assert.deepStrictEqual(relPaths(scan, 'train'), ['a/000.png', 'a/001.png', 'b/000.png', 'b/001.png', 'b/UPPER.PNG']);
  });

  it('does not follow links to folders, so a link loop cannot hang the scan', async () => {
    await writeImages(root, ['a', 'b'], 1);
    await fs.symlink(root, path.join(root, 'a', 'loop'), 'dir');
    await fs.symlink(path.join(root, 'b', '000.png'), path.join(root, 'a', 'linked.png'));
    const scan = await scanDataset(root, { testFraction: 0 });
    assert.deepStrictEqual(relPaths(scan, 'train'), ['a/000.png', 'a/linked.png', 'b/000.png']);
    assert.ok(scan.warnings.some((w) => w.includes(path.join(root, 'a', 'loop'))), scan.warnings.join('\n'));
  });

  it('warns about, and leaves out, loose images next to class folders', async () => {
    await writeImages(root, ['a', 'b', ''], 1);
    const scan = await scanDataset(root, { testFraction: 0 });
    assert.deepStrictEqual(relPaths(scan, 'train'), ['a/000.png', 'b/000.png']);
    assert.strictEqual(scan.warnings.length, 1);
    assert.match(scan.warnings[0], /000\.png/);
  });

  it('names the folder when it is missing, is a file, or holds no images', async () => {
    const missing = path.join(root, 'nope');
    await assert.rejects(scanDataset(missing, {}), (error: Error) => error.message.includes(missing) && /does not exist/.test(error.message));
    const file = path.join(root, 'file.png');
    await writePng(file);
    await assert.rejects(scanDataset(file, {}), (error: Error) => error.message.includes(file) && /not a folder/.test(error.message));
    const empty = path.join(root, 'empty');
    await fs.mkdir(path.join(empty, 'sub'), { recursive: true });
    await fs.writeFile(path.join(empty, 'readme.txt'), 'hi');
    await assert.rejects(scanDataset(empty, {}), (error: Error) => error.message.includes(empty) && /No images found/.test(error.message));
  });
});

describe('dataset layout helpers (for the panel, which does not scan)', () => {
  let root: string;

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'simsiam-layout-'));
  });

  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  const layouts: [string, string[]][] = [
    ['class folders', ['cat/indoor', 'cat/outdoor', 'dog']],
    ['train/test splits', ['train/cat', 'train/dog', 'test/cat', 'test/dog']],
    ['a class named like a split folder, without splits', ['train', 'dog/old']],
    ['unlabelled folders', ['photos/2021', 'photos/2022']],
  ];
  for (const [name, dirs] of layouts) {
    it(`labels every image as the scan does, and lists the same images: ${name}`, async () => {
      await writeImages(root, dirs, 2);
      const scan = await scanDataset(root, { testFraction: 0.5 });
      const records = [...scan.train, ...scan.test];
      for (const record of records) {
        const expected = record.label === null ? null : scan.classes[record.label];
        assert.strictEqual(labelOfRelativePath(record.relPath, scan.classes), expected, record.relPath);
      }
      assert.deepStrictEqual((await listImageFiles(root, 1000)).sort(), records.map((r) => r.path).sort());
    });
  }

  it('gives no label outside a class folder', () => {
    assert.strictEqual(labelOfRelativePath('loose.png', ['cat', 'dog']), null);
    assert.strictEqual(labelOfRelativePath('cat/a.png', []), null);
    assert.strictEqual(labelOfRelativePath('bird/a.png', ['cat', 'dog']), null);
  });

  it('lists at most `limit` images, skipping what the scan skips', async () => {
    await writeImages(root, ['a', 'b', '.simsiam/runs/r1'], 3);
    await fs.writeFile(path.join(root, 'a', 'notes.txt'), 'not an image');
    await fs.symlink(root, path.join(root, 'a', 'loop'), 'dir');
    const all = await listImageFiles(root, 1000);
    assert.strictEqual(all.length, 6);
    assert.ok(all.every((file) => path.isAbsolute(file) && !file.includes('.simsiam') && isImageFileName(file)), all.join('\n'));
    assert.strictEqual((await listImageFiles(root, 4)).length, 4);
  });

  it('names the image formats without dots for file dialogs', () => {
    assert.ok(IMAGE_EXTENSION_NAMES.includes('jpg') && IMAGE_EXTENSION_NAMES.includes('tiff'));
    assert.ok(IMAGE_EXTENSION_NAMES.every((name) => isImageFileName(`x.${name}`) && !name.startsWith('.')));
  });
});
