// Installs a native TensorFlow backend (@tensorflow/tfjs-node or tfjs-node-gpu) into the backends
// folder with the user's npm, then checks it in a child process running the same Node as the
// engine. No vscode here (the command in nativeBackendSetup.ts drives it), so the unit tests run it
// with the real npm. The engine finds the result through SIMSIAM_BACKENDS_DIR (see
// src/training/tfjs/externalBackends.ts, whose tfjs hook this folder's own tfjs copy never needs).
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { BACKENDS_DIR_ENV } from '../training/protocol';

export { BACKENDS_DIR_ENV };
/** The npm to run instead of the one on PATH (an absolute path or a command name). */
export const NPM_ENV = 'SIMSIAM_NPM';

export type NativeVariant = 'node' | 'node-gpu';

export const NATIVE_PACKAGES: Record<NativeVariant, { packageName: string; shortName: string }> = {
  node: { packageName: '@tensorflow/tfjs-node', shortName: 'tfjs-node' },
  'node-gpu': { packageName: '@tensorflow/tfjs-node-gpu', shortName: 'tfjs-node-gpu' },
};

/** What the published tfjs-node-gpu 4.x needs: it binds libtensorflow 2.9.1. */
export const CUDA_FIX = 'install the NVIDIA driver, CUDA 11.2 and cuDNN 8.1 (what its libtensorflow 2.9.1 is built for) ' +
  'and put their libraries on the library path (LD_LIBRARY_PATH on Linux, PATH on Windows), then restart VS Code';

export interface InstallOptions {
  variant: NativeVariant;
  /** <globalStorage>/backends. */
  backendsDir: string;
  /** The engine's @tensorflow/tfjs version: the package must be built against the same tfjs-core. */
  tfjsVersion: string;
  /** Every line npm and the check print, for the log. */
  onOutput: (line: string) => void;
  /** Each step as it starts, for the progress notification. */
  onStep?: (step: string) => void;
  /** npm's command; default SIMSIAM_NPM, else npm from PATH. */
  npm?: string;
  /** What npm installs; default <package>@<tfjsVersion>. The tests pass a local package here. */
  packageSpec?: string;
  /** Node that runs the check: the one the engine runs on (the extension host's). */
  nodePath?: string;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

export interface Verified {
  /** e.g. 'tfjs-node 4.22.0'. */
  detail: string;
  /** TensorFlow's own version (binding.TF_Version). */
  tensorflow: string;
  /** tfjs-node-gpu only: whether TensorFlow found a CUDA device. */
  gpu: boolean | null;
  /** Libraries TensorFlow logged it could not load (libcudart, libcudnn, ...). */
  missingLibraries: string[];
}

export type InstallResult =
  | { ok: true; verified: Verified; summary: string }
  | { ok: false; step: 'npm' | 'verify' | 'cancelled'; summary: string };

/**
 * npm.cmd on Windows is a batch file, which Node (since the 2024 security fix) runs only through a
 * shell; everywhere else npm runs directly.
 */
function npmCommand(options: InstallOptions): { command: string; shell: boolean } {
  const command = options.npm ?? options.env?.[NPM_ENV] ?? process.env[NPM_ENV] ?? (process.platform === 'win32' ? 'npm.cmd' : 'npm');
  return { command, shell: process.platform === 'win32' && /\.(cmd|bat)$/i.test(command) };
}

interface Ran { code: number | null; signal: NodeJS.Signals | null; output: string[]; spawnError?: Error }

function run(command: string, args: string[], options: { shell: boolean; cwd: string; env: NodeJS.ProcessEnv; signal?: AbortSignal },
  onLine: (line: string) => void): Promise<Ran> {
  return new Promise((resolve) => {
    const output: string[] = [];
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, shell: options.shell, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    const abort = () => child.kill();
    options.signal?.addEventListener('abort', abort, { once: true });
    for (const stream of [child.stdout, child.stderr]) {
      let pending = '';
      stream.on('data', (chunk: Buffer) => {
        const lines = (pending + chunk.toString()).split(/\r?\n/);
        pending = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) { output.push(line); onLine(line); }
      });
      stream.on('end', () => { if (pending.trim()) { output.push(pending); onLine(pending); } });
    }
    let spawnError: Error | undefined;
    child.on('error', (error) => { spawnError = error; });
    child.on('close', (code, signal) => {
      options.signal?.removeEventListener('abort', abort);
      resolve({ code, signal, output, spawnError });
    });
  });
}

/**
 * The line of npm's output that says why it failed: tfjs-node's install script reports a failed
 * libtensorflow download as an Error with a network code, npm itself as "npm ERR!"/"npm error".
 */
