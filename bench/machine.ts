/**
 * What a benchmark figure depends on besides the code: the CPU, how busy the machine already was,
 * the Node and library versions, and which commit was measured. Printed first, so that two outputs
 * are only compared like with like.
 */
import * as os from 'os';
import { execFileSync } from 'child_process';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';

export interface MachineInfo {
  date: string;
  commit: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  platform: string;
  node: string;
  tfjs: string;
  sharp: string;
  /** 1, 5 and 15 minute load averages when the run started. */
  loadAtStart: number[];
}

/** One runnable process per core is a busy machine; from half of that on, timings drift. */
const BUSY_LOAD_PER_CORE = 0.5;

export function describeMachine(): MachineInfo {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    commit: gitCommit(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown CPU',
    cores: os.availableParallelism(),
    memoryGiB: os.totalmem() / 2 ** 30,
    platform: `${os.platform()} ${os.arch()} ${os.release()}`,
    node: process.version,
    tfjs: tf.version.tfjs,
    sharp: sharpVersions(),
    loadAtStart: os.loadavg(),
  };
}

export function machineReport(machine: MachineInfo): string[] {
  const load = machine.loadAtStart.map((l) => l.toFixed(2)).join(' / ');
  const lines = [
    `date ${machine.date}, commit ${machine.commit}`,
    `machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB.toFixed(1)} GiB, ${machine.platform}`,
    `node ${machine.node}, tfjs ${machine.tfjs}, sharp ${machine.sharp}`,
    `load average at start (1/5/15 min): ${load}`,
  ];
  const warning = loadWarning(machine.loadAtStart[0], machine.cores);
  if (warning) lines.push(warning);
  return lines;
}

/** A warning line when the 1-minute load says other processes were already using the CPU. */
export function loadWarning(load: number, cores: number): string | null {
  if (load < BUSY_LOAD_PER_CORE * cores) return null;
  return `WARNING: load average ${load.toFixed(1)} on ${cores} cores: other processes share the CPU, so the figures ` +
    'below are slower and noisier than on an idle machine (compare min rather than median, or rerun when idle).';
}

function gitCommit(): string {
  try {
    const run = (...args: string[]) => execFileSync('git', args, { cwd: __dirname, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const head = run('rev-parse', '--short', 'HEAD');
    // Only tracked changes: untracked files are everywhere in a shared checkout and say little.
    const dirty = run('status', '--porcelain', '--untracked-files=no') !== '';
    return dirty ? `${head} + uncommitted changes` : head;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function sharpVersions(): string {
  return `${sharp.versions.sharp ?? '?'} (libvips ${sharp.versions.vips})`;
}
