// `simsiam doctor` and "SimSiam: Show Environment": what this machine offers the engine, and how
// fast each backend trains here. One report, built here, printed by the CLI and shown by the
// extension. Each backend is tried in a child process of its own (backendProbeWorker.ts), one after
// another so that their speed figures do not compete for the cores.
import { fork } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { BACKEND_CHOICES, type UserBackendName } from '../config';
import { describeWebGpuAdapters, type WebGpuAdapterReport } from '../tfjs/webgpuBackend';

export type ProbeReply =
  | {
    loaded: true; detail: string; imagesPerSecond: number | null; gpu?: boolean; probeError?: string;
    /** WebGPU on a software adapter (lavapipe, SwiftShader): it works, but auto passes it over for wasm. */
    software?: boolean;
    /** What the speed probe trained on: images per step, and their side in pixels. */
    probe: { images: number; size: number };
  }
  | { loaded: false; reason: string };

export type BackendReport = { name: UserBackendName } & ProbeReply;

export interface EnvironmentReport {
  node: string;
  /** Set when the engine runs on Electron's Node (inside VS Code). */
  electron?: string;
  napi: string;
  platform: string;
  arch: string;
  cpus: { model: string; count: number };
  memory: { totalBytes: number; freeBytes: number };
  versions: { tfjs: string; sharp: string; libvips: string };
  webgpu: { adapters: WebGpuAdapterReport[]; reason?: string };
  backends: BackendReport[];
}

/** A backend whose probe does not answer in this time is reported as hanging (a first CUDA run can take minutes). */
const PROBE_TIMEOUT_MS = 3 * 60_000;
const PROBE_WORKER_FILE = 'backendProbeWorker.js';

export function probeBackend(choice: UserBackendName, timeoutMs = PROBE_TIMEOUT_MS): Promise<BackendReport> {
  return new Promise((resolve) => {
    const child = fork(path.join(__dirname, PROBE_WORKER_FILE), [choice], {
      execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    // TensorFlow writes its own diagnostics (a CUDA library it could not open) to stderr.
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000); });
    // The latest answer counts: 'loaded' first, then the same with its speed.
    let reply: ProbeReply | undefined;
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('message', (message) => { reply = message as ProbeReply; });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const lastLine = stderr.trim().split('\n').pop() ?? '';
      const ending = timedOut ? `no answer within ${timeoutMs / 1000} s`
        : `the check crashed (${signal ?? `exit code ${code}`})${lastLine ? `: ${lastLine}` : ''}`;
      if (reply?.loaded && reply.imagesPerSecond === null && reply.probeError === 'the speed probe did not finish') {
        reply = { ...reply, probeError: `the speed probe did not finish: ${ending}` };
      }
      resolve({ name: choice, ...(reply ?? { loaded: false, reason: ending }) });
    });
  });
}

function electronVersion(): string | undefined {
  return (process.versions as Record<string, string | undefined>).electron;
}

/** The report; `only` limits which backends are tried (all of them, in auto's order, by default). */
export async function collectEnvironment(onBackend: (report: BackendReport) => void = () => {},
  only: readonly UserBackendName[] = BACKEND_CHOICES): Promise<EnvironmentReport> {
  const backends: BackendReport[] = [];
  for (const choice of BACKEND_CHOICES.filter((c) => only.includes(c))) {
    const report = await probeBackend(choice);
    backends.push(report);
    onBackend(report);
  }
  const cpus = os.cpus();
  const electron = electronVersion();
  return {
    node: process.version,
    ...(electron ? { electron } : {}),
    napi: process.versions.napi ?? '?',
    platform: `${os.type()} ${os.release()}`,
    arch: process.arch,
    cpus: { model: cpus[0]?.model.trim() ?? 'unknown', count: os.availableParallelism?.() ?? cpus.length },
    memory: { totalBytes: os.totalmem(), freeBytes: os.freemem() },
    versions: { tfjs: tf.version.tfjs, sharp: sharp.versions.sharp ?? '?', libvips: sharp.versions.vips },
    webgpu: await describeWebGpuAdapters(),
    backends,
  };
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
/** Plain JavaScript manages a fraction of an image a second: keep two significant digits there. */
const rate = (x: number) => (x < 1 ? x.toPrecision(2) : x.toFixed(1));

/** The report for a person, one fact per line, the same in the terminal and in the extension. */
export function formatEnvironment(report: EnvironmentReport): string[] {
  const lines = [
    `Node ${report.node} (N-API ${report.napi})${report.electron ? `, inside Electron ${report.electron} (VS Code)` : ''}`,
    `System ${report.platform}, ${report.arch}; ${report.cpus.count} cores (${report.cpus.model}); ` +
      `memory ${gib(report.memory.totalBytes)} (${gib(report.memory.freeBytes)} free)`,
    `tfjs ${report.versions.tfjs}; sharp ${report.versions.sharp} (libvips ${report.versions.libvips})`,
    '',
    'WebGPU adapters:',
    ...(report.webgpu.adapters.length
      ? report.webgpu.adapters.map((a) => `  ${a.description || a.device || a.vendor} — vendor ${a.vendor || '?'}, ` +
        `${a.architecture || 'architecture ?'}${a.backendType ? `, ${a.backendType}` : ''}${a.fallback ? ' (software fallback)' : ''}`)
      : [`  none${report.webgpu.reason ? `: ${report.webgpu.reason}` : ''}`]),
    '',
    'Backends (in the order --backend auto tries them):',
  ];
  for (const b of report.backends) {
    if (!b.loaded) {
      lines.push(`  ${b.name}: not available — ${b.reason}`);
      continue;
    }
    const speed = b.imagesPerSecond !== null ? `${rate(b.imagesPerSecond)} img/s (tiny model, ${b.probe.images} × ${b.probe.size} px, 3-step probe)`
      : `loads, but the probe failed: ${b.probeError}`;
    const gpu = b.gpu === undefined ? '' : b.gpu ? ', on a CUDA GPU' : ', on the CPU (no CUDA device in use)';
    const software = b.software ? ' (a software adapter: auto passes it over)' : '';
    lines.push(`  ${b.name}: ${b.detail}${gpu}${software} — ${speed}`);
  }
  const chosen = report.backends.find((b) => b.loaded && !b.software);
  const all = report.backends.length === BACKEND_CHOICES.length;
  lines.push('', chosen ? `${all ? '--backend auto' : 'Of those checked, --backend auto'} uses ${chosen.name} here.`
    : 'None of the backends checked loads here: see the reasons above.');
  return lines;
}
