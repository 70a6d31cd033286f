/**
 * Loader of the native TensorFlow backends (@tensorflow/tfjs-node and tfjs-node-gpu), both usually
 * absent: optionalDependencies for a checkout, or installed by "SimSiam: Set Up Native Backend"
 * into the backends folder (see externalBackends.ts). Both register as tfjs' 'tensorflow' backend.
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { activate, type LoadedBackend } from './loadedBackend';
import { BACKENDS_DIR_ENV, builtAgainstCore, findBackendPackage, requireWithEngineTfjs } from './externalBackends';

interface NodePackage {
  packageName: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node';
  shortName: string;
  fix: string;
}

const SETUP = 'or run "SimSiam: Set Up Native Backend" in VS Code';

/** What the published tfjs-node-gpu 4.x binds: libtensorflow 2.9.1, built for these. */
export const CUDA_REQUIREMENT = 'an NVIDIA driver with CUDA 11.2 and cuDNN 8.1 (what its libtensorflow 2.9.1 is built for)';

const NODE_PACKAGES: Record<'node-gpu' | 'node', NodePackage> = {
  'node-gpu': {
    packageName: '@tensorflow/tfjs-node-gpu',
    shortName: 'tfjs-node-gpu',
    fix: 'npm install @tensorflow/tfjs-node-gpu (its installer downloads libtensorflow, so it needs internet access, ' +
      `and training needs ${CUDA_REQUIREMENT}; ${SETUP}), or use --backend node or wasm`,
  },
  node: {
    packageName: '@tensorflow/tfjs-node',
    shortName: 'tfjs-node',
    fix: `npm install @tensorflow/tfjs-node (its installer downloads libtensorflow, so it needs internet access; ${SETUP}), ` +
      'or use --backend wasm',
  },
};

/**
 * tfjs-node-gpu loads and runs without a usable GPU: TensorFlow then logs the libraries it failed
 * to dlopen (libcudart, libcudnn, ...) on stderr and places every op on the CPU. Training that
 * silently is no GPU backend, so this says so, once per process (the package stays loaded).
 */
let gpuPackageWithoutGpu: Error | undefined;

function noGpuError(detail: string): Error {
  return new Error(
    `${detail} loaded but TensorFlow found no CUDA GPU, so it would train on the CPU: it needs ${CUDA_REQUIREMENT} ` +
    'on the library path (LD_LIBRARY_PATH on Linux, PATH on Windows). TensorFlow\'s "Could not load dynamic library" ' +
    'lines in the engine\'s output (the SimSiam log) name the missing ones. Install them, or use --backend node');
}

export async function loadNode(variant: 'node-gpu' | 'node'): Promise<LoadedBackend> {
  const { packageName, shortName, fix } = NODE_PACKAGES[variant];
  if (variant === 'node-gpu' && gpuPackageWithoutGpu !== undefined) throw gpuPackageWithoutGpu;
  const found = findBackendPackage(packageName);
  if (found === undefined) {
    const where = process.env[BACKENDS_DIR_ENV] ? ` (looked in ${path.join(process.env[BACKENDS_DIR_ENV]!, 'node_modules')} and the engine's node_modules)` : '';
    throw new Error(`${shortName} is not installed${where}: ${fix}`);
  }
  // A package written against another tfjs-core may call APIs or kernel names this engine's
  // tfjs lacks (or spells differently); it is handed our instance, so only an identical version is safe.
  const theirCore = builtAgainstCore(found);
  if (theirCore !== tf.version_core) {
    const install = found.source === 'backends folder'
      ? `run "SimSiam: Set Up Native Backend" again (it installs ${packageName}@${tf.version_core} into ${process.env[BACKENDS_DIR_ENV]})`
      : `npm install ${packageName}@${tf.version_core}`;
    throw new Error(`${shortName} uses @tensorflow/tfjs-core ${theirCore ?? '(unknown version)'} but this engine uses ` +
      `${tf.version_core}: ${install}, or use --backend wasm`);
  }
  if (variant === 'node-gpu') {
    // libtensorflow 2.9's kernels predate newer GPUs, whose driver JIT-compiles their PTX on the
    // first run (minutes) into a cache that defaults to 256 MB: too small for TensorFlow's kernels,
    // so every run would compile again. CUDA reads this when TensorFlow initialises it, after this.
    process.env.CUDA_CACHE_MAXSIZE ??= String(2 ** 31);
  }
  try {
    requireWithEngineTfjs(found, tf);
  } catch (error) {
    throw new Error(`${shortName} in ${found.dir} is installed but failed to load (${(error as Error).message}): ` +
      `reinstall it (${fix})`);
  }
  if (tf.findBackendFactory('tensorflow') === null) {
    throw new Error(`${shortName} loaded but did not register the 'tensorflow' backend with this tfjs: ${fix}`);
  }
  await activate('tensorflow', `${shortName} is installed but its 'tensorflow' backend failed to initialise: ${fix}`);
  const version = (require(path.join(found.dir, 'package.json')) as { version: string }).version;
  const detail = `${shortName} ${version}`;
  if (variant === 'node-gpu' && (tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === false) {
    gpuPackageWithoutGpu = noGpuError(detail);
    // Frees the name for tfjs-node, which 'auto' tries next and which registers 'tensorflow' too.
    tf.removeBackend('tensorflow');
    throw gpuPackageWithoutGpu;
  }
  return { backendName: 'tensorflow', detail };
}
