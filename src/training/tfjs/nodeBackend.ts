/**
 * Loader of the native TensorFlow backends (@tensorflow/tfjs-node and tfjs-node-gpu), both
 * optionalDependencies that are usually absent. Both register as tfjs' 'tensorflow' backend.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { activate, type LoadedBackend } from './loadedBackend';

interface NodePackage {
  packageName: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node';
  shortName: string;
  fix: string;
}

const NODE_PACKAGES: Record<'node-gpu' | 'node', NodePackage> = {
  'node-gpu': {
    packageName: '@tensorflow/tfjs-node-gpu',
    shortName: 'tfjs-node-gpu',
    fix: 'npm install @tensorflow/tfjs-node-gpu (needs internet access to download libtensorflow, ' +
      'and CUDA 11.2 + cuDNN 8.1 for its libtensorflow 2.9), or use --backend node or wasm',
  },
  node: {
    packageName: '@tensorflow/tfjs-node',
    shortName: 'tfjs-node',
    fix: 'npm install @tensorflow/tfjs-node (needs internet access to download libtensorflow), or use --backend wasm',
  },
};

function isMissingModule(error: unknown, packageName: string): boolean {
  const { code, message } = error as { code?: string; message?: string };
  return code === 'MODULE_NOT_FOUND' && typeof message === 'string' && message.includes(`'${packageName}'`);
}

export async function loadNode(variant: 'node-gpu' | 'node'): Promise<LoadedBackend> {
  const { packageName, shortName, fix } = NODE_PACKAGES[variant];
  let packageDir: string;
  try {
    packageDir = path.dirname(require.resolve(`${packageName}/package.json`));
  } catch (error) {
    if (isMissingModule(error, `${packageName}/package.json`)) {
      throw new Error(`${shortName} is not installed: ${fix}`);
    }
    throw error;
  }
  // A tfjs-node built against another tfjs-core would bring its own copy whose kernels and
  // tensors need not match ours; only an identical version is deduplicated to one instance.
  const theirCore = JSON.parse(fs.readFileSync(
    require.resolve('@tensorflow/tfjs-core/package.json', { paths: [packageDir] }), 'utf8')).version as string;
  if (theirCore !== tf.version_core) {
    throw new Error(
      `${shortName} uses @tensorflow/tfjs-core ${theirCore} but this engine uses ${tf.version_core}: ` +
      `npm install ${packageName}@${tf.version_core}, or use --backend wasm`);
  }
  try {
    require(packageName);
  } catch (error) {
    throw new Error(`${shortName} is installed but failed to load (${(error as Error).message}): ` +
      `reinstall it (${fix})`);
  }
  if (tf.findBackendFactory('tensorflow') === null) {
    throw new Error(`${shortName} loaded but did not register the 'tensorflow' backend with this tfjs: ${fix}`);
  }
  await activate('tensorflow', `${shortName} is installed but its 'tensorflow' backend failed to initialise: ${fix}`);
  const version = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8')).version as string;
  return { backendName: 'tensorflow', detail: `${shortName} ${version}` };
}

