/**
 * `npm run bench`: every performance figure of the engine in one command, printed (no pass/fail)
 * in a fixed layout so that two runs can be compared line by line. See bench/README.md.
 *
 *   npm run bench -- [--quick] [--only train,augment,embed,memory,retrieval] [--all] [--kernels]
 *                    [--backend wasm] [--retrieval-images 50000] [--json figures.json]
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { performance } from 'perf_hooks';
import { Command, Option } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/training/tfjs/backend';
import { BACKEND_CHOICES, type UserBackendName } from '../src/training/config';
import { describeMachine, loadWarning, machineReport } from './machine';
import { consoleOutput, type BenchContext } from './context';
import { benchTrain, writeTrainingFolder, type TrainFigures } from './train';
import { benchEmbed, type EmbedFigures } from './embed';
import { benchAugment } from './augment';
import { benchMemory } from './memory';
import { benchEvaluation } from './evaluation';
import { benchMap } from './map';
import { BACKENDS_DIR_ENV } from '../src/training/protocol';
import { formatMs, formatRate, mib, since, table, withCpuShare } from './timing';

const SECTIONS = ['train', 'embed', 'evaluation', 'augment', 'memory', 'retrieval', 'map'] as const;
type Section = typeof SECTIONS[number];

interface Options {
  quick: boolean;
  only?: string;
  all: boolean;
  kernels: boolean;
  backend?: UserBackendName;
  retrievalImages?: number;
  memoryImages?: number;
  json?: string;
}

const RETRIEVAL_IMAGES_QUICK = 5_000;
/** Images of the memory section's whole-run peak run: big enough for a real loader cache and kNN pass, small enough for a minute (`--memory-images 10000` checks issue 5's target). */
const RUN_PEAK_IMAGES = 1_000;
const RUN_PEAK_IMAGES_QUICK = 200;

/** A wrong option: its message is enough, without a stack. */
class UsageError extends Error {}

function parseOptions(): Options {
  return new Command('bench')
    .description('Prints training, augmentation, embedding, memory and retrieval figures of the SimSiam engine.')
    .option('--quick', 'fewer repeats and smaller runs: a smoke check of the harness', false)
    .option('--only <sections>', `comma-separated subset of ${SECTIONS.join(', ')}`)
    .option('--all', 'include the plain-JS cpu backend (one small training step)', false)
    .option('--kernels', 'per-kernel top-10 table of one training step (tf.profile), and bench/convGrad', false)
    .addOption(new Option('--backend <name>', 'measure this backend only').choices([...BACKEND_CHOICES]))
    .option('--memory-images <n>', `images of the memory section's whole-run peak RSS (default ${RUN_PEAK_IMAGES}; --quick ${RUN_PEAK_IMAGES_QUICK}; 0 skips it)`, (v) => Number(v))
    .option('--retrieval-images <n>', 'indexed images for bench/retrieval (its default 50000; --quick 5000)', (v) => Number(v))
    .option('--json <file>', 'also write every figure to this JSON file')
    .parse(process.argv)
    .opts<Options>();
}

function chosenSections(only: string | undefined): Section[] {
  if (!only) return [...SECTIONS];
  const wanted = only.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = wanted.filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (unknown.length) throw new UsageError(`--only: unknown section ${unknown.join(', ')} (choose from ${SECTIONS.join(', ')})`);
  return SECTIONS.filter((s) => wanted.includes(s));
}

/**
 * The backends that load here, fastest first. cpu ships inside @tensorflow/tfjs, so it is listed
 * without being loaded (loading it prints tfjs's "install tfjs-node" banner).
 */
async function availableBackends(only: UserBackendName | undefined): Promise<{ usable: UserBackendName[]; lines: string[] }> {
  const usable: UserBackendName[] = [];
  const lines: string[] = [];
  for (const choice of only ? [only] : BACKEND_CHOICES) {
    if (choice === 'cpu') {
      usable.push(choice);
      lines.push('cpu: plain JavaScript (always there)');
      continue;
    }
    try {
      const info = await selectBackend(choice);
      usable.push(choice);
      lines.push(`${choice}: ${info.detail}`);
    } catch (error) {
      // The first clause says what is wrong; the rest is the install advice.
      lines.push(`${choice}: unavailable (${(error as Error).message.split(':')[0]})`);
    }
  }
  return { usable, lines };
}

/** Runs bench/retrieval as a child (it runs itself on load), indenting its lines under ours. */
function runChild(script: string, args: string[], print: (line: string) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    const forward = (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) if (line.trim()) print(`  ${line}`);
    };
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    child.on('error', reject);
    child.on('close', (code) => {
      if (pending.trim()) print(`  ${pending}`);
      resolve(code ?? 1);
    });
  });
}

function summaryTable(train: TrainFigures[], embed: EmbedFigures[]): string {
  const rows = [['backend', 'train 1 thread', 'train data-parallel', 'embed from files', 'embed cached']];
  const backends = [...new Set([...train.map((t) => t.backend), ...embed.map((e) => e.backend)])];
  for (const backend of backends) {
    const t = train.find((f) => f.backend === backend);
    const e = embed.find((f) => f.backend === backend);
    rows.push([
      t?.detail ?? e?.detail ?? backend,
      t ? `${formatRate(t.imagesPerSecond.median)}${t.batchSize !== 64 ? ` (batch ${t.batchSize})` : ''}` : '-',
      t?.dataParallel ? `${formatRate(t.dataParallel.imagesPerSecond.median)} (${t.dataParallel.shards} threads)` : '-',
      e ? formatRate(e.fromFilesPerSecond.median) : '-',
      e ? formatRate(e.cachedPerSecond.median) : '-',
    ]);
  }
  return table(rows);
}

