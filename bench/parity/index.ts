/**
 * `npm run parity`: the engine and a PyTorch script of the official recipe (bench/parity/reference.py)
 * trained on the same folder with the same preset, seed after seed, each side right after the
 * other, then per epoch mean ± sd over seeds of loss, z-std and kNN top-1 for both, and their
 * training images/s side by side (a ratio within one run; the machine is shared). See docs/PARITY.md.
 *
 *   npm run parity -- [folder] [--preset tiny] [--epochs 3] [--seeds 3 | --seeds 0,4]
 *                     [--backend wasm] [--threads 2] [--engine-args "--lr 0.03"]
 *                     [--reference-args "..."] [--python /path/to/python] [--setup] [--json out.json]
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { Command, Option } from 'commander';
import { BACKEND_CHOICES, PRESETS, resolveConfig, type PresetName, type TrainConfig } from '../../src/training/config';
import { addEngineLine, addReferenceLine, curveTable, emptyRun, parseSeeds, speedTable, type SideRun } from './summary';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const REFERENCE_SCRIPT = path.join(ROOT, 'bench', 'parity', 'reference.py');
const DEFAULT_FOLDER = path.join(ROOT, 'sample', 'fashion-mnist');
const VENV = path.join(os.homedir(), '.cache', 'simsiam-lab', 'parity-venv');
const VENV_PYTHON = path.join(VENV, 'bin', 'python');
/** torch's small pure-Python dependencies; torch itself goes in with --no-deps so pip never pulls CUDA wheels (GBs). */
const TORCH_DEPS = ['filelock', 'typing-extensions', 'sympy', 'networkx', 'jinja2', 'fsspec', 'mpmath', 'markupsafe', 'numpy', 'pillow'];

interface Options {
  preset: string; epochs: string; seeds: string; backend?: string; threads?: string; engineArgs: string;
  referenceArgs: string; python?: string; setup?: boolean; json?: string; only?: 'engine' | 'reference';
}

/** Fields that must agree between the two sides; the rest (seed, backend, threads, cache sizes) only steer the engine. */
const RECIPE_FIELDS: (keyof TrainConfig)[] = ['backbone', 'widthMultiplier', 'stem', 'imageSize', 'projectorDim', 'projectorLayers',
  'predictorHiddenDim', 'batchSize', 'epochs', 'baseLr', 'momentum', 'weightDecay', 'fixedPredictorLr', 'knnK', 'knnTemperature',
  'cropScaleMin', 'cropScaleMax', 'colorJitter', 'colorJitterP', 'grayscaleP', 'blurP', 'flipP'];

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

function hasTorch(python: string): string | undefined {
  const probe = spawnSync(python, ['-c', 'import torch, numpy, PIL; print(torch.__version__)'], { encoding: 'utf8' });
  return probe.status === 0 ? probe.stdout.trim() : undefined;
}

/** The first Python that imports torch, numpy and Pillow: --python, the harness's venv, then the system's. */
function findPython(explicit: string | undefined): { python: string; torch: string } | undefined {
  const candidates = explicit ? [explicit] : [process.env.SIMSIAM_PARITY_PYTHON, VENV_PYTHON, 'python3', '/usr/bin/python3'];
  for (const python of candidates) {
    if (!python) continue;
    const torch = hasTorch(python);
    if (torch) return { python, torch };
  }
  return undefined;
}

function run(command: string, args: string[]): void {
  log(`$ ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (exit ${result.status ?? result.signal})`);
}

/** --setup: a venv under ~/.cache/simsiam-lab with the CPU torch wheel pip finds, and its small dependencies. */
function installTorch(): void {
  if (!fs.existsSync(VENV_PYTHON)) run('python3', ['-m', 'venv', VENV]);
  run(VENV_PYTHON, ['-m', 'pip', 'install', '--retries', '1', '--no-deps', 'torch']);
  run(VENV_PYTHON, ['-m', 'pip', 'install', '--retries', '1', ...TORCH_DEPS]);
}

const MISSING_TORCH = `No Python with torch, numpy and Pillow was found (tried --python when given, else $SIMSIAM_PARITY_PYTHON, ${VENV_PYTHON}, python3, /usr/bin/python3).
Either:
  npm run parity -- --setup          # venv in ${VENV}: pip install --no-deps torch, then numpy, pillow and torch's small deps
  sudo apt-get install -y python3-torch python3-numpy python3-pil    # Debian/Ubuntu; then it uses /usr/bin/python3
  npm run parity -- --python /path/to/python                        # any Python that has them`;

