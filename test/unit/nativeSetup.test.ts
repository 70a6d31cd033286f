// "SimSiam: Set Up Native Backend" without VS Code: the installer runs the real npm into a backends
// folder, then checks the package in a child process. Its failure is what happens here (tfjs-node's
// install script cannot download libtensorflow), its success is shown with stand-in packages that
// register a 'tensorflow' backend the way the real ones do, and the engine then finds them there.
import * as assert from 'assert';
import { execFile, execFileSync } from 'child_process';
import { promises as dns } from 'dns';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import {
  exactVersion, installNativeBackend, missingLibraries, npmFailureReason, stageWindowsLibraries,
  type InstallOptions, type InstallResult,
} from '../../src/host/nativeBackendInstaller';
import { BACKENDS_DIR_ENV } from '../../src/training/protocol';

const REPO_ROOT = path.resolve(__dirname, '../../..');
const BACKEND_MODULE = path.join(REPO_ROOT, 'out', 'src', 'training', 'tfjs', 'backend.js');
const TFJS = require.resolve('@tensorflow/tfjs');
const TFJS_VERSION = (require('@tensorflow/tfjs/package.json') as { version: string }).version;
const CORE_VERSION = (require('@tensorflow/tfjs-core/package.json') as { version: string }).version;

let scratch: string;
const fresh = (name: string) => fs.mkdtempSync(path.join(scratch, `${name}-`));

/**
 * A package folder named like the real one. `index` is its entry; `coreVersion` fills the
 * tfjs-core copy npm would have installed for it (the engine compares its version with its own).
 */
function standIn(name: '@tensorflow/tfjs-node' | '@tensorflow/tfjs-node-gpu', files: Record<string, string>, coreVersion?: string): string {
  const dir = fresh('package');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: TFJS_VERSION, main: 'index.js', ...JSON.parse(files['package.json'] ?? '{}') }));
  for (const [file, text] of Object.entries(files)) if (file !== 'package.json') fs.writeFileSync(path.join(dir, file), text);
  if (coreVersion) {
    const core = path.join(dir, 'node_modules', '@tensorflow', 'tfjs-core');
    fs.mkdirSync(core, { recursive: true });
    fs.writeFileSync(path.join(core, 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-core', version: coreVersion }));
  }
  return dir;
}

/**
 * Registers 'tensorflow' with the cpu kernels, into the tfjs it is handed: by name (what the engine's
 * hook answers), else this checkout's (what the check's plain Node finds). `gpu` is what its
 * backend says about CUDA, as tfjs-node-gpu's does.
 */
function backendIndex(gpu: boolean | null, stderr = ''): string {
  return `
    let tf;
    try { tf = require('@tensorflow/tfjs'); } catch { tf = require(${JSON.stringify(TFJS)}); }
    ${stderr ? `process.stderr.write(${JSON.stringify(stderr)});` : ''}
    const { MathBackendCPU } = require(${JSON.stringify(require.resolve('@tensorflow/tfjs-backend-cpu'))});
    class StandIn extends MathBackendCPU {
      constructor() { super(); this.binding = { TF_Version: '2.9.1-stand-in' }; ${gpu === null ? '' : `this.isUsingGpuDevice = ${gpu};`} }
    }
    tf.registerBackend('tensorflow', () => new StandIn(), 3);
    for (const kernel of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...kernel, backendName: 'tensorflow' });
    tf.setBackend('tensorflow');
    module.exports = tf;`;
}

function options(variant: InstallOptions['variant'], spec: string, extra: Partial<InstallOptions> = {}): InstallOptions & { lines: string[]; steps: string[] } {
  const lines: string[] = [];
  const steps: string[] = [];
  return {
    variant, backendsDir: path.join(fresh('storage'), 'backends'), tfjsVersion: TFJS_VERSION, packageSpec: spec,
    onOutput: (line) => lines.push(line), onStep: (step) => steps.push(step), lines, steps,
    // The user's npm must not be steered by this checkout's settings.
    env: { ...process.env, npm_config_offline: 'false' },
    ...extra,
  };
}

const pack = (dir: string) => path.join(dir, execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: dir }).toString().trim());

