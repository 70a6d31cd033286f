// Sweeps: a few config fields, each with a list of values, trained as their cartesian product, one
// run after another. `--set baseLr=0.03,0.06 --set batchSize=64,128` makes four runs. Parsing,
// checking (with config.ts's own rules) and expansion live here, free of tfjs and vscode, so the
// CLI's `simsiam sweep` and the extension's "Train Folder with Variations" make the same runs.
import { AUGMENTATION_FIELDS, ConfigError, configProblems, PRESETS, resolveConfig, type PresetName, type TrainConfig } from './config';
import { baseRunName, namePart, uniqueName } from './run/runNames';

/** More runs than this is a mistake more often than a plan (and days of training): refused. */
export const MAX_SWEEP_RUNS = 64;

/** The fields a sweep may vary: those the CLI's flags or the extension's settings set. */
export const SWEEP_FIELDS = [
  'baseLr', 'batchSize', 'epochs', 'imageSize', 'seed', ...AUGMENTATION_FIELDS,
  'backend', 'replicas', 'microBatch', 'loaderThreads', 'maxCachedImages',
] as const satisfies readonly (keyof TrainConfig)[];
export type SweepField = (typeof SWEEP_FIELDS)[number];

/** The CLI's flag names, accepted for the fields they set: `--set lr=…` is `--set baseLr=…`. */
const FLAG_ALIASES: Record<string, SweepField> = {
  lr: 'baseLr', batch: 'batchSize', size: 'imageSize', threads: 'replicas', 'micro-batch': 'microBatch', 'loader-threads': 'loaderThreads',
  'crop-min': 'cropScaleMin', 'crop-max': 'cropScaleMax', jitter: 'colorJitter', 'jitter-p': 'colorJitterP',
  'grayscale-p': 'grayscaleP', 'blur-p': 'blurP', 'flip-p': 'flipP',
};

/** A sweep that cannot be run as written; `field` names the config field at fault, when one is. */
export class SweepError extends Error {
  constructor(message: string, readonly field?: string) {
    super(message);
  }
}

/** One varied field and its values, in the order given. */
export interface SweepParameter {
  field: SweepField;
  values: (number | string)[];
}

/** One run of a sweep: the value of each varied field, and how they read in its name. */
export interface SweepPoint {
  values: Partial<Record<SweepField, number | string>>;
  /** "lr0.03-b64": the varied values, in the order the parameters were given. */
  label: string;
}

/** The sweep field `name` stands for (a field or a CLI flag's name); a SweepError listing the choices otherwise. */
export function sweepField(name: string): SweepField {
  const trimmed = name.trim();
  if ((SWEEP_FIELDS as readonly string[]).includes(trimmed)) return trimmed as SweepField;
  const alias = FLAG_ALIASES[trimmed.replace(/^--/, '')];
  if (alias) return alias;
  const known = Object.hasOwn(PRESETS.tiny, trimmed);
  throw new SweepError(`${known ? `"${trimmed}" is not a field a sweep can vary` : `Unknown config field "${trimmed}"`}: ` +
    `use one of ${SWEEP_FIELDS.join(', ')}.`, trimmed);
}

/**
 * The values of a comma-separated list for `field`, each checked with the field's own rule
 * (config.ts): "0.03, 0.06" → [0.03, 0.06]. An empty entry, a repeated value or one the field
 * does not allow is a SweepError that names the field and the value.
 */
export function parseSweepValues(field: SweepField, text: string): (number | string)[] {
  const entries = text.split(',').map((entry) => entry.trim());
  if (entries.every((entry) => entry === '')) throw new SweepError(`${field}: list at least one value, e.g. ${field}=${example(field)}.`, field);
  const numeric = typeof PRESETS.tiny[field] === 'number';
  const values = entries.map((entry) => {
    if (entry === '') throw new SweepError(`${field}: an empty value in "${text}" (values are separated by commas).`, field);
    const value = numeric ? Number(entry) : entry;
    const problem = configProblems({ ...PRESETS.tiny, [field]: value }).find((p) => p.field === field);
    if (problem || (numeric && !Number.isFinite(value as number))) {
      throw new SweepError(`${field}: "${entry}" is not allowed: ${problem?.text ?? `${field} must be a number`}.`, field);
    }
    return value;
  });
  const repeated = values.find((value, i) => values.indexOf(value) !== i);
  if (repeated !== undefined) throw new SweepError(`${field}: the value ${repeated} is listed twice.`, field);
  return values;
}

