/**
 * Loader of the WebGPU backend: @tensorflow/tfjs-backend-webgpu over Dawn's Node bindings (the
 * `webgpu` package), which reach Metal on macOS, D3D12 on Windows and Vulkan on Linux.
 *
 * tfjs-backend-webgpu registers itself only where navigator.gpu exists, and its own factory reads
 * `adapter.features` without checking that an adapter was found. So this module asks Dawn for the
 * adapter itself, says why when there is none, and registers the backend with the device it got.
 */
import * as fs from 'fs';
import * as path from 'path';
import { pathToFileURL } from 'url';
import * as tf from '@tensorflow/tfjs';
import { activate, type LoadedBackend } from './loadedBackend';

/**
 * 'none' hides every adapter (to exercise the no-adapter path); 'any' lets 'auto' take a software
 * adapter too (lavapipe in CI), which it otherwise skips because wasm is faster than one.
 */
export const WEBGPU_ADAPTER_ENV = 'SIMSIAM_WEBGPU_ADAPTER';

// The few WebGPU shapes used here, so the engine does not depend on a copy of the WebGPU typings.
interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backendType?: string;
  isFallbackAdapter?: boolean;
}
interface Adapter {
  features: ReadonlySet<string>;
  limits: Record<string, number>;
  info: AdapterInfo;
  requestDevice(descriptor: { requiredFeatures: string[]; requiredLimits: Record<string, number> }): Promise<unknown>;
}
interface Gpu {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power'; forceFallbackAdapter?: boolean }): Promise<Adapter | null>;
}
interface Dawn {
  create(options: string[]): Gpu;
  globals: Record<string, unknown>;
}

export interface WebGpuAdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backendType?: string;
  fallback: boolean;
}

/** The graphics API Dawn uses natively on each platform; elsewhere Dawn picks. */
const NATIVE_API: Partial<Record<NodeJS.Platform, string>> = { linux: 'vulkan', darwin: 'metal', win32: 'd3d12' };

const DRIVER_HINT: Partial<Record<NodeJS.Platform, string>> = {
  linux: 'install a Vulkan driver for the GPU (Mesa\'s mesa-vulkan-drivers 25 or later, or the vendor\'s), ' +
    'or Mesa\'s lavapipe for a software adapter (scripts/prepare/lavapipe.sh)',
  darwin: 'WebGPU needs Metal (macOS 10.15 or later on a Metal-capable GPU)',
  win32: 'WebGPU needs Direct3D 12: update the GPU driver',
};

let dawnLoading: Promise<Dawn> | undefined;

/** `webgpu` is an ES module, and tsc turns import() into require() for this CommonJS engine. */
function importDawn(): Promise<Dawn> {
  if (dawnLoading === undefined) {
    dawnLoading = (async () => {
      let entry: string;
      try {
        entry = require.resolve('webgpu');
      } catch {
        throw new Error('the webgpu package (Dawn\'s Node bindings) is not installed next to the engine: ' +
          'reinstall the extension, or npm install webgpu in a source checkout');
      }
      const importModule = new Function('url', 'return import(url)') as (url: string) => Promise<Dawn>;
      try {
        return await importModule(pathToFileURL(entry).href);
      } catch (error) {
        throw new Error(`Dawn's Node bindings in ${path.dirname(entry)} failed to load for ` +
          `${process.platform}-${process.arch} (${(error as Error).message}): use --backend wasm`);
      }
    })();
    dawnLoading.catch(() => { dawnLoading = undefined; });
  }
  return dawnLoading;
}

interface FoundAdapter {
  gpu: Gpu;
  adapter: Adapter;
  backendType?: string;
}

/** One Dawn instance per set of options: each enumerates the drivers when created. */
const instances = new Map<string, Gpu | null>();

function dawnInstance(dawn: Dawn, createOptions: string[]): Gpu | null {
  const key = createOptions.join(' ');
  if (!instances.has(key)) {
    try {
      instances.set(key, dawn.create(createOptions));
    } catch {
      // A build without this API's backend: Dawn's default choice is tried next.
      instances.set(key, null);
    }
  }
  return instances.get(key)!;
}