export function npmFailureReason(output: string[]): string {
  // npm prefixes a failed script's output with "npm error" (npm 10+) or "npm ERR!" (older).
  const lines = output.map((line) => line.replace(/^npm (ERR!|error)\s?/, '').trim()).filter(Boolean);
  const network = lines.find((line) => /\b(ENOTFOUND|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|CERT_\w+|self[- ]signed|socket hang up)\b/i.test(line) &&
    !/^(code|errno|syscall)\b/.test(line));
  const thrown = lines.find((line) => /^(\w*Error|Error)\b.*:/.test(line));
  const npmCode = lines.find((line) => /^code [A-Z]/.test(line));
  return network ?? thrown ?? npmCode ?? lines.at(-1) ?? 'npm printed nothing';
}

function describeNpmFailure(options: InstallOptions, spec: string, ran: Ran, command: string): string {
  const { shortName } = NATIVE_PACKAGES[options.variant];
  if (ran.spawnError && (ran.spawnError as NodeJS.ErrnoException).code === 'ENOENT') {
    return `Could not set up ${shortName}: npm was not found (${command}). Install Node.js, which includes npm, ` +
      `or set ${NPM_ENV} to npm's path, then run "SimSiam: Set Up Native Backend" again.`;
  }
  const reason = npmFailureReason(ran.output);
  const downloads = /download|libtensorflow|storage\.googleapis|ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|getaddrinfo/i.test(ran.output.join('\n'));
  const what = downloads
    ? `Its install script downloads libtensorflow (from storage.googleapis.com) and that failed: check the internet connection ` +
      `or the proxy (HTTPS_PROXY), then run "SimSiam: Set Up Native Backend" again.`
    : 'See the SimSiam log for npm\'s output, fix what it reports, then run "SimSiam: Set Up Native Backend" again.';
  return `Could not set up ${shortName}: npm install ${spec} failed (${ran.signal ?? `exit code ${ran.code}`}): ${reason}. ${what}`;
}

/** Libraries TensorFlow says it failed to dlopen (TF 2.x: "Could not load dynamic library 'libcudart.so.11.0'; dlerror: ..."). */
export function missingLibraries(stderr: string): string[] {
  const names = [...stderr.matchAll(/Could not load dynamic library '([^']+)'/g)].map((match) => match[1]);
  return [...new Set(names)];
}

/**
 * The check, run with the engine's Node: loads the package from the backends folder as the engine
 * would find it, runs one op, and says what TensorFlow placed it on. TensorFlow's C++ logging goes
 * to fd 2, which only a parent process can read: that is where missing CUDA libraries show.
 */
const VERIFY_SCRIPT = `
const path = require('path');
const dir = path.join(process.env.${BACKENDS_DIR_ENV}, 'node_modules', process.argv[1]);
const tf = require(dir);
const product = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).dataSync()[0];
const backend = tf.backend();
process.stdout.write('\\nSIMSIAM_VERIFY ' + JSON.stringify({
  backend: tf.getBackend(), product, version: require(path.join(dir, 'package.json')).version,
  tensorflow: backend.binding && backend.binding.TF_Version || 'unknown',
  gpu: typeof backend.isUsingGpuDevice === 'boolean' ? backend.isUsingGpuDevice : null,
}) + '\\n');`;

async function verify(options: InstallOptions, env: NodeJS.ProcessEnv): Promise<{ verified?: Verified; failure?: string }> {
  const { packageName, shortName } = NATIVE_PACKAGES[options.variant];
  // Inside VS Code process.execPath is Electron, which runs as plain Node with this variable.
  const ran = await run(options.nodePath ?? process.execPath, ['-e', VERIFY_SCRIPT, packageName],
    { shell: false, cwd: options.backendsDir, env: { ...env, ELECTRON_RUN_AS_NODE: '1', [BACKENDS_DIR_ENV]: options.backendsDir }, signal: options.signal },
    options.onOutput);
  const marker = ran.output.find((line) => line.startsWith('SIMSIAM_VERIFY '));
  if (ran.code !== 0 || !marker) {
    const thrown = ran.output.find((line) => /^\s*(\w*Error|Error):/.test(line)) ?? ran.output.at(-1) ?? `exit ${ran.signal ?? ran.code}`;
    const napi = /ERR_DLOPEN_FAILED|tfjs_binding\.node|specified module could not be found|napi/i.test(ran.output.join('\n'));
    return {
      failure: `${shortName} was installed but does not load in VS Code's Node ${process.versions.node} (N-API ${process.versions.napi}): ` +
        `${thrown.trim()}. ${napi ? 'Its native addon or the libtensorflow beside it could not be loaded (see the SimSiam log). ' : ''}` +
        'Run "SimSiam: Set Up Native Backend" again; if it fails the same way, use the wasm backend.',
    };
  }
  const result = JSON.parse(marker.slice('SIMSIAM_VERIFY '.length)) as
    { backend: string; product: number; version: string; tensorflow: string; gpu: boolean | null };
  if (result.backend !== 'tensorflow' || result.product !== 11) {
    return { failure: `${shortName} loaded but did not compute with TensorFlow (backend ${result.backend}, 1·3 + 2·4 = ${result.product}): reinstall it.` };
  }
  return {
    verified: {
      detail: `${shortName} ${result.version}`, tensorflow: result.tensorflow,
      gpu: options.variant === 'node-gpu' ? result.gpu : null,
      missingLibraries: missingLibraries(ran.output.join('\n')),
    },
  };
}

