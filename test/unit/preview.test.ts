// The augmentation preview shows the trainer's own views: for every pair it shows, the real
// TwoViewLoader (worker thread and all) renders the same floats at the same (seed, epoch, batch,
// slot) from the same scan, bit for bit; and the PNG the CLI writes is laid out as said.
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { augmentConfigFor } from '../../src/training/data/augment';
import { TwoViewLoader, type TwoViewBatch } from '../../src/training/data/batchLoader';
import { scanDataset } from '../../src/training/data/dataset';
import { epochOrder, previewPng, previewResultFields, renderPreview, viewBytes } from '../../src/training/data/preview';
import { resolveConfig, type TrainConfig } from '../../src/training/config';
import { Command } from 'commander';
import { registerPreviewCommand } from '../../src/training/data/previewCli';

const CLASSES = ['bird', 'frog'];
const PER_CLASS = 11;

async function makeFolder(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'simsiam-preview-'));
  for (const [c, name] of CLASSES.entries()) {
    await fs.mkdir(path.join(dir, name));
    for (let i = 0; i < PER_CLASS; i++) {
      const shade = 20 * i + 40 * c;
      // A patch off the corner, so that crops, flips and blur change the pixels.
      await sharp({ create: { width: 30, height: 22, channels: 3, background: { r: shade, g: 200 - shade, b: 90 + 5 * i } } })
        .composite([{ input: { create: { width: 8, height: 6, channels: 3, background: { r: 250, g: 240 - shade, b: 10 } } }, left: 3 + i, top: 2 + (i % 9) }])
        .png()
        .toFile(path.join(dir, name, `${String(i).padStart(2, '0')}.png`));
    }
  }
  return dir;
}

async function loaderBatch(loader: TwoViewLoader, epoch: number, batch: number): Promise<TwoViewBatch> {
  for await (const found of loader.epoch(epoch, batch)) return found;
  throw new Error(`no batch ${batch} in epoch ${epoch}`);
}

