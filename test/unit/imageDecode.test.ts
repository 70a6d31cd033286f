import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { DecodedImageCache, decodeImage, ImageDecodeError, type DecodedImage } from '../../src/training/data/imageDecode';
import { pngClaiming } from './craftedImages';

function pixel(image: DecodedImage, x: number, y: number): number[] {
  const i = (y * image.width + x) * 3;
  return Array.from(image.data.subarray(i, i + 3));
}

function assertNear(actual: number[], expected: number[], tolerance: number): void {
  assert.ok(actual.every((v, i) => Math.abs(v - expected[i]) <= tolerance), `${actual} is not within ${tolerance} of ${expected}`);
}

/** A minimal uncompressed BMP, written by hand because sharp cannot write BMP either. */
function bmp(width: number, height: number, bitsPerPixel: 24 | 8, rgbAt: (x: number, y: number) => number[], topDown = false): Buffer {
  const palette: number[][] = [];
  const paletteBytes = bitsPerPixel === 8 ? 256 * 4 : 0;
  const rowBytes = Math.ceil((width * bitsPerPixel) / 32) * 4;
  const offset = 14 + 40 + paletteBytes;
  const file = Buffer.alloc(offset + rowBytes * height);
  file.write('BM', 0, 'latin1');
  file.writeUInt32LE(file.length, 2);
  file.writeUInt32LE(offset, 10);
  file.writeUInt32LE(40, 14);
  file.writeInt32LE(width, 18);
  file.writeInt32LE(topDown ? -height : height, 22);
  file.writeUInt16LE(1, 26);
  file.writeUInt16LE(bitsPerPixel, 28);
  for (let y = 0; y < height; y++) {
    const row = offset + (topDown ? y : height - 1 - y) * rowBytes;
    for (let x = 0; x < width; x++) {
      const [r, g, b] = rgbAt(x, y);
      if (bitsPerPixel === 24) {
        file[row + x * 3] = b;
        file[row + x * 3 + 1] = g;
        file[row + x * 3 + 2] = r;
      } else {
        let index = palette.findIndex((c) => c[0] === r && c[1] === g && c[2] === b);
        if (index < 0) {
          index = palette.push([r, g, b]) - 1;
          file.writeUInt32LE((r << 16) | (g << 8) | b, 54 + index * 4);
        }
        file[row + x] = index;
      }
    }
  }
  return file;
}