/**
 * tfjs #8542: the published 4.22 packages list N-API versions 3-8 only, so on Windows under a Node
 * with N-API 9 or 10 (Node 20.3+/22, which is what VS Code's Electron runs) their installer puts
 * tensorflow.dll in lib/napi-v9 (or v10) while node-pre-gyp loads lib/napi-v8/tfjs_binding.node,
 * which then cannot find the DLL ("The specified module could not be found"). Copying the DLL next
 * to every addon fixes it; Linux and macOS find libtensorflow through the addon's rpath.
 */
export function stageWindowsLibraries(packageDir: string, platform: NodeJS.Platform = process.platform): string[] {
  if (platform !== 'win32') return [];
  const dll = path.join(packageDir, 'deps', 'lib', 'tensorflow.dll');
  const lib = path.join(packageDir, 'lib');
  if (!fs.existsSync(dll) || !fs.existsSync(lib)) return [];
  const staged: string[] = [];
  for (const dir of fs.readdirSync(lib)) {
    const target = path.join(lib, dir, 'tensorflow.dll');
    if (fs.existsSync(path.join(lib, dir, 'tfjs_binding.node')) && !fs.existsSync(target)) {
      fs.copyFileSync(dll, target);
      staged.push(target);
    }
  }
  return staged;
}

/** The engine's tfjs version as x.y.z from a dependency range such as "^4.22.0"; undefined if it names none. */
export function exactVersion(range: string | undefined): string | undefined {
  return range?.match(/(\d+\.\d+\.\d+)/)?.[1];
}

function ensureBackendsFolder(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const manifest = path.join(dir, 'package.json');
  // Without its own package.json npm would look for a project in the folders above.
  if (!fs.existsSync(manifest)) {
    fs.writeFileSync(manifest, JSON.stringify({ private: true, description: 'Native TensorFlow backends installed by SimSiam Lab' }, null, 2) + '\n');
  }
}

/** Installs and checks one native backend; never throws for an expected failure (it is in the result). */
export async function installNativeBackend(options: InstallOptions): Promise<InstallResult> {
  const { packageName, shortName } = NATIVE_PACKAGES[options.variant];
  const spec = options.packageSpec ?? `${packageName}@${options.tfjsVersion}`;
  const env = options.env ?? process.env;
  ensureBackendsFolder(options.backendsDir);
  const packageDir = path.join(options.backendsDir, 'node_modules', ...packageName.split('/'));

  options.onStep?.(`npm install ${spec}`);
  const { command, shell } = npmCommand(options);
  const args = ['install', '--prefix', options.backendsDir, '--no-audit', '--no-fund', '--save-exact', spec];
  options.onOutput(`$ ${command} ${args.join(' ')}`);
  const ran = await run(command, args, { shell, cwd: options.backendsDir, env, signal: options.signal }, options.onOutput);
  if (options.signal?.aborted) {
    return { ok: false, step: 'cancelled', summary: `Setting up ${shortName} was cancelled; training uses the backends it used before.` };
  }
  if (ran.code !== 0 || ran.spawnError) {
    // A half-installed package would be found by the engine and fail to load on every run.
    fs.rmSync(packageDir, { recursive: true, force: true });
    return { ok: false, step: 'npm', summary: describeNpmFailure(options, spec, ran, command) };
  }
  for (const staged of stageWindowsLibraries(packageDir)) {
    options.onOutput(`copied tensorflow.dll to ${staged} (tfjs issue #8542: N-API 9+ Node on Windows)`);
  }

  options.onStep?.(`checking ${shortName} in a separate process`);
  const { verified, failure } = await verify(options, env);
  if (options.signal?.aborted) {
    return { ok: false, step: 'cancelled', summary: `Setting up ${shortName} was cancelled; training uses the backends it used before.` };
  }
  if (!verified) {
    fs.rmSync(packageDir, { recursive: true, force: true });
    return { ok: false, step: 'verify', summary: `${failure} It was removed again; training uses the next backend.` };
  }
  return { ok: true, verified, summary: describeSuccess(verified, options.variant) };
}

function describeSuccess(verified: Verified, variant: NativeVariant): string {
  if (variant === 'node-gpu' && verified.gpu === false) {
    const missing = verified.missingLibraries.length ? ` (TensorFlow could not load ${verified.missingLibraries.join(', ')})` : '';
    return `${verified.detail} is installed and loads, but TensorFlow ${verified.tensorflow} found no CUDA GPU${missing}, so it would ` +
      `train on the CPU: ${CUDA_FIX}. Until then training skips it and uses the next backend (tfjs-node if set up, else WebGPU or wasm).`;
  }
  const where = variant === 'node-gpu' ? 'on the GPU' : 'on the CPU';
  return `${verified.detail} works (TensorFlow ${verified.tensorflow} ${where}): training with the backend setting ` +
    `"auto" or "${variant}" now uses it.`;
}
