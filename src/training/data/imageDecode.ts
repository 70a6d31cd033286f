/**
 * Decodes any image file a user may have lying around into packed 8-bit sRGB pixels.
 */
import { promises as fs } from 'fs';
import sharp from 'sharp';

export interface DecodedImage {
  width: number;
  height: number;
  /** Packed RGB, 3 channels, row-major HWC. */
  data: Uint8Array;
}

export class ImageDecodeError extends Error {
  constructor(
    public readonly file: string,
    public readonly reason: string,
  ) {
    super(`Cannot decode image ${file}: ${reason}`);
    this.name = 'ImageDecodeError';
  }
}

/** Refuses decompression bombs: a tiny file that claims gigapixels would exhaust memory. */
export const MAX_INPUT_PIXELS = 100_000_000;

/**
 * Decodes `file`, honouring EXIF orientation, to 3-channel 8-bit sRGB (grey, 16-bit, CMYK and
 * palette images are converted; transparency is flattened onto black; animations give their first
 * frame). Images whose shorter side exceeds `maxShortSide` are downscaled so it equals
 * `maxShortSide`: training crops are resized to a small square anyway, and decoding a 24 MP photo
 * at full size would cost memory and time for detail that is thrown away.
 */
export async function decodeImage(file: string, maxShortSide: number): Promise<DecodedImage> {
  if (!(Number.isInteger(maxShortSide) && maxShortSide > 0)) {
    throw new Error(`maxShortSide must be a positive integer, got ${maxShortSide}`);
  }
  let decoded: { data: Buffer; info: sharp.OutputInfo };
  try {
    const bytes = await fs.readFile(file);
    const input = isBmp(bytes)
      ? sharp(decodeBmp(bytes), { raw: { width: bmpWidth(bytes), height: bmpHeight(bytes), channels: 3 } })
      : sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, pages: 1 });
    decoded = await input
      .rotate()
      .resize({ width: maxShortSide, height: maxShortSide, fit: 'outside', withoutEnlargement: true })
      .flatten({ background: { r: 0, g: 0, b: 0 } })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new ImageDecodeError(file, decodeFailureReason(error as Error));
  }
  const { data, info } = decoded;
  if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
    throw new ImageDecodeError(file, `unexpected pixel layout after conversion (${info.channels} channels, ${info.width}x${info.height})`);
  }
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/**
 * sharp turns a decoder warning (truncated or corrupt data) into an error. When several decodes run
 * at once, libvips' shared error buffer is often cleared by another one first, and sharp then says
 * only "Warning treated as error due to failOn setting", followed by warnings from a queue all
 * decodes share, which may describe a different file. Say what it means instead.
 */
function decodeFailureReason(error: Error): string {
  return error.message.startsWith('Warning treated as error due to failOn setting')
    ? 'the image data is damaged or truncated (the decoder stopped at a warning)'
    : error.message;
}

// ---------------------------------------------------------------------------------------------
// BMP, which sharp's bundled libvips cannot read: uncompressed 1/4/8-bit palette, 16-, 24- and
// 32-bit images (BI_RGB and BI_BITFIELDS), bottom-up or top-down. Alpha is ignored, as most
// readers do, because BMP writers routinely leave the fourth byte at zero.

const BI_RGB = 0;
const BI_BITFIELDS = 3;
const BI_ALPHABITFIELDS = 6;

function isBmp(bytes: Buffer): boolean {
  return bytes.length >= 26 && bytes[0] === 0x42 && bytes[1] === 0x4d;
}

function bmpIsCoreHeader(bytes: Buffer): boolean {
  return bytes.readUInt32LE(14) === 12;
}

function bmpWidth(bytes: Buffer): number {
  return bmpIsCoreHeader(bytes) ? bytes.readUInt16LE(18) : Math.abs(bytes.readInt32LE(18));
}

function bmpHeight(bytes: Buffer): number {
  return bmpIsCoreHeader(bytes) ? bytes.readUInt16LE(20) : Math.abs(bytes.readInt32LE(22));
}