/** Asks Dawn for an adapter on the platform's native API (so its name is known), then on whatever Dawn chooses. */
async function requestAdapter(dawn: Dawn, options: Parameters<Gpu['requestAdapter']>[0]): Promise<FoundAdapter | null> {
  const native = NATIVE_API[process.platform];
  const attempts: Array<{ createOptions: string[]; backendType?: string }> =
    native ? [{ createOptions: [`backend=${native}`], backendType: native }, { createOptions: [] }] : [{ createOptions: [] }];
  for (const { createOptions, backendType } of attempts) {
    const gpu = dawnInstance(dawn, createOptions);
    if (gpu === null) continue;
    const adapter = await gpu.requestAdapter(options);
    if (adapter) {
      return { gpu, adapter, backendType: adapter.info.backendType ?? backendType };
    }
  }
  return null;
}

function report(found: FoundAdapter): WebGpuAdapterReport {
  const { vendor, architecture, device, description, isFallbackAdapter } = found.adapter.info;
  return { vendor, architecture, device, description, backendType: found.backendType, fallback: isFallbackAdapter === true };
}

function noAdapterReason(): string {
  return `Dawn found no adapter on ${process.platform}: ${DRIVER_HINT[process.platform] ?? 'this platform may have no WebGPU driver'}`;
}

function adapterHidden(): boolean {
  return process.env[WEBGPU_ADAPTER_ENV] === 'none';
}

/**
 * The WebGPU adapters Dawn offers (a GPU's for each power preference, and the software fallback),
 * without selecting the backend; `reason` says why there is none.
 */
export async function describeWebGpuAdapters(): Promise<{ adapters: WebGpuAdapterReport[]; reason?: string }> {
  if (adapterHidden()) {
    return { adapters: [], reason: `${WEBGPU_ADAPTER_ENV}=none hides them` };
  }
  let dawn: Dawn;
  try {
    dawn = await importDawn();
  } catch (error) {
    return { adapters: [], reason: (error as Error).message };
  }
  const adapters: WebGpuAdapterReport[] = [];
  const requests = [{ powerPreference: 'high-performance' as const }, { powerPreference: 'low-power' as const }, { forceFallbackAdapter: true }];
  for (const options of requests) {
    const found = await requestAdapter(dawn, options);
    const described = found && report(found);
    if (described && !adapters.some((a) => a.description === described.description && a.device === described.device)) {
      adapters.push(described);
    }
  }
  return adapters.length ? { adapters } : { adapters, reason: noAdapterReason() };
}

function adapterName(info: AdapterInfo): string {
  return info.description || [info.vendor, info.architecture, info.device].filter(Boolean).join(' ') || 'unnamed adapter';
}

/**
 * tfjs-backend-webgpu's own device request (base.ts), made for the adapter found here, plus the
 * adapter's storage-buffer count: the default 8 fails AddN of more inputs (a Dawn validation
 * error, printed, not thrown, that leaves the result unwritten).
 */
async function requestDevice(adapter: Adapter): Promise<unknown> {
  const requiredFeatures = ['timestamp-query', 'bgra8unorm-storage'].filter((f) => adapter.features.has(f));
  const limits = ['maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupsPerDimension', 'maxStorageBufferBindingSize',
    'maxBufferSize', 'maxComputeWorkgroupSizeX', 'maxComputeInvocationsPerWorkgroup', 'maxStorageBuffersPerShaderStage'];
  return adapter.requestDevice({ requiredFeatures, requiredLimits: Object.fromEntries(limits.map((l) => [l, adapter.limits[l]])) });
}

function checkCoreVersion(): void {
  let packageDir: string;
  try {
    packageDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-webgpu/package.json'));
  } catch {
    // Inside the extension's engine bundle the package exists only compiled in, with the bundle's
    // one tfjs-core (scripts/build.mjs refuses a bundle holding two).
    return;
  }
  const theirCore = JSON.parse(fs.readFileSync(
    require.resolve('@tensorflow/tfjs-core/package.json', { paths: [packageDir] }), 'utf8')).version as string;
  if (theirCore !== tf.version_core) {
    throw new Error(`@tensorflow/tfjs-backend-webgpu uses @tensorflow/tfjs-core ${theirCore} but this engine uses ` +
      `${tf.version_core}: npm install @tensorflow/tfjs-backend-webgpu@${tf.version_core}, or use --backend wasm`);
  }
}

