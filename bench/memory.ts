/**
 * Memory over a small real training run: startTraining (loader, data-parallel replicas where the
 * trainer uses them, kNN monitor, checkpoints) for three short epochs on a generated labelled
 * folder. The tensors alive on the main thread after each epoch must not grow: a leak of even one
 * tensor per step becomes thousands over a real run.
 */
import { spawn } from 'child_process';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { startTraining, StopSignal } from '../src/training/trainer';
import { resolveConfig, type UserBackendName } from '../src/training/config';
import type { EngineMessage } from '../src/training/protocol';
import { writeSyntheticImages } from './syntheticImages';
import { mib, table } from './timing';
import type { BenchContext } from './context';

const EPOCHS = 3;

export interface MemorySnapshot {
  label: string;
  numTensors: number;
  tensorBytes: number;
  rssBytes: number;
  heapBytes: number;
}

export interface RunPeakFigures {
  images: number;
  /** The run's process at its largest, worker threads included (resourceUsage().maxRSS). */
  peakRssBytes: number;
  imagesPerSecond: number;
}

export interface MemoryFigures {
  backend: string;
  snapshots: MemorySnapshot[];
  runPeak: RunPeakFigures | null;
  /** Tensors gained from the first epoch's end to the last's; 0 when nothing leaks. */
  tensorGrowth: number;
  /** Tensors still alive after the run returned, beyond those alive before it started. */
  tensorsLeftAfterRun: number;
}

function snapshot(label: string): MemorySnapshot {
  const memory = tf.memory();
  const usage = process.memoryUsage();
  return { label, numTensors: memory.numTensors, tensorBytes: memory.numBytes, rssBytes: usage.rss, heapBytes: usage.heapUsed };
}

export async function benchMemory(context: BenchContext, backend: UserBackendName, runPeakImages: number): Promise<MemoryFigures> {
  const classes = context.quick ? 2 : 4;
  const perClass = context.quick ? 20 : 40;
  const batchSize = context.quick ? 16 : 64;
  context.heading(`Memory over a real run: startTraining, tiny preset, batch ${batchSize}, ${EPOCHS} epochs on ` +
    `${classes * perClass} labelled JPEGs (${classes} classes, 10 % held out for the kNN monitor), backend ${backend}`);
  const folder = path.join(context.workDir, 'memory-run');
  await writeSyntheticImages(folder, { count: classes * perClass, width: 96, height: 72, format: 'jpeg', seed: 31, classes });

  global.gc?.();
  const snapshots = [snapshot('before startTraining')];
  let backendDetail = backend as string;
  const warnings: string[] = [];
  const emit = (message: EngineMessage) => {
    if (message.type === 'started') {
      backendDetail = message.backend;
      snapshots.push(snapshot('started (model built, initial kNN)'));
    } else if (message.type === 'metric' && message.record.kind === 'epoch') {
      snapshots.push(snapshot(`after epoch ${message.record.epoch} (${message.record.imagesPerSecond.toFixed(1)} images/s, kNN done)`));
    } else if (message.type === 'warning') {
      warnings.push(message.message);
    }
  };
  await startTraining({
    folder, config: resolveConfig('tiny', { backend, epochs: EPOCHS, batchSize }), runsDir: path.join(context.workDir, 'memory-runs'),
    name: 'bench-memory',
  }, emit, new StopSignal());
  global.gc?.();
  snapshots.push(snapshot('after the run returned'));

  const epochEnds = snapshots.filter((s) => s.label.startsWith('after epoch'));
  const tensorGrowth = epochEnds[epochEnds.length - 1].numTensors - epochEnds[0].numTensors;
  const tensorsLeftAfterRun = snapshots[snapshots.length - 1].numTensors - snapshots[0].numTensors;
  const rows = [['moment', 'tensors', 'tensor bytes', 'RSS', 'JS heap']];
  for (const s of snapshots) rows.push([s.label, String(s.numTensors), mib(s.tensorBytes), mib(s.rssBytes), mib(s.heapBytes)]);
  context.print(`  backend ${backendDetail}`);
  context.print(table(rows));
  context.print(tensorGrowth === 0
    ? `  tensors alive after each epoch: constant (${epochEnds[0].numTensors})`
    : `  tensors alive after each epoch: NOT constant, ${tensorGrowth > 0 ? '+' : ''}${tensorGrowth} from epoch 1 to ${EPOCHS} (a leak)`);
  context.print(`  tensors left after the run returned: ${tensorsLeftAfterRun > 0 ? '+' : ''}${tensorsLeftAfterRun} vs before it ` +
    '(should be about 0: a few constants tfjs caches on first use are fine, one per parameter is a per-run leak)');
  for (const warning of warnings) context.print(`  engine warning: ${warning}`);
  const runPeak = runPeakImages > 0 ? await benchRunPeak(context, backend, runPeakImages) : null;
  return { backend: backendDetail, snapshots, runPeak, tensorGrowth, tensorsLeftAfterRun };
}

/**
 * A whole run's memory, as a user's `simsiam train` has it: one epoch of the tiny preset with the
 * trainer's defaults (data-parallel threads, loader, kNN monitor over every image, checkpoint)
 * in a process of its own, so that nothing this harness holds is counted.
 */
async function benchRunPeak(context: BenchContext, backend: UserBackendName, images: number): Promise<RunPeakFigures> {
  const classes = 10;
  const folder = path.join(context.workDir, `run-peak-${images}`);
  context.print(`\n  Peak RSS of a whole run in its own process: 1 epoch, tiny preset, defaults, on ${images} generated ` +
    `32x32 labelled JPEGs (${classes} classes; the kNN monitor embeds them all), backend ${backend}`);
  await writeSyntheticImages(folder, { count: images, width: 32, height: 32, format: 'jpeg', seed: 41, classes });
  const script = `
    const { startTraining, StopSignal } = require(${JSON.stringify(require.resolve('../src/training/trainer'))});
    const { resolveConfig } = require(${JSON.stringify(require.resolve('../src/training/config'))});
    let epoch;
    startTraining({ folder: ${JSON.stringify(folder)}, config: resolveConfig('tiny', { backend: ${JSON.stringify(backend)}, epochs: 1 }),
      runsDir: ${JSON.stringify(path.join(context.workDir, 'run-peak-runs'))}, name: 'bench-run-peak' },
      (message) => { if (message.type === 'metric' && message.record.kind === 'epoch') epoch = message.record; },
      new StopSignal())
      .then(() => console.log(JSON.stringify({ peakRssBytes: process.resourceUsage().maxRSS * 1024, imagesPerSecond: epoch.imagesPerSecond })))
      .catch((error) => { console.error(error); process.exit(1); });`;
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`the run-peak child exited with code ${code}`))));
  });
  const { peakRssBytes, imagesPerSecond } = JSON.parse(output.trim().split('\n').pop()!);
  const figures = { images, peakRssBytes, imagesPerSecond };
  context.print(`  peak RSS ${mib(peakRssBytes)} (${(peakRssBytes / 1e9).toFixed(2)} GB), training at ${imagesPerSecond.toFixed(1)} images/s`);
  return figures;
}
