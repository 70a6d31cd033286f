// `simsiam`: the headless front end of the engine, for remote machines and CI. Same trainer, same
// messages as the extension; a progress bar on a TTY, or one JSON message per line with --json.
// commander parses arguments (kept, typed, generates --help); cli-progress draws the bar. Every
// name it prints goes through printable(): file names are data, not terminal commands.
import * as path from 'path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { BACKEND_CHOICES, ConfigError, PRESETS, PRESET_DESCRIPTIONS, resolveConfig, type PresetName, type TrainConfig } from './config';
import { StopSignal, startTraining, resumeTraining, StoppedBeforeStart, TrainingError } from './trainer';
import type { EngineMessage, EvaluationFigures, EvaluationRecord, MetricRecord, StepRecord } from './protocol';
import { embedRun, findSimilar, findDuplicates, exportEmbeddings } from './retrieval/service';
import { printable, printableJson } from './printable';
import { registerPreviewCommand } from './data/previewCli';
import { evaluateRun } from './evaluation/evaluateRun';
import { exportProjector } from './retrieval/projectorExport';
import { registerDataViewCommands } from './dataViews/cliCommands';
import { parseSetSpecs, SweepError, sweepRunName, sweepRuns, type SweepRun } from './sweep';
import { defaultRunsDir, renameRun, runNameProblem, setRunNote } from './run/runStore';
import { defaultRunName, takenRunNames } from './run/runNames';
import { collectEnvironment, formatEnvironment } from './doctor/environment';
import { configDiff, formatComparison, formatRunsTable, readComparedRuns, readRunsReport } from './run/runsReport';

const int = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number.`);
  return n;
};
const num = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number.`);
  return n;
};

/** The train command's flags for config fields: what sets each field, and what an error about it names. */
const CONFIG_FLAGS: { field: keyof TrainConfig; flag: string; description: string; parse: (name: string) => (value: string) => number }[] = [
  { field: 'epochs', flag: '--epochs <n>', description: 'epochs', parse: int },
  { field: 'batchSize', flag: '--batch <n>', description: 'batch size', parse: int },
  { field: 'imageSize', flag: '--size <px>', description: 'input image size', parse: int },
  { field: 'baseLr', flag: '--lr <x>', description: 'base learning rate (lr = base × batch / 256)', parse: num },
  { field: 'seed', flag: '--seed <n>', description: 'random seed', parse: int },
  { field: 'replicas', flag: '--threads <n>', description: 'data-parallel training threads on the wasm/cpu backends (0 = one per core)', parse: int },
  { field: 'microBatch', flag: '--micro-batch <n>', description: 'images per forward/backward pass on one training thread; larger batches are accumulated (0 = the whole share, on wasm what fits its heap)', parse: int },
  { field: 'loaderThreads', flag: '--loader-threads <n>', description: 'threads decoding and augmenting images (0 = 1 on wasm/cpu, one per core but one on tfjs-node)', parse: int },
  { field: 'cropScaleMin', flag: '--crop-min <x>', description: 'random resized crop: smallest area, as a fraction of the image (recipe 0.2)', parse: num },
  { field: 'cropScaleMax', flag: '--crop-max <x>', description: 'random resized crop: largest area (recipe 1)', parse: num },
  { field: 'colorJitter', flag: '--jitter <s>', description: 'colour-jitter strength s: brightness/contrast/saturation 0.4·s, hue 0.1·s (recipe 1)', parse: num },
  { field: 'colorJitterP', flag: '--jitter-p <p>', description: 'probability of colour jitter (recipe 0.8)', parse: num },
  { field: 'grayscaleP', flag: '--grayscale-p <p>', description: 'probability of grayscale (recipe 0.2)', parse: num },
  { field: 'blurP', flag: '--blur-p <p>', description: 'probability of Gaussian blur (recipe 0.5 above 64 px, else 0)', parse: num },
  { field: 'flipP', flag: '--flip-p <p>', description: 'probability of a horizontal flip (recipe 0.5)', parse: num },
];

/** commander's property name for a flag: --loader-threads <n> → loaderThreads. */
function optionKey(flag: string): string {
  return flag.split(' ')[0].slice(2).replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
}

/** The flag that sets a config field, e.g. --batch for batchSize. */
function flagOf(field: string): string | undefined {
  return field === 'backend' ? '--backend' : CONFIG_FLAGS.find((f) => f.field === field)?.flag.split(' ')[0];
}