function example(field: SweepField): string {
  const value = PRESETS.tiny[field];
  return typeof value === 'number' ? `${value},${value * 2}` : String(value);
}

/** `field=v1,v2,…` (as `--set` takes it) as a parameter. */
export function parseSetSpec(spec: string): SweepParameter {
  const equals = spec.indexOf('=');
  if (equals < 0) throw new SweepError(`"${spec}" is not field=value,value… (e.g. baseLr=0.03,0.06).`);
  const field = sweepField(spec.slice(0, equals));
  return { field, values: parseSweepValues(field, spec.slice(equals + 1)) };
}

/** Every `--set` of a sweep; a field set twice is refused (its values belong in one list). */
export function parseSetSpecs(specs: readonly string[]): SweepParameter[] {
  if (specs.length === 0) throw new SweepError('A sweep needs at least one --set field=value,value… (e.g. --set baseLr=0.03,0.06).');
  const parameters = specs.map(parseSetSpec);
  checkSweep(parameters);
  return parameters;
}

/** How many runs the parameters make. */
export function sweepSize(parameters: readonly SweepParameter[]): number {
  return parameters.reduce((product, p) => product * p.values.length, 1);
}

/** Refuses a field varied twice and a product over MAX_SWEEP_RUNS, saying what to change. */
export function checkSweep(parameters: readonly SweepParameter[]): void {
  const fields = parameters.map((p) => p.field);
  const twice = fields.find((field, i) => fields.indexOf(field) !== i);
  if (twice) throw new SweepError(`${twice} is varied twice: list all its values once, e.g. ${twice}=${example(twice)}.`, twice);
  const size = sweepSize(parameters);
  if (size > MAX_SWEEP_RUNS) {
    throw new SweepError(`This sweep makes ${size} runs (${parameters.map((p) => p.values.length).join(' × ')}); ` +
      `at most ${MAX_SWEEP_RUNS} run in one sweep: list fewer values, or split it into several sweeps.`);
  }
}

/** The cartesian product, the first parameter varying slowest: the order the runs train in. */
export function expandSweep(parameters: readonly SweepParameter[]): SweepPoint[] {
  checkSweep(parameters);
  let points: SweepPoint['values'][] = [{}];
  for (const { field, values } of parameters) points = points.flatMap((point) => values.map((value) => ({ ...point, [field]: value })));
  return points.map((values) => ({
    values,
    label: parameters.map(({ field }) => namePart(field, values[field])).join('-'),
  }));
}

/** A run of a sweep, ready to train. */
export interface SweepRun extends SweepPoint {
  config: TrainConfig;
}

/**
 * Each point's config: the preset, then `base` (flags or settings), then the point's values. Every
 * config is resolved before anything trains, so a combination the rules refuse (a crop range
 * whose minimum exceeds its maximum) stops the sweep before its first run, naming the combination.
 */
export function sweepRuns(preset: PresetName, base: Record<string, unknown>, parameters: readonly SweepParameter[],
  resolve: (preset: PresetName, overrides: Record<string, unknown>) => TrainConfig = resolveConfig): SweepRun[] {
  return expandSweep(parameters).map((point) => {
    try {
      return { ...point, config: resolve(preset, { ...base, ...point.values }) };
    } catch (error) {
      const combination = Object.entries(point.values).map(([field, value]) => `${field}=${value}`).join(', ');
      const field = error instanceof ConfigError ? error.problems[0]?.field : undefined;
      throw new SweepError(`The run with ${combination} cannot train: ${(error as Error).message}`, field);
    }
  });
}

/** A sweep run's name: "<folder>-<preset>-<its values>", with a counter if a run has it already (`taken`). */
export function sweepRunName(folder: string, preset: string, point: SweepPoint, taken: ReadonlySet<string>): string {
  return uniqueName(baseRunName(folder, preset, [point.label]), taken);
}
