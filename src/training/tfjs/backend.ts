/**
 * Run-time choice of the tfjs backend. Everything is loaded lazily: tfjs-node and tfjs-node-gpu are
 * optionalDependencies that are usually absent, and even importing tfjs-backend-wasm registers it
 * as the highest-priority backend, which would make any tf call made before selectBackend fail.
 *
 * The engine imports the @tensorflow/tfjs union package (as the rest of src/training does) rather
 * than tfjs-core plus chosen backends: the union pins cpu, core, layers and data to one version
 * and one engine instance, and tfjs-backend-wasm/tfjs-node register into that same tfjs-core
 * because they are installed at the same version (selectBackend checks this for tfjs-node).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type * as tfWasm from '@tensorflow/tfjs-backend-wasm';
import { releaseGradientInputsEarly } from './gradientMemory';
import { registerWasmGradientKernels } from './wasmGradients';
import { BACKEND_CHOICES, type BackendRequest, type UserBackendName } from '../config';
import { WASM_DIR_ENV } from '../protocol';
import { activate, type LoadedBackend } from './loadedBackend';
import { loadNode } from './nodeBackend';
import { checkAdapterForAuto, loadWebGpu } from './webgpuBackend';

/**
 * Backend names as tfjs spells them. Both tfjs-node packages register as 'tensorflow' (what
 * tf.getBackend() says); 'tensorflow-gpu' is accepted to ask for the GPU build.
 */
export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
/** What selectBackend takes: a person's choice, or tfjs' own name (a replica thread follows its main thread's). */
export type BackendSelection = BackendRequest | BackendName;

export interface BackendInfo {
  /** tf.getBackend() after selection. */
  name: string;
  /** What was asked for, as given. */
  requested: string;
  /** For people: e.g. 'wasm (simd, 1 thread)' or 'tfjs-node-gpu 4.22.0'. */
  detail: string;
}

export { WASM_DIR_ENV };

let wasmDirectoryOverride: string | undefined;

/**
 * Where the wasm binaries are, for a bundled extension that copies them next to its bundle.
 * Takes precedence over SIMSIAM_WASM_DIR and the installed package; call before selectBackend.
 */
export function setWasmDirectory(directory: string): void {
  wasmDirectoryOverride = directory;
}

function wasmDirectory(): string {
  const configured = wasmDirectoryOverride ?? process.env[WASM_DIR_ENV];
  if (configured) {
    return configured;
  }
  try {
    // The package's node entry point lives in dist/, next to the .wasm files.
    return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  } catch {
    throw new Error(
      `cannot locate the tfjs wasm binaries: set ${WASM_DIR_ENV} to the folder holding tfjs-backend-wasm*.wasm ` +
      `(node_modules/@tensorflow/tfjs-backend-wasm/dist), or use --backend cpu`);
  }
}

async function loadWasm(): Promise<LoadedBackend> {
  const directory = wasmDirectory();
  // Deferred so that only choosing wasm registers it (see the module comment).
  const wasm: typeof tfWasm = require('@tensorflow/tfjs-backend-wasm');
  // Node never gets the threaded build (tfjs disables wasm threads there), so one of these two loads.
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const binary = simd ? 'tfjs-backend-wasm-simd.wasm' : 'tfjs-backend-wasm.wasm';
  if (!fs.existsSync(path.join(directory, binary))) {
    throw new Error(
      `no tfjs wasm binary ${binary} in ${directory}: ` +
      `point ${WASM_DIR_ENV} at node_modules/@tensorflow/tfjs-backend-wasm/dist, or use --backend cpu`);
  }
  if (tf.findBackend('wasm') === null) {
    // tfjs reads the prefix verbatim, so it must end with a separator.
    wasm.setWasmPaths(directory.endsWith(path.sep) || directory.endsWith('/') ? directory : directory + path.sep);
  }
  registerWasmGradientKernels();
  await activate('wasm', `the wasm backend failed to initialise from ${directory} (see the tfjs warning above): ` +
    `check that ${binary} there comes from @tensorflow/tfjs-backend-wasm ${wasm.version_wasm}, or use --backend cpu`);
  // Node's wasm runs one thread: the training threads are the run's replicas, which the run reports.
  return { backendName: 'wasm', detail: `wasm (${simd ? 'simd' : 'no simd'})` };
}

