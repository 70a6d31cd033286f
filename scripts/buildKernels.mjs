// Compiles the AssemblyScript SIMD kernels to WebAssembly: the augmentation kernels
// (src/training/data/kernels/augmentKernels.ts) and the wasm backend's training kernels (conv
// gradients and batch norm: src/training/tfjs/kernels/trainingKernels.ts). `npm run compile` runs it for out/ (each module
// next to the out/ script that loads it from its own folder: out/src/training/data/augment.js and
// out/src/training/tfjs/wasmGradients.js); scripts/build.mjs calls buildKernels and
// buildTrainingKernels for dist/.
//
// node scripts/buildKernels.mjs [augmentOutFile [trainingOutFile]]
import asc from 'assemblyscript/asc';
import * as path from 'path';
import { fileURLToPath } from 'url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The file name augment.ts looks for beside itself. */
export const KERNELS_FILE = 'augmentKernels.wasm';
/** The file name wasmGradients.ts looks for beside itself. */
export const TRAINING_KERNELS_FILE = 'trainingKernels.wasm';

async function compile(source, outFile, what) {
  const { error, stderr } = await asc.main([
    path.join(root, source),
    '--outFile', outFile, '--optimizeLevel', '3', '--shrinkLevel', '0', '--enable', 'simd', '--runtime', 'stub', '--noAssert',
  ]);
  if (error) {
    throw new Error(`AssemblyScript could not compile the ${what}: ${error.message}\n${stderr.toString()}`);
  }
}

export async function buildKernels(outFile) {
  await compile('src/training/data/kernels/augmentKernels.ts', outFile, 'augmentation kernels');
}

export async function buildTrainingKernels(outFile) {
  await compile('src/training/tfjs/kernels/trainingKernels.ts', outFile, 'wasm training kernels');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildKernels(process.argv[2] ?? path.join(root, 'out/src/training/data', KERNELS_FILE));
  await buildTrainingKernels(process.argv[3] ?? path.join(root, 'out/src/training/tfjs', TRAINING_KERNELS_FILE));
}