/** Spawns a process and hands each stdout line to `onLine`; stderr goes to a log file (shown when it fails). */
function runLines(command: string, args: string[], onLine: (line: string) => void, errorLog: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const errors = fs.createWriteStream(errorLog);
    child.stderr.pipe(errors);
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      lines.forEach(onLine);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (pending) onLine(pending);
      if (code === 0) return resolve();
      const tail = fs.existsSync(errorLog) ? fs.readFileSync(errorLog, 'utf8').split('\n').slice(-15).join('\n') : '';
      reject(new Error(`${path.basename(args[0] ?? command)} exited with ${code ?? signal}; the end of ${errorLog}:\n${tail}`));
    });
  });
}

function splitArgs(text: string): string[] {
  return text.trim() ? text.trim().split(/\s+/) : [];
}

/** Folds a line into `run` and says on stderr when it completed an epoch, so a long run shows progress. */
function addAndReport(side: string, run: SideRun, line: string, add: (run: SideRun, line: string) => void): void {
  const before = run.meanLoss.length;
  add(run, line);
  const epoch = run.meanLoss.length;
  if (epoch > before) {
    log(`  ${side} seed ${run.seed}: epoch ${epoch} loss ${run.meanLoss[epoch - 1].toFixed(3)}, z-std ${run.zStd[epoch - 1].toFixed(4)}, `
      + `kNN ${(100 * run.knnTop1[epoch]).toFixed(1)} %, ${run.imagesPerSecond[epoch - 1].toFixed(1)} img/s`);
  }
}

async function trainEngine(folder: string, preset: string, epochs: number, seed: number, options: Options, work: string): Promise<{ run: SideRun; config: TrainConfig; backend: string }> {
  const run = emptyRun(seed);
  let runDir: string | undefined;
  const args = [path.join(ROOT, 'bin', 'simsiam.js'), 'train', folder, '--preset', preset, '--epochs', String(epochs), '--seed', String(seed),
    '--json', '--out', path.join(work, 'runs'), ...(options.backend ? ['--backend', options.backend] : []),
    ...(options.threads ? ['--threads', options.threads] : []), ...splitArgs(options.engineArgs)];
  await runLines(process.execPath, args, (line) => {
    addAndReport('engine', run, line, addEngineLine);
    const done = line.startsWith('{') && line.includes('"type":"done"') ? JSON.parse(line) as { runDir?: string; status?: string } : undefined;
    if (done) {
      runDir = done.runDir;
      if (done.status !== 'completed') log(`  engine seed ${seed}: run ended ${done.status}`);
    }
  }, path.join(work, `engine-${seed}.log`));
  if (!runDir) throw new Error(`engine seed ${seed}: no "done" message; see ${path.join(work, `engine-${seed}.log`)}`);
  const stored = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) as { config: TrainConfig; backend?: string };
  return { run, config: stored.config, backend: stored.backend ?? '?' };
}

async function trainReference(python: string, folder: string, config: TrainConfig, seed: number, options: Options, work: string): Promise<SideRun> {
  const run = emptyRun(seed);
  const configFile = path.join(work, `config-${seed}.json`);
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
  const args = [REFERENCE_SCRIPT, folder, '--config', configFile, '--seed', String(seed),
    ...(options.threads ? ['--threads', options.threads] : []), ...splitArgs(options.referenceArgs)];
  await runLines(python, args, (line) => {
    addAndReport('PyTorch', run, line, addReferenceLine);
  }, path.join(work, `reference-${seed}.log`));
  return run;
}

function recipeDifferences(expected: TrainConfig, actual: TrainConfig): string[] {
  return RECIPE_FIELDS.filter((key) => expected[key] !== actual[key]).map((key) => `${key} ${String(expected[key])} → ${String(actual[key])}`);
}

function loadText(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(' ');
}