async function main(): Promise<void> {
  const options = parseOptions();
  // tfjs-node built by npm test's preparation (scripts/prepare/tfjs-node.sh) is measured beside wasm.
  const native = path.join(__dirname, '..', '..', '.native');
  if (process.env[BACKENDS_DIR_ENV] === undefined && fs.existsSync(native)) process.env[BACKENDS_DIR_ENV] = native;
  const sections = chosenSections(options.only);
  const started = performance.now();
  const machine = describeMachine();
  console.log(`SimSiam Lab benchmarks${options.quick ? ' (--quick: fewer repeats, not for comparison)' : ''}`);
  for (const line of machineReport(machine)) console.log(line);
  const backends = await availableBackends(options.backend);
  console.log(`backends: ${backends.lines.join('; ')}`);
  if (backends.usable.length === 0) throw new Error('no backend to measure');

  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-bench-'));
  const context: BenchContext = {
    warmUp: options.quick ? 1 : 2,
    repeats: options.quick ? 2 : 5,
    quick: options.quick,
    // Naming cpu is asking for it.
    all: options.all || options.backend === 'cpu',
    kernels: options.kernels,
    workDir,
    backends: backends.usable,
    ...consoleOutput(),
  };
  const figures: Record<string, unknown> = { machine, options, sections: {} };
  const results = figures.sections as Record<string, unknown>;
  let train: TrainFigures[] = [];
  let embed: EmbedFigures[] = [];
  try {
    const records = sections.includes('train') || sections.includes('embed') ? await writeTrainingFolder(context) : [];
    const run = async (section: Section, body: () => Promise<unknown>) => {
      if (!sections.includes(section)) return;
      const { result, wallMs, cpuMs } = await withCpuShare(body);
      results[section] = result;
      // Far below the threads a section keeps busy means other processes took the CPU.
      const share = section === 'retrieval' ? 'in a child process' : `this process used ${Math.round((100 * cpuMs) / wallMs)} % of one core`;
      const rss = `RSS ${mib(process.memoryUsage().rss)}, peak so far ${mib(process.resourceUsage().maxRSS * 1024)}`;
      context.print(`  [${section}: ${formatMs(wallMs)}, ${share}; ${rss}]`);
    };
    await run('train', async () => (train = await benchTrain(context, records)));
    if (options.kernels && sections.includes('train')) {
      const convGrad = path.join(__dirname, 'convGrad.js');
      if (fs.existsSync(convGrad) && backends.usable.includes('wasm')) {
        context.heading('wasm convolution gradients (bench/convGrad, child process)');
        await runChild(convGrad, [String(context.repeats)], context.print);
      }
    }
    await run('embed', async () => (embed = await benchEmbed(context, records)));
    await run('evaluation', () => benchEvaluation(context, train, embed));
    await run('augment', () => benchAugment(context));
    const runPeakImages = options.memoryImages ?? (options.quick ? RUN_PEAK_IMAGES_QUICK : RUN_PEAK_IMAGES);
    await run('memory', () => benchMemory(context, backends.usable[0], runPeakImages));
    await run('retrieval', async () => {
      const images = options.retrievalImages ?? (options.quick ? RETRIEVAL_IMAGES_QUICK : undefined);
      const args = ['--backend', backends.usable[0], ...(images ? ['--images', String(images)] : [])];
      context.heading(`Retrieval (bench/retrieval, child process: ${args.join(' ')})`);
      const code = await runChild(path.join(__dirname, 'retrieval.js'), args, context.print);
      if (code !== 0) context.print(`  bench/retrieval exited with code ${code}`);
      return { exitCode: code };
    });
    // Last: it switches the tfjs backend.
    await run('map', () => benchMap(context, backends.usable[0]));

    if (train.length || embed.length) {
      context.heading('Summary, tiny preset at 32 px, images/s (median)');
      context.print(summaryTable(train, embed));
    }
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }

  global.gc?.();
  const memory = tf.memory();
  const peakRss = process.resourceUsage().maxRSS * 1024;
  const loadAtEnd = os.loadavg();
  context.heading('This process');
  context.print(`  peak RSS ${mib(peakRss)} (process.resourceUsage().maxRSS; child processes not included)`);
  context.print(`  tf.memory() at the end: backend ${tf.getBackend()}, ${memory.numTensors} tensors, ${mib(memory.numBytes)}`);
  context.print(`  total ${formatMs(since(started))}; load average at end ${loadAtEnd.map((l) => l.toFixed(2)).join(' / ')}`);
  // The load at the end includes this benchmark itself (about one per busy thread).
  const warning = loadWarning(machine.loadAtStart[0], machine.cores);
  if (warning) context.print(`  ${warning}`);
  figures.end = { peakRssBytes: peakRss, tfMemory: memory, loadAtEnd, totalMs: since(started) };
  if (options.json) {
    fs.writeFileSync(options.json, JSON.stringify(figures, null, 2) + '\n');
    context.print(`  figures written to ${options.json}`);
  }
}

main().then(() => process.exit(0), (error: Error) => {
  console.error(error instanceof UsageError ? `bench: ${error.message}` : error);
  process.exit(1);
});
