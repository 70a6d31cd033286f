// Every path a webview sends is untrusted: a compromised or buggy panel script must not be able
// to make the extension open, read or reveal a file outside the run's dataset. A path is accepted
// only if, taken literally (never URL-decoded), it names an existing image file whose real
// location — after following every symlink — lies inside the dataset root's real location.
import * as fs from 'fs';
import * as path from 'path';
import { isImageFileName } from '../../training/data/dataset';
import { isInsideFolder } from '../../training/paths';

export class UnsafePathError extends Error {}

/**
 * Resolves `requested` (relative to `root`, or absolute) to the real path of an image file inside
 * `root`. Throws UnsafePathError with the reason otherwise.
 */
export function resolveDatasetImage(root: string, requested: string): string {
  if (typeof requested !== 'string' || requested.length === 0) throw new UnsafePathError('empty path');
  if (requested.includes('\0')) throw new UnsafePathError('path contains a NUL character');
  const lexical = path.resolve(root, requested);
  if (!isInsideFolder(root, lexical)) throw new UnsafePathError(`${requested} lies outside the dataset`);
  let realRoot: string;
  let realTarget: string;
  try {
    realRoot = fs.realpathSync(root);
    realTarget = fs.realpathSync(lexical);
  } catch {
    throw new UnsafePathError(`${requested} does not exist in the dataset`);
  }
  if (!isInsideFolder(realRoot, realTarget)) throw new UnsafePathError(`${requested} points outside the dataset`);
  if (!fs.statSync(realTarget).isFile() || !isImageFileName(realTarget)) {
    throw new UnsafePathError(`${requested} is not an image file`);
  }
  return realTarget;
}

/** The dataset-relative, '/'-separated form the panel uses to name an image. */
export function datasetRelativePath(root: string, absolute: string): string {
  return path.relative(root, absolute).split(path.sep).join('/');
}

/** True when `file` lies inside `root` (lexically; used to match images to the runs that cover them). */
export { isInsideFolder as isPathInside };
