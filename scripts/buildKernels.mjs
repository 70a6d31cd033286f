// Compiles the augmentation kernels (src/training/data/kernels/augmentKernels.ts, AssemblyScript) to
// WebAssembly with SIMD. `npm run compile` runs it for out/ (next to out/src/training/data/augment.js,
// which loads the module from its own folder); scripts/build.mjs calls buildKernels for dist/.
//
// node scripts/buildKernels.mjs [outFile]
import asc from 'assemblyscript/asc';
import * as path from 'path';
import { fileURLToPath } from 'url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The file name augment.ts looks for beside itself. */
export const KERNELS_FILE = 'augmentKernels.wasm';

export async function buildKernels(outFile) {
  const { error, stderr } = await asc.main([
    path.join(root, 'src/training/data/kernels/augmentKernels.ts'),
    '--outFile', outFile, '--optimizeLevel', '3', '--shrinkLevel', '0', '--enable', 'simd', '--runtime', 'stub', '--noAssert',
  ]);
  if (error) {
    throw new Error(`AssemblyScript could not compile the augmentation kernels: ${error.message}\n${stderr.toString()}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildKernels(process.argv[2] ?? path.join(root, 'out/src/training/data', KERNELS_FILE));
}