/** Packed RGB pixels of a BMP file, top row first. */
function decodeBmp(bytes: Buffer): Buffer {
  const headerSize = bytes.readUInt32LE(14);
  const core = headerSize === 12;
  if (!core && headerSize < 40) {
    throw new Error(`unsupported BMP header size ${headerSize}`);
  }
  const width = bmpWidth(bytes);
  const height = bmpHeight(bytes);
  const topDown = !core && bytes.readInt32LE(22) < 0;
  const bitsPerPixel = bytes.readUInt16LE(core ? 24 : 28);
  const compression = core ? BI_RGB : bytes.readUInt32LE(30);
  const pixelOffset = bytes.readUInt32LE(10);
  if (width === 0 || height === 0 || width * height > MAX_INPUT_PIXELS) {
    throw new Error(`BMP size ${width}x${height} is empty or exceeds ${MAX_INPUT_PIXELS} pixels`);
  }
  if (compression !== BI_RGB && compression !== BI_BITFIELDS && compression !== BI_ALPHABITFIELDS) {
    throw new Error(`compressed BMP (compression ${compression}) is not supported; save it as PNG`);
  }
  const rowBytes = Math.ceil((width * bitsPerPixel) / 32) * 4;
  if (pixelOffset + rowBytes * height > bytes.length) {
    throw new Error('BMP file is truncated');
  }

  let readPixel: (row: number, x: number) => [number, number, number];
  if (bitsPerPixel <= 8) {
    const paletteStart = 14 + headerSize;
    const entryBytes = core ? 3 : 4;
    const colours = (!core && bytes.readUInt32LE(46)) || 2 ** bitsPerPixel;
    const perByte = 8 / bitsPerPixel;
    readPixel = (row, x) => {
      const byte = bytes[row + Math.floor(x / perByte)];
      const shift = 8 - bitsPerPixel * ((x % perByte) + 1);
      const index = Math.min((byte >> shift) & ((1 << bitsPerPixel) - 1), colours - 1);
      const entry = paletteStart + index * entryBytes;
      return [bytes[entry + 2], bytes[entry + 1], bytes[entry]];
    };
  } else if (bitsPerPixel === 24) {
    readPixel = (row, x) => [bytes[row + x * 3 + 2], bytes[row + x * 3 + 1], bytes[row + x * 3]];
  } else if (bitsPerPixel === 16 || bitsPerPixel === 32) {
    const defaults = bitsPerPixel === 16 ? [0x7c00, 0x03e0, 0x001f] : [0xff0000, 0x00ff00, 0x0000ff];
    const masks = compression === BI_RGB ? defaults : [0, 1, 2].map((i) => bytes.readUInt32LE(54 + 4 * i));
    const channels = masks.map(maskToChannel);
    readPixel = (row, x) => {
      const value = bitsPerPixel === 16 ? bytes.readUInt16LE(row + x * 2) : bytes.readUInt32LE(row + x * 4);
      return [channels[0](value), channels[1](value), channels[2](value)];
    };
  } else {
    throw new Error(`unsupported BMP bit depth ${bitsPerPixel}`);
  }

  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    const row = pixelOffset + (topDown ? y : height - 1 - y) * rowBytes;
    for (let x = 0; x < width; x++) {
      const [r, g, b] = readPixel(row, x);
      rgb[(y * width + x) * 3] = r;
      rgb[(y * width + x) * 3 + 1] = g;
      rgb[(y * width + x) * 3 + 2] = b;
    }
  }
  return rgb;
}

/** Extracts one colour channel given its bit mask, scaled to 0..255. */
function maskToChannel(mask: number): (value: number) => number {
  if (mask === 0) {
    return () => 0;
  }
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) {
    shift++;
  }
  const max = mask >>> shift;
  return (value) => Math.round((((value & mask) >>> shift) * 255) / max);
}

/**
 * Decodes each file once: the first `maxImages` successfully decoded images stay in memory, the
 * rest are decoded again whenever asked for. Keeping the first N (rather than least-recently-used)
 * is as good under random access, where every image is equally likely, and never churns memory.
 * Failures are remembered for every file, so a broken file costs one attempt and one warning.
 */
export class DecodedImageCache {
  private readonly images = new Map<string, DecodedImage>();
  private readonly failures = new Map<string, ImageDecodeError>();

  constructor(
    readonly maxImages: number,
    readonly maxShortSide: number,
  ) {}

  async get(file: string): Promise<DecodedImage> {
    const cached = this.images.get(file);
    if (cached !== undefined) {
      return cached;
    }
    const failure = this.failures.get(file);
    if (failure !== undefined) {
      throw failure;
    }
    try {
      const image = await decodeImage(file, this.maxShortSide);
      if (this.images.size < this.maxImages) {
        this.images.set(file, image);
      }
      return image;
    } catch (error) {
      if (error instanceof ImageDecodeError) {
        this.failures.set(file, error);
      }
      throw error;
    }
  }

  isKnownUndecodable(file: string): boolean {
    return this.failures.has(file);
  }

  get cachedImageCount(): number {
    return this.images.size;
  }
}
