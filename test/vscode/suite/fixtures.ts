// Small image folders for the extension-host tests, made with sharp: distinct random patterns, so
// that only a true duplicate can be an image's nearest neighbour.
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';

/** A tiny deterministic generator, so a failing run can be reproduced exactly. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SIDE = 24;

/** A 24×24 PNG of 4×4 colour blocks with a class tint: every seed gives a different picture. */
export async function writePatternImage(file: string, seed: number, tint: [number, number, number] = [0, 0, 0]): Promise<void> {
  const random = mulberry32(seed);
  const pixels = Buffer.alloc(SIDE * SIDE * 3);
  const blocks = Array.from({ length: 36 }, () => [random(), random(), random()]);
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const block = blocks[Math.floor(y / 4) * 6 + Math.floor(x / 4)];
      for (let c = 0; c < 3; c++) pixels[(y * SIDE + x) * 3 + c] = Math.min(255, Math.floor(block[c] * 200) + tint[c]);
    }
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(pixels, { raw: { width: SIDE, height: SIDE, channels: 3 } }).png().toFile(file);
}

/** `count` images split over two class folders (so the kNN monitor has labels). */
export async function makeLabelledFolder(root: string, count: number, seedBase: number): Promise<string> {
  fs.rmSync(root, { recursive: true, force: true });
  const classes: [string, [number, number, number]][] = [['warm', [55, 20, 0]], ['cool', [0, 20, 55]]];
  await Promise.all(Array.from({ length: count }, (_, i) => {
    const [name, tint] = classes[i % 2];
    return writePatternImage(path.join(root, name, `${name}-${String(i).padStart(3, '0')}.png`), seedBase + i, tint);
  }));
  return root;
}

/**
 * An unlabelled folder of `count` distinct images plus `query.png` and a byte-for-byte copy of it
 * under another name: the planted duplicate.
 */
export async function makeFolderWithDuplicate(root: string, count: number, seedBase: number): Promise<{ query: string; duplicate: string }> {
  fs.rmSync(root, { recursive: true, force: true });
  await Promise.all(Array.from({ length: count }, (_, i) => writePatternImage(path.join(root, `image-${String(i).padStart(3, '0')}.png`), seedBase + i)));
  const query = path.join(root, 'query.png');
  const duplicate = path.join(root, 'zz-planted-copy.png');
  await writePatternImage(query, seedBase + 10_000);
  fs.copyFileSync(query, duplicate);
  return { query, duplicate };
}