describe('augmentation preview', () => {
  let dir: string;
  before(async () => {
    dir = await makeFolder();
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  for (const [name, overrides] of [
    ['the recipe at 16 px', { imageSize: 16, batchSize: 4, seed: 7 }],
    ['blur and grayscale always, a narrow crop', { imageSize: 12, batchSize: 3, seed: 123, blurP: 1, grayscaleP: 1, cropScaleMin: 0.3, cropScaleMax: 0.5 }],
  ] as const) {
    it(`renders exactly the loader's views (${name})`, async () => {
      const config: TrainConfig = resolveConfig('tiny', overrides);
      const preview = await renderPreview({ folder: dir, config, images: 3, pairs: 3, epoch: 1 });
      assert.strictEqual(preview.images.length, 3);
      const scan = await scanDataset(dir, { excludeDirs: [path.join(dir, '.simsiam', 'runs')], testFraction: config.testFraction, seed: config.seed });
      const loader = new TwoViewLoader(scan.train, {
        augment: augmentConfigFor(config), batchSize: config.batchSize, seed: config.seed, maxCachedImages: 100, threads: 1,
      });
      try {
        // The images are the first of the epoch's order, as the trainer meets them.
        assert.deepStrictEqual(preview.images.map((image) => image.path),
          loader.epochOrder(1).slice(0, 3).map((index) => scan.train[index].path));
        for (const image of preview.images) {
          assert.strictEqual(image.pairs.length, 3);
          assert.strictEqual(image.label, image.relPath.split('/')[0]);
          for (const pair of image.pairs) {
            const batch = await loaderBatch(loader, pair.epoch, pair.batch);
            const floats = config.imageSize * config.imageSize * 3;
            assert.strictEqual(scan.train[batch.indices[pair.slot]].path, image.path, `slot ${pair.slot} of batch ${pair.batch}, epoch ${pair.epoch}`);
            assert.deepStrictEqual(pair.view1, batch.view1.slice(pair.slot * floats, (pair.slot + 1) * floats));
            assert.deepStrictEqual(pair.view2, batch.view2.slice(pair.slot * floats, (pair.slot + 1) * floats));
          }
          // Pairs from successive epochs that train the image: never the same views twice.
          assert.ok(image.pairs.every((pair, i) => i === 0 || pair.epoch > image.pairs[i - 1].epoch));
          assert.notDeepStrictEqual(image.pairs[0].view1, image.pairs[1].view1);
        }
      } finally {
        await loader.close();
      }
    });
  }

  it('shows pairs only from epochs that train the image (drop_last)', async () => {
    // Batch 8 over about 20 training images: each epoch leaves the images past its last full batch out.
    const config = resolveConfig('tiny', { imageSize: 8, batchSize: 8, seed: 2 });
    const preview = await renderPreview({ folder: dir, config, images: 2, pairs: 4 });
    const scan = await scanDataset(dir, { testFraction: config.testFraction, seed: config.seed });
    const trained = Math.floor(scan.train.length / 8) * 8;
    for (const image of preview.images) {
      const index = scan.train.findIndex((record) => record.path === image.path);
      for (const pair of image.pairs) {
        const position = epochOrder(config.seed, pair.epoch, scan.train.length).indexOf(index);
        assert.ok(position < trained);
        assert.strictEqual(pair.batch * 8 + pair.slot, position);
      }
    }
  });

  it('says when a file cannot be read, since the trainer would order its epochs without it', async () => {
    const small = await fs.mkdtemp(path.join(os.tmpdir(), 'simsiam-preview-broken-'));
    try {
      for (let i = 0; i < 5; i++) {
        await sharp({ create: { width: 10, height: 10, channels: 3, background: { r: 40 * i, g: 0, b: 0 } } }).png().toFile(path.join(small, `${i}.png`));
      }
      await fs.writeFile(path.join(small, 'broken.png'), 'not a PNG');
      const preview = await renderPreview({ folder: small, config: resolveConfig('tiny', { imageSize: 8, batchSize: 2 }), images: 6, pairs: 1 });
      assert.strictEqual(preview.images.length, 5);
      assert.ok(preview.images.every((image) => image.relPath !== 'broken.png'));
      assert.strictEqual(preview.notes.length, 1);
      assert.match(preview.notes[0], /^broken\.png cannot be read .*ordered differently.*Replace or remove the file\.$/);
    } finally {
      await fs.rm(small, { recursive: true, force: true });
    }
  });

  it('refuses a folder with fewer images than one batch, saying what to do', async () => {
    const config = resolveConfig('tiny', { batchSize: 64 });
    await assert.rejects(renderPreview({ folder: dir, config }), /fewer than one batch of 64.*lower the batch size/);
  });

  it('writes one PNG with a row per image and two views per pair, and base64 views for the panel', async () => {
    const config = resolveConfig('tiny', { imageSize: 16, batchSize: 4 });
    const preview = await renderPreview({ folder: dir, config, images: 2, pairs: 3 });
    const png = await previewPng(preview);
    const meta = await sharp(png).metadata();
    // 16 px views are shown at 96 px (×6): 4 + 3 × (2 × 96 + 4) + 2 × 16 + 4 wide, 4 + 2 × (96 + 4) high.
    assert.deepStrictEqual([meta.format, meta.width, meta.height], ['png', 4 + 3 * (2 * 96 + 4) + 2 * 16 + 4, 4 + 2 * 100]);
    // The top-left view's pixels are the first view's bytes, enlarged.
    const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    const bytes = viewBytes(preview.images[0].pairs[0].view1, preview.augment);
    const width = meta.width!;
    assert.deepStrictEqual([...data.subarray((4 * width + 4) * 3, (4 * width + 4) * 3 + 3)], [...bytes.subarray(0, 3)]);
    const fields = previewResultFields(preview);
    assert.deepStrictEqual(Buffer.from(fields.images[1].pairs[2].view2, 'base64'),
      Buffer.from(viewBytes(preview.images[1].pairs[2].view2, preview.augment)));
  });

  it('simsiam preview writes the PNG and says where each pair was rendered', async () => {
    const lines: string[] = [];
    const errors: string[] = [];
    const program = new Command('simsiam').exitOverride().configureOutput({ writeErr: () => undefined });
    registerPreviewCommand(program, { out: { line: (t) => lines.push(t) }, err: { line: (t) => errors.push(t) } });
    const out = path.join(dir, '..', `${path.basename(dir)}-views.png`);
    try {
      await program.parseAsync(['preview', dir, '--out', out, '--images', '2', '--pairs', '2', '--size', '16', '--batch', '4',
        '--grayscale-p', '1', '--json'], { from: 'user' });
      const meta = await sharp(out).metadata();
      assert.strictEqual(meta.height, 4 + 2 * 100);
      const printed = JSON.parse(lines[0]) as { size: number; images: { pairs: { epoch: number }[] }[] };
      assert.strictEqual(printed.size, 16);
      assert.deepStrictEqual(printed.images.map((image) => image.pairs.length), [2, 2]);
      // Grayscale always: every view's pixels have R = G = B.
      const { data } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
      const at = (4 * meta.width! + 10) * 3;
      assert.ok(data[at] === data[at + 1] && data[at + 1] === data[at + 2]);
      await assert.rejects(program.parseAsync(['preview', dir, '--out', path.join(dir, 'x.jpg')], { from: 'user' }), /name the file \*\.png/);
      await assert.rejects(program.parseAsync(['preview', dir, '--out', out, '--images', '99'], { from: 'user' }), /--images must be a whole number from 1 to 16/);
    } finally {
      await fs.rm(out, { force: true });
    }
  });
});
