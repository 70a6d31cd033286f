/**
 * Native backends installed outside the engine's node_modules: "SimSiam: Set Up Native Backend"
 * installs @tensorflow/tfjs-node or tfjs-node-gpu into a backends folder (the extension's global
 * storage) and hands the engine its path in SIMSIAM_BACKENDS_DIR. The engine looks in
 * `<dir>/node_modules` first, then where Node would resolve the package from the engine itself.
 *
 * Such a package must register its kernels into the engine's tfjs, not into the copy of tfjs npm
 * installed beside it: the engine's selectBackend, model and optimizer only see backends and
 * kernels of their own engine instance, and inside the extension the engine is an esbuild bundle
 * with tfjs compiled in, so there is no file on disk Node could resolve to that instance.
 * tfjs-node's dist requires '@tensorflow/tfjs' (~175 times) and '@tensorflow/tfjs-core' (once;
 * the tfjs-core/dist/... subpaths it names are in its test files only). While — and only while —
 * the package is being required, a Module._load hook answers those requests from the package's
 * own files with the engine's tfjs module object. The alternatives were worse: NODE_PATH or
 * symlinks would still load the backends folder's own tfjs copy (a second engine, whose backend
 * the trainer never sees), and editing require.cache entries would outlive the load and touch
 * every later require of those paths. The hook leaves everything else (its addon, node-pre-gyp,
 * protobuf) to Node's ordinary resolution from the package's folder.
 *
 * This module does not import tfjs (the caller passes its instance), so it stays cheap to load.
 */
import * as fs from 'fs';
import Module = require('module');
import * as path from 'path';

import { BACKENDS_DIR_ENV } from '../protocol';

export { BACKENDS_DIR_ENV };

/** Package names that, required from a native backend's files, mean "the engine's tfjs". */
const ENGINE_TFJS_REQUESTS = new Set(['@tensorflow/tfjs', '@tensorflow/tfjs-core']);

export interface FoundPackage {
  /** Folder holding the package's package.json. */
  dir: string;
  /** Where it was found, for messages: the backends folder, or the engine's node_modules. */
  source: 'backends folder' | 'node_modules';
}

function packageDirIn(modulesDir: string, packageName: string): string | undefined {
  const dir = path.join(modulesDir, ...packageName.split('/'));
  return fs.existsSync(path.join(dir, 'package.json')) ? dir : undefined;
}

/** Where `packageName` is installed: `<SIMSIAM_BACKENDS_DIR>/node_modules` first, then Node's resolution. */
export function findBackendPackage(packageName: string, env: NodeJS.ProcessEnv = process.env): FoundPackage | undefined {
  const backendsDir = env[BACKENDS_DIR_ENV];
  if (backendsDir) {
    const dir = packageDirIn(path.join(backendsDir, 'node_modules'), packageName);
    if (dir !== undefined) return { dir, source: 'backends folder' };
  }
  try {
    return { dir: path.dirname(require.resolve(`${packageName}/package.json`)), source: 'node_modules' };
  } catch (error) {
    if ((error as { code?: string }).code === 'MODULE_NOT_FOUND') return undefined;
    throw error;
  }
}

/**
 * The tfjs-core version a package was built against: the copy npm installed for it (beside it or
 * nested in it). That copy is never loaded (the hook gives it the engine's tfjs), but its version
 * says which tfjs-core API the package's kernels were written for, so it must equal the engine's.
 * Falls back to the version the package pins @tensorflow/tfjs to.
 */
export function builtAgainstCore(found: FoundPackage): string | undefined {
  try {
    const corePackage = require.resolve('@tensorflow/tfjs-core/package.json', { paths: [found.dir] });
    return JSON.parse(fs.readFileSync(corePackage, 'utf8')).version as string;
  } catch {
    const manifest = JSON.parse(fs.readFileSync(path.join(found.dir, 'package.json'), 'utf8')) as
      { dependencies?: Record<string, string> };
    const pinned = manifest.dependencies?.['@tensorflow/tfjs'];
    return pinned !== undefined && /^\d+\.\d+\.\d+$/.test(pinned) ? pinned : undefined;
  }
}

type ModuleLoad = (request: string, parent: NodeJS.Module | undefined, isMain: boolean) => unknown;
const moduleInternals = Module as unknown as { _load: ModuleLoad };

/** Requires the package in `found.dir` with its tfjs requests answered by `engineTf`; returns its exports. */
export function requireWithEngineTfjs(found: FoundPackage, engineTf: object): unknown {
  const ownFiles = fs.realpathSync(found.dir) + path.sep;
  const originalLoad = moduleInternals._load;
  moduleInternals._load = function (request, parent, isMain) {
    if (ENGINE_TFJS_REQUESTS.has(request) && parent?.filename != null &&
        (parent.filename.startsWith(ownFiles) || parent.filename.startsWith(found.dir + path.sep))) {
      return engineTf;
    }
    return originalLoad.call(this, request, parent, isMain);
  };
  try {
    return require(found.dir);
  } finally {
    moduleInternals._load = originalLoad;
  }
}
