// Imports no tfjs and no vscode: the extension's path guard uses it too.
import * as path from 'path';

/**
 * True when `candidate` is `folder` or lies inside it, going by the names alone (no link is
 * followed; relative names count from the working directory). A name that only starts with two
 * dots, such as a folder "..data", is inside; "..", and anything under it, is not.
 */
export function isInsideFolder(folder: string, candidate: string): boolean {
  const relative = path.relative(folder, candidate);
  return relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative);
}