async function loadCpu(): Promise<LoadedBackend> {
  await activate('cpu', 'the cpu backend failed to initialise');
  return { backendName: 'cpu', detail: 'cpu (plain JavaScript, slowest)' };
}

const REQUEST_ALIASES: Record<BackendSelection, UserBackendName | 'auto'> = {
  auto: 'auto', 'node-gpu': 'node-gpu', node: 'node', webgpu: 'webgpu', wasm: 'wasm', cpu: 'cpu',
  'tensorflow-gpu': 'node-gpu', tensorflow: 'node',
};

function load(choice: UserBackendName): Promise<LoadedBackend> {
  switch (choice) {
    case 'node-gpu':
    case 'node': return loadNode(choice);
    case 'webgpu': return loadWebGpu();
    case 'wasm': return loadWasm();
    case 'cpu': return loadCpu();
  }
}

/** One load per backend, shared by concurrent and later callers; forgotten if it fails. */
const loads = new Map<UserBackendName, Promise<LoadedBackend>>();
let autoChoice: Promise<{ choice: UserBackendName; skipped: string[] }> | undefined;

async function use(choice: UserBackendName): Promise<LoadedBackend> {
  let loading = loads.get(choice);
  if (loading === undefined) {
    loading = load(choice);
    loads.set(choice, loading);
    loading.catch(() => loads.delete(choice));
  }
  const backend = await loading;
  // Another selection may have switched backends since this one loaded.
  await activate(backend.backendName, `the ${choice} backend loaded before but can no longer be selected`);
  return backend;
}

async function chooseAutomatically(): Promise<{ choice: UserBackendName; skipped: string[] }> {
  const failures: string[] = [];
  for (const choice of BACKEND_CHOICES) {
    try {
      if (choice === 'webgpu') {
        await checkAdapterForAuto();
      }
      await use(choice);
      return { choice, skipped: failures };
    } catch (error) {
      failures.push(`${choice}: ${(error as Error).message}`);
    }
  }
  throw new Error(`no tfjs backend could be loaded:\n${failures.join('\n')}`);
}

/**
 * Makes `requested` the active tfjs backend and says what it is. 'auto' takes the first of
 * tfjs-node-gpu, tfjs-node, WebGPU (on a GPU's adapter), wasm, cpu that loads; a named backend that cannot load throws an
 * Error saying how to fix it. Calling it again is cheap and returns the same answer.
 */
export async function selectBackend(requested: BackendSelection): Promise<BackendInfo> {
  if (!Object.hasOwn(REQUEST_ALIASES, requested)) {
    throw new Error(`unknown backend '${requested}': choose one of auto, ${BACKEND_CHOICES.join(', ')}`);
  }
  const alias = REQUEST_ALIASES[requested];
  let choice: UserBackendName;
  if (alias === 'auto') {
    if (autoChoice === undefined) {
      autoChoice = chooseAutomatically();
      autoChoice.catch(() => { autoChoice = undefined; });
    }
    ({ choice } = await autoChoice);
  } else {
    choice = alias;
  }
  const { backendName, detail } = await use(choice);
  // Whatever the backend, a training step's backward pass frees what each op's gradient consumed.
  releaseGradientInputsEarly();
  return { name: backendName, requested, detail };
}

/**
 * For the log: each backend that 'auto' tried before the one it chose, and why it was passed over
 * ('webgpu: no WebGPU adapter: ...'); empty until selectBackend('auto') has chosen.
 */
export async function autoSkipped(): Promise<string[]> {
  if (autoChoice === undefined) return [];
  try {
    return [...(await autoChoice).skipped];
  } catch {
    return [];
  }
}