/** Runs the engine's selectBackend in a fresh process with the backends folder set. */
async function engineSelects(backendsDir: string, requested: string): Promise<string> {
  const script = `require(${JSON.stringify(BACKEND_MODULE)}).selectBackend(${JSON.stringify(requested)}).then(
    (info) => console.log('OK ' + info.name + ' ' + info.detail), (error) => console.log('ERROR ' + error.message));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script],
    { cwd: REPO_ROOT, env: { ...process.env, [BACKENDS_DIR_ENV]: backendsDir } });
  return stdout.trim().split('\n').pop()!;
}

describe('Set Up Native Backend: the installer', function () {
  this.timeout(120_000);

  before(() => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-native-setup-'));
  });

  after(() => fs.rmSync(scratch, { recursive: true, force: true }));

  it('reports a failed libtensorflow download by npm as what failed and what to do, and leaves nothing half-installed', async () => {
    // tfjs-node's install script in miniature: it downloads libtensorflow, here from a port nothing listens on.
    const tarball = pack(standIn('@tensorflow/tfjs-node', {
      'package.json': JSON.stringify({ scripts: { install: 'node install.js' } }),
      'install.js': `console.error('* Downloading libtensorflow');
        require('https').get('https://127.0.0.1:9/libtensorflow-cpu-linux-x86_64-2.9.1.tar.gz');`,
      'index.js': 'throw new Error("not installed");',
    }));
    const o = options('node', tarball);
    const result = await installNativeBackend(o);
    assert.deepStrictEqual({ ok: result.ok, step: (result as { step?: string }).step }, { ok: false, step: 'npm' });
    assert.match(result.summary, /^Could not set up tfjs-node: npm install .*\.tgz failed \(exit code 1\): .*ECONNREFUSED 127\.0\.0\.1:9\. /);
    assert.match(result.summary, /downloads libtensorflow .* check the internet connection or the proxy \(HTTPS_PROXY\), then run "SimSiam: Set Up Native Backend" again\.$/);
    assert.ok(o.lines.some((line) => line.includes('* Downloading libtensorflow')), 'npm\'s output reaches the log');
    assert.deepStrictEqual(o.steps, [`npm install ${tarball}`]);
    assert.ok(!fs.existsSync(path.join(o.backendsDir, 'node_modules', '@tensorflow', 'tfjs-node')));
    assert.strictEqual(await engineSelects(o.backendsDir, 'auto').then((line) => line.split(' ').slice(0, 2).join(' ')), 'OK wasm',
      'training goes on with the next backend');
  });

  it('fails the same way with the real @tensorflow/tfjs-node where libtensorflow cannot be downloaded', async function () {
    try {
      await dns.lookup('storage.googleapis.com');
      this.skip(); // this machine could download libtensorflow (hundreds of MB): the path under test does not happen
    } catch {
      // the download fails here, as it does for a user offline or behind a blocking proxy
    }
    const o = options('node', `@tensorflow/tfjs-node@${TFJS_VERSION}`);
    const result = await installNativeBackend(o);
    assert.strictEqual(result.ok, false, result.summary);
    assert.match(result.summary, new RegExp(`^Could not set up tfjs-node: npm install @tensorflow/tfjs-node@${TFJS_VERSION} failed \\(exit code 1\\): ` +
      '.*(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT).*storage\\.googleapis\\.com.* check the internet connection'));
    assert.ok(!fs.existsSync(path.join(o.backendsDir, 'node_modules', '@tensorflow', 'tfjs-node')));
  });

  it('says when npm cannot be found, naming the setting to fix it', async () => {
    const o = options('node', 'whatever', { npm: path.join(scratch, 'no-such-npm') });
    const result = await installNativeBackend(o);
    assert.strictEqual(result.ok, false);
    assert.match(result.summary, /^Could not set up tfjs-node: npm was not found \(.*no-such-npm\)\. Install Node\.js, which includes npm, or set SIMSIAM_NPM/);
  });

  it('installs, checks in a child process, and the engine then selects it from the backends folder', async () => {
    const dir = standIn('@tensorflow/tfjs-node', { 'index.js': backendIndex(null) }, CORE_VERSION);
    const o = options('node', dir);
    const result: InstallResult = await installNativeBackend(o);
    assert.ok(result.ok, result.summary);
    assert.deepStrictEqual(result.verified, { detail: `tfjs-node ${TFJS_VERSION}`, tensorflow: '2.9.1-stand-in', gpu: null, missingLibraries: [] });
    assert.strictEqual(result.summary, `tfjs-node ${TFJS_VERSION} works (TensorFlow 2.9.1-stand-in on the CPU): ` +
      'training with the backend setting "auto" or "node" now uses it.');
    assert.deepStrictEqual(o.steps, [`npm install ${dir}`, 'checking tfjs-node in a separate process']);
    assert.strictEqual(await engineSelects(o.backendsDir, 'auto'), `OK tensorflow tfjs-node ${TFJS_VERSION}`);
  });

  it('removes a package that installs but does not load, and says so', async () => {
    const dir = standIn('@tensorflow/tfjs-node', { 'index.js': `throw new Error('The Node.js native addon module (tfjs_binding.node) can not be found at path: x');` });
    const o = options('node', dir);
    const result = await installNativeBackend(o);
    assert.deepStrictEqual({ ok: result.ok, step: (result as { step?: string }).step }, { ok: false, step: 'verify' });
    assert.match(result.summary, new RegExp(`^tfjs-node was installed but does not load in VS Code's Node ${process.versions.node} \\(N-API ${process.versions.napi}\\): ` +
      'Error: The Node\\.js native addon module \\(tfjs_binding\\.node\\) can not be found at path: x\\. .* It was removed again; training uses the next backend\\.$'));
    assert.ok(!fs.existsSync(path.join(o.backendsDir, 'node_modules', '@tensorflow', 'tfjs-node')));
  });

  it('says when tfjs-node-gpu runs on the CPU because CUDA libraries are missing, naming them and the fix', async () => {
    const tensorflowLog = [
      "2026-01-01 W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library 'libcudart.so.11.0'; dlerror: libcudart.so.11.0: cannot open shared object file: No such file or directory",
      "2026-01-01 W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library 'libcudnn.so.8'; dlerror: libcudnn.so.8: cannot open shared object file: No such file or directory",
      '2026-01-01 W tensorflow/core/common_runtime/gpu/gpu_device.cc:1850] Cannot dlopen some GPU libraries. Skipping registering GPU devices...',
    ].join('\n') + '\n';
    const dir = standIn('@tensorflow/tfjs-node-gpu', { 'index.js': backendIndex(false, tensorflowLog) }, CORE_VERSION);
    const o = options('node-gpu', dir);
    const result = await installNativeBackend(o);
    assert.ok(result.ok, result.summary);
    assert.deepStrictEqual(result.verified.missingLibraries, ['libcudart.so.11.0', 'libcudnn.so.8']);
    assert.strictEqual(result.verified.gpu, false);
    assert.match(result.summary, new RegExp(`^tfjs-node-gpu ${TFJS_VERSION} is installed and loads, but TensorFlow 2\\.9\\.1-stand-in found no CUDA GPU ` +
      '\\(TensorFlow could not load libcudart\\.so\\.11\\.0, libcudnn\\.so\\.8\\), so it would train on the CPU: install the NVIDIA driver, CUDA 11\\.2 and cuDNN 8\\.1'));
    // The engine refuses it the same way, and 'auto' goes on to the next backend.
    const forced = await engineSelects(o.backendsDir, 'node-gpu');
    assert.match(forced, /^ERROR tfjs-node-gpu .* loaded but TensorFlow found no CUDA GPU, so it would train on the CPU: it needs an NVIDIA driver with CUDA 11\.2 and cuDNN 8\.1/);
    assert.match(await engineSelects(o.backendsDir, 'auto'), /^OK wasm /);
  });

  it('reads the libraries TensorFlow failed to load from its log', () => {
    assert.deepStrictEqual(missingLibraries("x Could not load dynamic library 'libcublas.so.11'; dlerror\ny Could not load dynamic library 'libcublas.so.11'"), ['libcublas.so.11']);
    assert.deepStrictEqual(missingLibraries('I tensorflow/core/platform/cpu_feature_guard.cc:193] This TensorFlow binary is optimized'), []);
  });

  it("picks the line of npm's output that says why it failed", () => {
    assert.strictEqual(npmFailureReason(['npm error code 1', 'npm error * Downloading libtensorflow', 'npm error Error: getaddrinfo ENOTFOUND storage.googleapis.com', "npm error   code: 'ENOTFOUND',"]),
      'Error: getaddrinfo ENOTFOUND storage.googleapis.com');
    assert.strictEqual(npmFailureReason(['npm ERR! code E404', 'npm ERR! 404 Not Found - GET https://registry.npmjs.org/@tensorflow%2ftfjs-nod']), 'code E404');
  });

  it('copies tensorflow.dll next to the addon on Windows (tfjs #8542), and does nothing elsewhere', () => {
    const packageDir = fresh('win');
    fs.mkdirSync(path.join(packageDir, 'deps', 'lib'), { recursive: true });
    fs.writeFileSync(path.join(packageDir, 'deps', 'lib', 'tensorflow.dll'), 'dll');
    // What the published installer leaves under a Node with N-API 9: the DLL in napi-v9, the addon in napi-v8.
    for (const dir of ['napi-v8', 'napi-v9']) fs.mkdirSync(path.join(packageDir, 'lib', dir), { recursive: true });
    fs.writeFileSync(path.join(packageDir, 'lib', 'napi-v8', 'tfjs_binding.node'), 'addon');
    fs.writeFileSync(path.join(packageDir, 'lib', 'napi-v9', 'tensorflow.dll'), 'dll');
    assert.deepStrictEqual(stageWindowsLibraries(packageDir, 'linux'), []);
    assert.deepStrictEqual(stageWindowsLibraries(packageDir, 'win32'), [path.join(packageDir, 'lib', 'napi-v8', 'tensorflow.dll')]);
    assert.strictEqual(fs.readFileSync(path.join(packageDir, 'lib', 'napi-v8', 'tensorflow.dll'), 'utf8'), 'dll');
    assert.deepStrictEqual(stageWindowsLibraries(packageDir, 'win32'), [], 'once is enough');
  });

  it("takes the engine's exact tfjs version from a dependency range", () => {
    assert.strictEqual(exactVersion('^4.22.0'), '4.22.0');
    assert.strictEqual(exactVersion('4.22.0'), '4.22.0');
    assert.strictEqual(exactVersion('latest'), undefined);
  });
});
