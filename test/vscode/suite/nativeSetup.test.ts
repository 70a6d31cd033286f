// "SimSiam: Set Up Native Backend" in the real extension host, with an npm stand-in (SIMSIAM_NPM):
// one that fails as tfjs-node's libtensorflow download does offline, after which training goes on
// with the next backend; and one that installs a stand-in tfjs-node into global storage, which the
// bundled engine (tfjs compiled in) then trains on. POSIX only: the stand-in npm is a shell script.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import type { SimSiamApi } from '../../../src/host/api';
import type { SetupOutcome } from '../../../src/host/nativeBackendSetup';
import { makeLabelledFolder } from './fixtures';

const EXTENSION_ID = 'simsiam-lab.simsiam-lab';
const repoRoot = path.resolve(__dirname, '..', '..', '..', '..');
const TINY = { epochs: 1, batchSize: 8, imageSize: 16 };

function workspaceRoot(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the test window must open a workspace folder');
  return folder.uri.fsPath;
}

/** Writes an executable npm stand-in running `body` (sh); $PREFIX is the --prefix it was given. */
function npmStandIn(dir: string, body: string): string {
  const file = path.join(dir, 'npm');
  fs.writeFileSync(file, `#!/bin/sh\nPREFIX=""\nwhile [ $# -gt 0 ]; do [ "$1" = --prefix ] && PREFIX="$2"; shift; done\n${body}\n`, { mode: 0o755 });
  return file;
}

/** A tfjs-node stand-in registering the cpu kernels as 'tensorflow', into the tfjs it is handed (the engine's, by the hook). */
function standInPackage(dir: string): string {
  const packageDir = path.join(dir, 'tfjs-node');
  const modules = path.join(repoRoot, 'node_modules', '@tensorflow');
  const version = (name: string) => (JSON.parse(fs.readFileSync(path.join(modules, name, 'package.json'), 'utf8')) as { version: string }).version;
  fs.mkdirSync(path.join(packageDir, 'node_modules', '@tensorflow', 'tfjs-core'), { recursive: true });
  fs.writeFileSync(path.join(packageDir, 'node_modules', '@tensorflow', 'tfjs-core', 'package.json'),
    JSON.stringify({ name: '@tensorflow/tfjs-core', version: version('tfjs-core') }));
  fs.writeFileSync(path.join(packageDir, 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-node', version: version('tfjs'), main: 'index.js' }));
  fs.writeFileSync(path.join(packageDir, 'index.js'), `
    let tf;
    try { tf = require('@tensorflow/tfjs'); } catch { tf = require(${JSON.stringify(path.join(modules, 'tfjs'))}); }
    const { MathBackendCPU } = require(${JSON.stringify(path.join(modules, 'tfjs-backend-cpu'))});
    class StandIn extends MathBackendCPU { constructor() { super(); this.binding = { TF_Version: 'stand-in' }; } }
    tf.registerBackend('tensorflow', () => new StandIn(), 3);
    for (const kernel of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...kernel, backendName: 'tensorflow' });
    tf.setBackend('tensorflow');
    module.exports = tf;`);
  return packageDir;
}

describe('Set Up Native Backend', function () {
  this.timeout(180_000);
  let api: SimSiamApi;
  let scratch: string;
  let installed: string;
  const previousNpm = process.env.SIMSIAM_NPM;

  before(async function () {
    if (process.platform === 'win32') this.skip();
    const extension = vscode.extensions.getExtension<SimSiamApi>(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is not installed in the test window`);
    api = await extension.activate();
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-setup-'));
  });

  after(() => {
    if (previousNpm === undefined) delete process.env.SIMSIAM_NPM;
    else process.env.SIMSIAM_NPM = previousNpm;
    // Later tests (and later runs of this profile) must not train on the stand-in.
    if (installed) fs.rmSync(installed, { recursive: true, force: true });
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  /** Trains a small folder with the backend setting "auto"; resolves to the backend the run reports. */
  async function trainOnce(name: string): Promise<string> {
    const folder = await makeLabelledFolder(path.join(workspaceRoot(), name), 24, 7);
    let backend = '';
    const listening = api.onTrainingMessage((_runDir, message) => {
      if (message.type === 'started') backend = message.backend;
    });
    try {
      const run = await api.trainFolder(folder, { preset: 'tiny', overrides: TINY });
      const outcome = await run.finished;
      assert.strictEqual(outcome.status, 'completed', JSON.stringify(outcome));
    } finally {
      listening.dispose();
    }
    return backend;
  }

  it('says what failed and what to do when npm fails to download libtensorflow, and training goes on with the next backend', async () => {
    process.env.SIMSIAM_NPM = npmStandIn(scratch, [
      'echo "npm error command sh -c node scripts/install.js" >&2',
      'echo "npm error * Downloading libtensorflow" >&2',
      'echo "npm error Error: getaddrinfo ENOTFOUND storage.googleapis.com" >&2',
      'exit 1',
    ].join('\n'));
    const result = await vscode.commands.executeCommand<SetupOutcome>('simsiam.setupNativeBackend', 'node');
    assert.ok(result && !result.ok, JSON.stringify(result));
    assert.strictEqual(result.step, 'npm');
    assert.match(result.summary, /^Could not set up tfjs-node: npm install @tensorflow\/tfjs-node@\d+\.\d+\.\d+ failed \(exit code 1\): Error: getaddrinfo ENOTFOUND storage\.googleapis\.com\. .*check the internet connection/);
    // With the default backend setting ("auto") the notification says what training does meanwhile.
    assert.match(result.message, /Training goes on with the next backend that loads/);
    assert.ok(!fs.existsSync(path.join(result.backendsDir, 'node_modules', '@tensorflow', 'tfjs-node')));
    assert.doesNotMatch(await trainOnce('after-failed-setup'), /tfjs-node/);
  });

  it('installs into global storage, checks it, and the bundled engine then trains on it', async () => {
    const standIn = standInPackage(scratch);
    process.env.SIMSIAM_NPM = npmStandIn(scratch,
      `mkdir -p "$PREFIX/node_modules/@tensorflow" && cp -R ${JSON.stringify(standIn)} "$PREFIX/node_modules/@tensorflow/tfjs-node"`);
    const result = await vscode.commands.executeCommand<SetupOutcome>('simsiam.setupNativeBackend', 'node');
    assert.ok(result, 'the command returned nothing');
    installed = path.join(result.backendsDir, 'node_modules', '@tensorflow', 'tfjs-node');
    assert.ok(result.ok, JSON.stringify(result));
    assert.ok(fs.existsSync(path.join(installed, 'package.json')), `not installed in ${installed}`);
    assert.match(result.summary, /^tfjs-node \d+\.\d+\.\d+ works \(TensorFlow stand-in on the CPU\)/);
    assert.match(await trainOnce('after-setup'), /^tfjs-node \d+\.\d+\.\d+/);
  });
});