/** An error's message, with the flags that fix it when it names config fields. */
function errorText(error: Error): string {
  const fields = error instanceof ConfigError ? error.problems.map((p) => p.field)
    : error instanceof TrainingError && error.field !== undefined ? [error.field] : [];
  const flags = [...new Set(fields.flatMap((field) => flagOf(field) ?? []))];
  return flags.length ? error.message.replace(/\.?$/, ` (${flags.join(', ')}).`) : error.message;
}

const percent = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)} %`);
/** A message that may quote file names, and may span lines. */
const printableMessage = (text: string) => printable(text, { lineBreaks: true });

/** An evaluation record for a person: each figure beside the untrained network's. */
export function evaluationLines(r: EvaluationRecord): string[] {
  const head = `evaluation at step ${r.step} (epoch ${r.epoch}, ${r.trainImages} train / ${r.testImages} test images, ${r.seconds.toFixed(1)} s)`;
  if (!r.figures) return [`${head}: no labels (no class folders), only unsupervised figures: see the loss and z-std`];
  const figures = r.figures;
  const row = (name: string, key: keyof EvaluationFigures) =>
    `  ${name.padEnd(16)} ${percent(figures[key]).padStart(7)}   untrained ${r.baseline ? percent(r.baseline[key]) : 'n/a'}`;
  return [head, row('kNN top-1 k=20', 'knnTop1At20'), row('kNN top-1 k=200', 'knnTop1At200'),
    row('linear probe', 'probeTop1'), row('precision@10', 'precisionAt10')];
}

/** Renders engine messages for a person: a bar per epoch on a TTY, plain lines elsewhere. */
export function humanReporter(stream: NodeJS.WriteStream = process.stderr): (m: EngineMessage) => void {
  const tty = Boolean(stream.isTTY);
  let bar: SingleBar | null = null;
  let epochs = 0;
  let batchesPerEpoch = 1;
  const log = (line: string) => {
    if (bar) bar.stop();
    bar = null;
    stream.write(line + '\n');
  };
  const showStep = (r: StepRecord) => {
    if (!tty) return;
    const batch = r.step - r.epoch * batchesPerEpoch;
    if (!bar) {
      bar = new SingleBar({
        format: `epoch ${r.epoch + 1}/${epochs} |{bar}| {value}/{total} loss {loss} · eta {eta_formatted}`,
        stream, hideCursor: true, clearOnComplete: true,
      }, Presets.shades_classic);
      bar.start(batchesPerEpoch, batch - 1, { loss: '…' });
    }
    bar.update(batch, { loss: r.loss.toFixed(4) });
  };
  const showRecord = (r: MetricRecord) => {
    switch (r.kind) {
      case 'step':
        showStep(r);
        break;
      case 'eval':
        log(`kNN top-1 at step ${r.step}${r.step === 0 ? ' (before training)' : ''}: ${percent(r.knnTop1)}`);
        break;
      case 'epoch':
        log(`epoch ${r.epoch}/${epochs}  loss ${r.meanLoss.toFixed(4)}  z-std ${r.zStd.toFixed(4)} (1/√d ${r.zStdReference.toFixed(4)})` +
          `  kNN ${percent(r.knnTop1)}  ${r.imagesPerSecond.toFixed(1)} img/s  ${r.seconds.toFixed(1)} s`);
        break;
      case 'evaluation':
        for (const line of evaluationLines(r)) log(line);
        break;
    }
  };
  return (m) => {
    switch (m.type) {
      case 'started':
        epochs = m.config.epochs;
        batchesPerEpoch = m.batchesPerEpoch;
        log(`run ${printable(m.runDir)}\nbackend ${m.backend} · ${m.dataset.trainImages} train / ${m.dataset.testImages} test images` +
          (m.dataset.classes.length ? ` · ${m.dataset.classes.length} classes` : '') +
          ` · ${m.batchesPerEpoch} steps per epoch` + (m.startStep ? ` · resuming at step ${m.startStep}` : ''));
        break;
      case 'metric':
        showRecord(m.record);
        break;
      case 'warning':
        log(`warning: ${printableMessage(m.message)}`);
        break;
      case 'checkpoint':
      case 'similarResult':
      case 'embedResult':
        break;
      case 'progress':
        if (tty) stream.write(`\r${m.task} ${m.done}/${m.total}${m.done >= m.total ? '\n' : ''}`);
        break;
      case 'done':
        log(`${m.status} at step ${m.step} (epoch ${m.epoch}): ${printable(m.runDir)}`);
        break;
      case 'cancelled':
        log(m.message);
        break;
      case 'error':
        log(`error: ${printableMessage(m.message)}`);
        break;
    }
  };
}

/**
 * stdout or stderr as the CLI writes them. The first write that fails closes the stream for the
 * rest of the command: EPIPE when its reader went away (`simsiam train --json | head -1`), which
 * is the reader's choice, or anything else (a reset socket), which fails the command.
 */
class Output {
  failure: NodeJS.ErrnoException | null = null;
  private readonly closeListeners: (() => void)[] = [];

  constructor(readonly name: 'stdout' | 'stderr', readonly stream: NodeJS.WriteStream) {
    // Node never destroys stdout or stderr, so later writes fail again: the first failure counts.
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (this.failure) return;
      this.failure = error;
      for (const listener of this.closeListeners) listener();
    });
  }

  write(text: string): void {
    if (!this.failure) this.stream.write(text);
  }

  line(text: string): void {
    this.write(text + '\n');
  }

  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  /** A failure other than a reader that left: the output is incomplete. */
  get lost(): boolean {
    return this.failure !== null && this.failure.code !== 'EPIPE';
  }

  /**
   * Resolves once everything written so far has left the process. A pipe takes 64 KiB at once
   * and Node holds the rest; exiting before then cuts the output short.
   */
  flushed(): Promise<void> {
    return new Promise((resolve) => {
      if (this.failure) resolve();
      else this.stream.write('', () => resolve());
    });
  }
}

interface Outputs {
  out: Output;
  err: Output;
}

function reporter(io: Outputs, json: boolean): (m: EngineMessage) => void {
  return json ? (m) => io.out.line(printableJson(m)) : humanReporter(io.err.stream);
}

/**
 * Ctrl-C (or SIGTERM) stops after the current step with a checkpoint; a second one exits at once.
 * A closed stdout or stderr stops the same way: nobody is reading, and the run stays resumable.
 */
function stopSignal(io: Outputs): StopSignal {
  const stop = new StopSignal();
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts > 1) process.exit(130);
    io.err.write('\nstopping after this step (Ctrl-C again to quit now)…\n');
    stop.request();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  for (const output of [io.out, io.err]) {
    output.onClose(() => {
      io.err.write(`\n${output.name} was closed: stopping after this step (resume continues the run)\n`);
      stop.request();
    });
  }
  return stop;
}

/**
 * Runs the CLI and exits with its status once all it printed has been written: 0, or 1 when the
 * command failed or its output could not be written (a reader that left is not a failure).
 */
export async function main(argv: string[]): Promise<never> {
  const io: Outputs = { out: new Output('stdout', process.stdout), err: new Output('stderr', process.stderr) };
  let code = 0;
  try {
    await buildProgram(io).parseAsync(argv);
  } catch (error) {
    // commander has printed its own errors (and --help) already.
    if (error instanceof StoppedBeforeStart) {
      io.err.line(error.message); // the user's own Ctrl-C (or a reader that left), not a failure
    } else {
      code = error instanceof CommanderError ? error.exitCode : 1;
      if (!(error instanceof CommanderError)) io.err.line(`error: ${printableMessage(errorText(error as Error))}`);
    }
  }
  const lost = [io.out, io.err].find((output) => output.lost);
  if (lost) {
    code ||= 1;
    io.err.line(`error: could not write to ${lost.name}: ${lost.failure?.message}`);
  }
  await Promise.all([io.out.flushed(), io.err.flushed()]);
  // Nothing is left to write; an engine thread or backend may still hold the event loop.
  process.exit(code);
}

function buildProgram(io: Outputs): Command {
  // Set before the subcommands are added: they inherit it.
  const program = new Command('simsiam')
    .description('Self-supervised SimSiam training and image retrieval on a folder of images.')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.out.write(printableMessage(text)),
      writeErr: (text) => io.err.write(printableMessage(text)),
    });

  const train = program.command('train')
    .description('train SimSiam on a folder of images (class subfolders and train/ test/ splits are used for monitoring only)')
    .argument('<folder>', 'folder of images')
    .addOption(new Option('--preset <name>', Object.entries(PRESET_DESCRIPTIONS).map(([k, v]) => `${k}: ${v}`).join('; '))
      .choices(Object.keys(PRESETS)).default('tiny'))
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(['auto', ...BACKEND_CHOICES]).default('auto'))
    .addOption(new Option('--backbone <name>', 'the preset\'s ResNet replaced (stem, heads and the rest stay the preset\'s)')
      .choices(['resnet18', 'resnet34', 'resnet50']));
  for (const { flag, description, parse } of CONFIG_FLAGS) train.option(flag, description, parse(flag.split(' ')[0]));
  train
    .option('--out <dir>', 'folder for run folders (default <folder>/.simsiam/runs)')
    .option('--name <name>', 'run name (default <folder>-<preset> and what differs from the preset, e.g. cifar10-tiny-b128; unique in the runs folder)')
    .option('--json', 'print one protocol message per line on stdout')
    .action(async (folder: string, o) => {
      const overrides = Object.fromEntries(CONFIG_FLAGS.map(({ field, flag }) => [field, o[optionKey(flag)]]));
      const config = resolveConfig(o.preset as PresetName, { ...overrides, backend: o.backend, backbone: o.backbone });
      const runsDir = path.resolve(o.out ?? defaultRunsDir(path.resolve(folder)));
      const problem = o.name === undefined ? undefined : runNameProblem(o.name);
      if (problem) throw new Error(`--name: ${problem}`);
      const name = o.name?.trim() ?? defaultRunName(folder, config, runsDir);
      await startTraining({ folder, config, runsDir, name }, reporter(io, o.json), stopSignal(io));
    });

  const sweep = program.command('sweep')
    .description('train every combination of the values given with --set, one run after another (Ctrl-C stops the current run and skips the rest)')
    .argument('<folder>', 'folder of images')
    .option('--set <field=values>', `a config field and its comma-separated values, e.g. baseLr=0.03,0.06 (repeat for more fields; at most 64 runs)`,
      (spec: string, specs: string[] = []) => [...specs, spec])
    .addOption(new Option('--preset <name>', 'preset every run starts from').choices(Object.keys(PRESETS)).default('tiny'))
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(['auto', ...BACKEND_CHOICES]).default('auto'));
  for (const { flag, description, parse } of CONFIG_FLAGS) sweep.option(flag, `${description} (every run)`, parse(flag.split(' ')[0]));
  sweep
    .option('--out <dir>', 'folder for run folders (default <folder>/.simsiam/runs)')
    .option('--json', 'print one protocol message per line on stdout, then the summary as one {"type":"sweep"} line')
    .action(async (folder: string, o) => {
      const overrides: Record<string, unknown> = Object.fromEntries(CONFIG_FLAGS.map(({ field, flag }) => [field, o[optionKey(flag)]]));
      const parameters = parseSetSpecs(o.set ?? []);
      // The backend flag's default ('auto') gives way to a sweep over backends; a backend chosen by flag does not.
      if (o.backend !== 'auto' || !parameters.some((p) => p.field === 'backend')) overrides.backend = o.backend;
      for (const { field } of parameters) {
        if (overrides[field] !== undefined) {
          throw new SweepError(`${field} is both set for every run (${flagOf(field)}) and varied (--set): keep one.`, field);
        }
      }
      const runs = sweepRuns(o.preset as PresetName, overrides, parameters);
      const results = await trainSweep(folder, o.preset, runs, o.out, io, o.json);
      printSweepSummary(io, results, o.json);
      const failed = results.filter((r) => r.status === 'failed');
      if (failed.length) throw new Error(`${failed.length} of ${results.length} runs failed: ${failed.map((r) => r.name).join(', ')}.`);
    });

  program.command('resume')
    .description('continue a stopped or interrupted run from its last checkpoint')
    .argument('<run>', 'run folder')
    .option('--epochs <n>', 'raise the total number of epochs', int('--epochs'))
    .option('--json', 'print one protocol message per line on stdout')
    .action(async (run: string, o) => {
      await resumeTraining({ runDir: run, epochs: o.epochs }, reporter(io, o.json), stopSignal(io));
    });

  program.command('rename')
    .description("give a run a new name (stored in its run.json; the folder keeps its name)")
    .argument('<run>', 'run folder')
    .argument('<name>', 'new name')
    .action((run: string, name: string) => {
      const record = renameRun(path.resolve(run), name);
      io.out.line(`renamed ${printable(path.resolve(run))} to ${printable(record.name)}`);
    });

  program.command('note')
    .description("set a run's free-text note (stored in its run.json); an empty note removes it")
    .argument('<run>', 'run folder')
    .argument('<text>', 'the note')
    .action((run: string, text: string) => {
      const record = setRunNote(path.resolve(run), text);
      io.out.line(record.note === undefined ? `removed the note of ${printable(record.name)}` : `noted on ${printable(record.name)}`);
    });

  program.command('eval')
    .description("evaluate a run's checkpoint: kNN top-1 (k=20, 200), linear probe and precision@10 on the test split, beside the untrained network's; recorded in its metrics.jsonl")
    .argument('<run>', 'run folder')
    .option('--step <n>', 'the checkpoint at this step (default: the latest)', int('--step'))
    .option('--json', 'print the evaluation record as JSON')
    .action(async (run: string, o) => {
      const report = humanReporter(io.err.stream);
      // The record is printed once below; warnings reach stderr with --json too.
      const record = await evaluateRun(path.resolve(run), o.step, (m) => {
        if (m.type === 'warning' || (!o.json && m.type !== 'metric')) report(m);
      });
      if (o.json) io.out.line(printableJson(record));
      else for (const line of evaluationLines(record)) io.out.line(line);
    });

  program.command('embed')
    .description("embed every image of the run's dataset with its latest checkpoint (incremental)")
    .argument('<run>', 'run folder')
    .option('--json', 'print one protocol message per line on stdout')
    .action(async (run: string, o) => {
      const result = await embedRun(path.resolve(run), reporter(io, o.json));
      if (!o.json) io.out.line(`${result.images} images indexed (${result.reembedded} embedded now)`);
    });

  program.command('similar')
    .description('nearest neighbours of an image, in the dataset or outside it')
    .argument('<run>', 'run folder')
    .argument('<image>', 'query image')
    .option('-k <n>', 'neighbours', int('-k'), 10)
    .option('--json', 'print the result as JSON')
    .action(async (run: string, image: string, o) => {
      const progress = o.json ? () => undefined : humanReporter(io.err.stream);
      const result = await findSimilar(path.resolve(run), path.resolve(image), o.k, progress);
      if (o.json) {
        io.out.line(printableJson(result));
        return;
      }
      io.out.line(`neighbours of ${printable(result.query)}:`);
      result.neighbours.forEach((n, i) =>
        io.out.line(`${String(i + 1).padStart(3)}. ${n.score.toFixed(4)}  ${printable(n.label ?? '-')}  ${printable(n.path)}`));
    });

  program.command('duplicates')
    .description('groups of near-duplicate images, largest first')
    .argument('<run>', 'run folder')
    .option('--threshold <x>', 'cosine similarity above which images are duplicates', num('--threshold'), 0.95)
    .option('--json', 'print the groups as JSON')
    .action(async (run: string, o) => {
      const progress = o.json ? () => undefined : humanReporter(io.err.stream);
      const groups = await findDuplicates(path.resolve(run), o.threshold, progress);
      if (o.json) {
        io.out.line(printableJson(groups));
        return;
      }
      if (!groups.length) io.out.line(`no near-duplicates above ${o.threshold}`);
      groups.forEach((g, i) => io.out.line(`group ${i + 1} (${g.paths.length} images, min similarity ${g.minScore.toFixed(4)}):\n  ` +
        g.paths.map((p) => printable(p)).join('\n  ')));
    });

  program.command('export')
    .description('write the embeddings for use in Python or TensorBoard: .npy (+ paths file), CSV, or a projector folder')
    .argument('<run>', 'run folder')
    .addOption(new Option('--format <format>', 'output format (projector: a folder for tensorboard --logdir)').choices(['npy', 'csv', 'projector']).default('npy'))
    .option('--out <path>', 'output file, or folder for projector (default inside the run folder)')
    .action(async (run: string, o) => {
      const reporter = humanReporter(io.err.stream);
      const files = o.format === 'projector'
        ? await exportProjector(path.resolve(run), o.out, reporter)
        : await exportEmbeddings(path.resolve(run), o.format, o.out, reporter);
      io.out.line(`wrote ${files.map((f) => printable(f)).join(', ')}`);
    });

  registerDataViewCommands(program, io);

  program.command('runs')
    .description('the runs of a dataset folder, one row each: settings, final loss, kNN and linear-probe top-1 beside the random-init baseline')
    .argument('<folder>', 'dataset folder (its runs are in <folder>/.simsiam/runs)')
    .option('--runs <dirs...>', 'more folders of run folders to look in (runs of other datasets there are left out)')
    .option('--json', 'print the rows as JSON')
    .action((folder: string, o) => {
      const report = readRunsReport(path.resolve(folder), (o.runs ?? []).map((dir: string) => path.resolve(dir)));
      if (o.json) io.out.line(printableJson(report.rows));
      else for (const line of formatRunsTable(report, printable)) io.out.line(line);
    });

  program.command('compare')
    .description('the config fields that differ between runs, side by side, and their final figures')
    .argument('<runs...>', 'two or more run folders')
    .option('--json', 'print the diff and the rows as JSON')
    .action((runs: string[], o) => {
      if (runs.length < 2) throw new Error('compare needs two or more run folders: simsiam compare <run> <run>…');
      const compared = readComparedRuns(runs);
      if (o.json) io.out.line(printableJson({ diff: configDiff(compared.map((run) => run.config)), rows: compared.map((run) => run.row) }));
      else for (const line of formatComparison(compared, printable)) io.out.line(line);
    });

  registerPreviewCommand(program, io);

  program.command('doctor')
    .description('what this machine offers: each backend (loaded, or why not, and a 3-step speed probe), WebGPU adapters, versions, cores, memory')
    .addOption(new Option('--backend <names...>', 'check only these backends').choices([...BACKEND_CHOICES]))
    .option('--json', 'print the report as JSON')
    .action(async (o) => {
      const report = await collectEnvironment((b) => {
        if (!o.json) io.err.line(`checked ${b.name}: ${b.loaded ? 'loads' : 'not available'}`);
      }, o.backend ?? BACKEND_CHOICES);
      if (o.json) io.out.line(printableJson(report));
      else for (const line of formatEnvironment(report)) io.out.line(printableMessage(line));
    });

  return program;
}


/** How one run of a sweep ended, for the summary. */
export interface SweepResult {
  name: string;
  /** "skipped": not started, because the sweep was stopped first. */
  status: 'completed' | 'stopped' | 'failed' | 'skipped';
  runDir: string | null;
  finalLoss: number | null;
  knnTop1: number | null;
  message?: string;
}

/**
 * Trains the runs one after another through startTraining, as `train` would each. A run that
 * fails is reported and the next one starts; a stop (Ctrl-C, a closed output) ends the current
 * run with its checkpoint and skips the rest.
 */
async function trainSweep(folder: string, preset: string, runs: SweepRun[], out: string | undefined, io: Outputs,
  json: boolean): Promise<SweepResult[]> {
  const stop = stopSignal(io);
  const runsDir = path.resolve(out ?? defaultRunsDir(path.resolve(folder)));
  const report = reporter(io, json);
  const results: SweepResult[] = [];
  for (const [index, run] of runs.entries()) {
    // Named just before it starts: the runs before it (and any trained meanwhile) are taken by then.
    const name = sweepRunName(folder, preset, run, takenRunNames(runsDir));
    if (stop.requested) {
      results.push({ name, status: 'skipped', runDir: null, finalLoss: null, knnTop1: null });
      continue;
    }
    if (!json) io.err.line(`\nsweep run ${index + 1} of ${runs.length}: ${printable(name)}`);
    let finalLoss: number | null = null;
    let knnTop1: number | null = null;
    let runDir: string | null = null;
    const emit = (m: EngineMessage) => {
      if (m.type === 'started') runDir = m.runDir;
      if (m.type === 'metric' && m.record.kind === 'epoch') {
        finalLoss = m.record.meanLoss;
        knnTop1 = m.record.knnTop1 ?? knnTop1;
      }
      if (m.type === 'metric' && m.record.kind === 'eval') knnTop1 = m.record.knnTop1;
      report(m);
    };
    try {
      const done = await startTraining({ folder, config: run.config, runsDir, name }, emit, stop);
      results.push({ name, status: done.status, runDir: done.runDir, finalLoss, knnTop1 });
    } catch (error) {
      if (error instanceof StoppedBeforeStart) {
        results.push({ name, status: 'skipped', runDir: null, finalLoss: null, knnTop1: null, message: error.message });
        continue;
      }
      const text = errorText(error as Error);
      io.err.line(`error: ${printableMessage(text)}`);
      results.push({ name, status: 'failed', runDir, finalLoss, knnTop1, message: text });
    }
  }
  return results;
}

/** The sweep's table on stdout (or one JSON line): name, status, final loss, kNN top-1. */
function printSweepSummary(io: Outputs, results: SweepResult[], json: boolean): void {
  if (json) {
    io.out.line(printableJson({ type: 'sweep', runs: results }));
    return;
  }
  const rows = [['name', 'status', 'final loss', 'kNN top-1'], ...results.map((r) => [
    printable(r.name), r.status, r.finalLoss === null ? '-' : r.finalLoss.toFixed(4), r.knnTop1 === null ? '-' : percent(r.knnTop1),
  ])];
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  io.out.line('');
  for (const row of rows) io.out.line(row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd());
}