/**
 * Registers tfjs' 'webgpu' backend on `device`. The package's WebGPUBackend checks navigator.gpu
 * when constructed, so navigator.gpu is set for that moment only: a GPU object left reachable from
 * globalThis keeps Node from exiting (Dawn's README, "Lifetime").
 */
function registerWebGpu(dawn: Dawn, gpu: Gpu, device: unknown, info: AdapterInfo): void {
  // Required only now: requiring it while navigator.gpu is set would register its own factory.
  const { WebGPUBackend } = require('@tensorflow/tfjs-backend-webgpu') as typeof import('@tensorflow/tfjs-backend-webgpu');
  // WebGPUBackend names GPUBufferUsage, GPUMapMode... as globals, which Node lacks.
  for (const [name, value] of Object.entries(dawn.globals)) {
    if (!(name in globalThis)) {
      Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
    }
  }
  const global = globalThis as { navigator?: { gpu?: unknown } };
  const ownNavigator = global.navigator === undefined;
  const navigator = global.navigator ?? {};
  const previousGpu = navigator.gpu;
  if (ownNavigator) {
    Object.defineProperty(globalThis, 'navigator', { value: navigator, writable: true, configurable: true });
  }
  try {
    // Read-only on Node 21+'s navigator, hence defineProperty.
    Object.defineProperty(navigator, 'gpu', { value: gpu, writable: true, configurable: true });
    const backend = new WebGPUBackend(device as GPUDevice, info as unknown as GPUAdapterInfo);
    tf.registerBackend('webgpu', () => backend, 0);
  } finally {
    if (ownNavigator) {
      delete global.navigator;
    } else if (previousGpu === undefined) {
      delete navigator.gpu;
    } else {
      Object.defineProperty(navigator, 'gpu', { value: previousGpu, writable: true, configurable: true });
    }
  }
}

let adapterSearch: Promise<FoundAdapter> | undefined;
let loadedAdapter: FoundAdapter | undefined;

/** The adapter the backend runs on, found once per process; throws "no WebGPU adapter: why". */
function findAdapter(): Promise<FoundAdapter> {
  if (adapterSearch === undefined) {
    adapterSearch = (async () => {
      if (adapterHidden()) {
        throw new Error(`no WebGPU adapter: ${WEBGPU_ADAPTER_ENV}=none hides them`);
      }
      const found = await requestAdapter(await importDawn(), { powerPreference: 'high-performance' });
      if (found === null) {
        throw new Error(`no WebGPU adapter: ${noAdapterReason()}; or use --backend wasm`);
      }
      return found;
    })();
    adapterSearch.catch(() => { adapterSearch = undefined; });
  }
  return adapterSearch;
}

/**
 * What 'auto' checks before loading WebGPU: it takes a GPU's adapter, not a software (fallback)
 * one, which is slower than wasm, unless SIMSIAM_WEBGPU_ADAPTER=any.
 */
export async function checkAdapterForAuto(): Promise<void> {
  const { adapter } = await findAdapter();
  if (adapter.info.isFallbackAdapter === true && process.env[WEBGPU_ADAPTER_ENV] !== 'any') {
    throw new Error(`no WebGPU adapter but the software one (${adapterName(adapter.info)}), slower than wasm: ` +
      '--backend webgpu uses it anyway');
  }
}

/** Whether the loaded WebGPU backend runs on a software adapter (lavapipe, SwiftShader): slower than wasm. */
export function webGpuIsSoftware(): boolean {
  return loadedAdapter?.adapter.info.isFallbackAdapter === true;
}

/** Loads the WebGPU backend on the adapter Dawn prefers for high performance, software ones included. */
export async function loadWebGpu(): Promise<LoadedBackend> {
  if (loadedAdapter === undefined) {
    checkCoreVersion();
    const found = await findAdapter();
    const device = await requestDevice(found.adapter);
    registerWebGpu(await importDawn(), found.gpu, device, found.adapter.info);
    loadedAdapter = found;
  }
  const { adapter, backendType } = loadedAdapter;
  await activate('webgpu', `the WebGPU backend failed to initialise on ${adapterName(adapter.info)}: use --backend wasm`);
  return { backendName: 'webgpu', detail: `webgpu (${adapterName(adapter.info)}${backendType ? `, ${backendType}` : ''})` };
}