async function main(): Promise<void> {
  const program = new Command('parity')
    .argument('[folder]', 'image folder with train/ and test/ class folders', DEFAULT_FOLDER)
    .option('--preset <name>', `engine preset (${Object.keys(PRESETS).join(', ')})`, 'tiny')
    .option('--epochs <n>', 'epochs per run', '3')
    .option('--seeds <n|list>', 'number of seeds (3 → 0,1,2) or a comma-separated list', '3')
    .addOption(new Option('--backend <name>', 'engine backend (default: the engine\'s auto)').choices([...BACKEND_CHOICES]))
    .option('--threads <n>', 'training threads for both sides (engine --threads, torch.set_num_threads); default each side\'s own')
    .option('--engine-args <args>', 'extra simsiam train flags, e.g. "--lr 0.03" (the reference gets the resulting config)', '')
    .option('--reference-args <args>', 'extra flags for bench/parity/reference.py', '')
    .addOption(new Option('--only <side>', 'run one side only (e.g. reference variants against an earlier engine table)').choices(['engine', 'reference']))
    .option('--python <path>', 'Python with torch, numpy and Pillow')
    .option('--setup', `install torch into ${VENV} when no Python has it`)
    .option('--json <file>', 'also write every run\'s figures as JSON')
    .parse(process.argv);
  const folder = path.resolve(program.args[0] ?? DEFAULT_FOLDER);
  const options = program.opts<Options>();
  const epochs = Number(options.epochs);
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`--epochs ${options.epochs}: give a whole number ≥ 1`);
  const seeds = parseSeeds(options.seeds);
  const expected = resolveConfig(options.preset as PresetName, { epochs });
  if (!fs.existsSync(path.join(ROOT, 'out', 'src', 'training', 'cli.js'))) throw new Error('out/ is not built: run `npm run compile` (npm run parity does it)');

  let found = options.only === 'engine' ? { python: '', torch: 'not run' } : findPython(options.python);
  if (!found && options.setup) {
    installTorch();
    found = findPython(VENV_PYTHON);
  }
  if (!found) {
    log(MISSING_TORCH);
    process.exitCode = 2;
    return;
  }

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-parity-'));
  const started = new Date();
  const loadBefore = loadText();
  log(`parity: ${folder}, preset ${options.preset}, ${epochs} epochs, seeds ${seeds.join(', ')}; logs and runs in ${work}`);
  const engine: SideRun[] = [];
  const reference: SideRun[] = [];
  let backend = '?';
  const warnings: string[] = [];
  for (const seed of seeds) {
    let config: TrainConfig = { ...expected, seed };
    if (options.only !== 'reference') {
      const side = await trainEngine(folder, options.preset, epochs, seed, options, work);
      engine.push(side.run);
      backend = side.backend;
      config = side.config;
      const differences = recipeDifferences(expected, side.config);
      if (differences.length) warnings.push(`seed ${seed}: the engine's config differs from preset ${options.preset} (${differences.join(', ')}); the reference trained with the engine's`);
    }
    if (options.only !== 'engine') reference.push(await trainReference(found.python, folder, config, seed, options, work));
  }

  const cpus = os.cpus();
  const header = [
    `SimSiam parity, ${started.toISOString().replace(/\.\d+Z$/, 'Z')} → ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
    `folder ${path.relative(ROOT, folder) || folder}, preset ${options.preset} (${expected.backbone} ×${expected.widthMultiplier}, ${expected.stem} stem, ${expected.imageSize} px, batch ${expected.batchSize}, base lr ${expected.baseLr}, wd ${expected.weightDecay}), ${epochs} epochs, seeds ${seeds.join(', ')}`,
    `engine: ${options.only === 'reference' ? 'not run, ' : ''}Node ${process.version}, backend ${backend}${options.threads ? `, --threads ${options.threads}` : ''}${options.engineArgs ? `, ${options.engineArgs}` : ''}`,
    `PyTorch: ${found.torch} (${found.python}), subnormal floats ${options.referenceArgs.includes('--keep-denormals') ? 'kept' : 'flushed to zero'}${options.referenceArgs ? `, ${options.referenceArgs}` : ''}`,
    `machine: ${cpus[0]?.model ?? '?'} × ${cpus.length}; load average ${loadBefore} at the start, ${loadText()} at the end`,
    'order: engine then PyTorch for each seed, seed after seed; images/s is the training loop of an epoch (views, forward, backward, step)',
  ];
  const output = [...header, '', curveTable(engine, reference, epochs), '', speedTable(engine, reference), ...warnings.map((w) => `warning: ${w}`)];
  process.stdout.write(`${output.join('\n')}\n`);
  if (options.json) {
    fs.writeFileSync(options.json, JSON.stringify({ header, folder, preset: options.preset, epochs, seeds, backend, torch: found.torch, engine, reference }, null, 2));
  }
}

main().catch((error: unknown) => {
  log(`parity: ${(error as Error).message}`);
  process.exitCode = 1;
});