describe('decodeImage', () => {
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'simsiam-decode-'));
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('turns grayscale into three equal channels', async () => {
    const file = path.join(dir, 'grey.png');
    const grey = Uint8Array.from({ length: 12 }, (_, i) => i * 20);
    await sharp(grey, { raw: { width: 4, height: 3, channels: 1 } }).toColourspace('b-w').png().toFile(file);
    const image = await decodeImage(file, 100);
    assert.deepStrictEqual([image.width, image.height, image.data.length], [4, 3, 36]);
    for (let i = 0; i < 12; i++) {
      assert.deepStrictEqual(pixel(image, i % 4, Math.floor(i / 4)), [i * 20, i * 20, i * 20]);
    }
  });

  it('flattens transparency onto black', async () => {
    const file = path.join(dir, 'rgba.png');
    await sharp({ create: { width: 3, height: 3, channels: 4, background: { r: 200, g: 100, b: 50, alpha: 0.5 } } }).png().toFile(file);
    const image = await decodeImage(file, 100);
    assertNear(pixel(image, 1, 1), [100, 50, 25], 1);
  });

  it('reduces 16-bit images to 8 bits', async () => {
    const file = path.join(dir, 'deep.png');
    const deep = new Uint16Array(2 * 2 * 3);
    for (let i = 0; i < deep.length; i += 3) {
      deep.set([65535, 32768, 0], i);
    }
    await sharp(deep, { raw: { width: 2, height: 2, channels: 3 } }).toColourspace('rgb16').png().toFile(file);
    assert.strictEqual((await sharp(file).metadata()).depth, 'ushort');
    assertNear(pixel(await decodeImage(file, 100), 0, 0), [255, 128, 0], 1);
  });

  it('converts CMYK JPEGs to RGB', async () => {
    const file = path.join(dir, 'cmyk.jpg');
    await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 160, g: 110, b: 90 } } }).toColourspace('cmyk').jpeg({ quality: 100 }).toFile(file);
    assert.strictEqual((await sharp(file).metadata()).space, 'cmyk');
    assertNear(pixel(await decodeImage(file, 100), 4, 4), [160, 110, 90], 12);
  });

  it('decodes palette PNGs and the first frame of an animated GIF', async () => {
    const palettePng = path.join(dir, 'palette.png');
    await sharp({ create: { width: 5, height: 5, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png({ palette: true }).toFile(palettePng);
    assertNear(pixel(await decodeImage(palettePng, 100), 2, 2), [255, 0, 0], 2);

    const frames = Buffer.alloc(4 * 8 * 3);
    for (let i = 0; i < frames.length; i += 3) {
      frames[i < frames.length / 2 ? i : i + 2] = 255; // frame 1 red, frame 2 blue
    }
    const gif = path.join(dir, 'animated.gif');
    await sharp(frames, { raw: { width: 4, height: 8, channels: 3, pageHeight: 4 } }).gif().toFile(gif);
    assert.strictEqual((await sharp(gif).metadata()).pages, 2);
    const image = await decodeImage(gif, 100);
    assert.deepStrictEqual([image.width, image.height], [4, 4]);
    assertNear(pixel(image, 1, 1), [255, 0, 0], 10);
  });

  it('applies the EXIF orientation', async () => {
    const file = path.join(dir, 'rotated.jpg');
    // Stored 8 wide x 4 high, left half red, right half blue; orientation 6 shows it turned 90 degrees clockwise.
    const stored = Buffer.alloc(8 * 4 * 3);
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 8; x++) {
        stored[(y * 8 + x) * 3 + (x < 4 ? 0 : 2)] = 255;
      }
    }
    await sharp(stored, { raw: { width: 8, height: 4, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toFile(file);
    const image = await decodeImage(file, 100);
    assert.deepStrictEqual([image.width, image.height], [4, 8]);
    assertNear(pixel(image, 2, 1), [255, 0, 0], 40);
    assertNear(pixel(image, 2, 6), [0, 0, 255], 40);
  });

  it('downscales so the shorter side equals maxShortSide, and never upscales', async () => {
    const file = path.join(dir, 'large.png');
    await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 0, g: 90, b: 0 } } }).png().toFile(file);
    const small = await decodeImage(file, 50);
    assert.deepStrictEqual([small.width, small.height], [75, 50]);
    assertNear(pixel(small, 30, 20), [0, 90, 0], 1);
    const untouched = await decodeImage(file, 1000);
    assert.deepStrictEqual([untouched.width, untouched.height], [300, 200]);
  });

  it('decodes uncompressed BMPs (24-bit bottom-up, 8-bit palette top-down)', async () => {
    const colour = (x: number, y: number) => [x * 40, y * 60, 255 - x * 40];
    const rgbFile = path.join(dir, 'rgb.bmp');
    await fs.writeFile(rgbFile, bmp(5, 3, 24, colour));
    const rgb = await decodeImage(rgbFile, 100);
    assert.deepStrictEqual([rgb.width, rgb.height], [5, 3]);
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 5; x++) {
        assert.deepStrictEqual(pixel(rgb, x, y), colour(x, y));
      }
    }
    const paletteFile = path.join(dir, 'palette.bmp');
    await fs.writeFile(paletteFile, bmp(3, 2, 8, colour, true));
    const indexed = await decodeImage(paletteFile, 100);
    assert.deepStrictEqual(pixel(indexed, 2, 1), colour(2, 1));
    assert.deepStrictEqual(pixel(indexed, 0, 0), colour(0, 0));
  });

  it('refuses decompression bombs', async () => {
    const file = path.join(dir, 'bomb.png');
    await fs.writeFile(file, pngClaiming(20_000, 20_000));
    assert.strictEqual((await sharp(file, { limitInputPixels: false }).metadata()).width, 20_000, 'the fixture is a valid PNG header');
    await assert.rejects(decodeImage(file, 64), (error: Error) => error instanceof ImageDecodeError && /pixel limit/.test(error.message));
  });

  it('throws an ImageDecodeError naming the file for empty, truncated, fake and missing files', async () => {
    const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 9, g: 9, b: 9 }, noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
      .jpeg()
      .toBuffer();
    const cases: [string, Buffer | null][] = [
      ['empty.jpg', Buffer.alloc(0)],
      ['truncated.jpg', jpeg.subarray(0, jpeg.length / 2)],
      ['text.jpg', Buffer.from('this is not a picture')],
      ['truncated.bmp', bmp(4, 4, 24, () => [1, 2, 3]).subarray(0, 60)],
      ['missing.png', null],
    ];
    for (const [name, bytes] of cases) {
      const file = path.join(dir, name);
      if (bytes !== null) {
        await fs.writeFile(file, bytes);
      }
      await assert.rejects(decodeImage(file, 64), (error: Error) => {
        assert.ok(error instanceof ImageDecodeError, `${name}: ${error}`);
        assert.strictEqual(error.file, file);
        assert.ok(error.message.includes(file), error.message);
        assert.ok(error.reason.length > 0);
        return true;
      });
    }
  });
});

describe('DecodedImageCache', () => {
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'simsiam-cache-'));
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('keeps the first N images, decodes the rest again, and remembers failures', async () => {
    const files = [0, 1, 2].map((i) => path.join(dir, `${i}.png`));
    for (const file of files) {
      await sharp({ create: { width: 2, height: 2, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toFile(file);
    }
    const broken = path.join(dir, 'broken.png');
    await fs.writeFile(broken, 'nope');
    const cache = new DecodedImageCache(2, 64);
    const first = await cache.get(files[0]);
    assert.strictEqual(await cache.get(files[0]), first);
    await cache.get(files[1]);
    const third = await cache.get(files[2]);
    assert.strictEqual(cache.cachedImageCount, 2);
    assert.notStrictEqual(await cache.get(files[2]), third);
    assert.deepStrictEqual(third, await cache.get(files[2]));

    assert.strictEqual(cache.isKnownUndecodable(broken), false);
    await assert.rejects(cache.get(broken), ImageDecodeError);
    assert.strictEqual(cache.isKnownUndecodable(broken), true);
    await fs.writeFile(broken, await fs.readFile(files[0]));
    await assert.rejects(cache.get(broken), ImageDecodeError, 'a failure is remembered, not retried');
  });
});
