// Default names for new runs: "<folder>-<preset>" plus what differs from the preset ("b128",
// "lr0.03", "64px"), and a counter when a run of the runs folder already has that name
// ("fashion-tiny-2"). The engine names a run this way when its request has no name, so the CLI and
// the extension agree; sweeps name each run after the values they vary. No tfjs, no vscode.
import * as fs from 'fs';
import * as path from 'path';
import { defaultBlurP, PRESETS, type TrainConfig } from '../config';
import { listRuns, MAX_RUN_NAME_LENGTH, RUN_FILE } from './runStore';

/**
 * How each field a person varies reads in a name, in the order the parts are written. Fields that
 * do not change what is learned (backend, threads, cache size, the monitor's settings) are left out.
 */
const NAME_PARTS: readonly [keyof TrainConfig, (value: string) => string][] = [
  ['backbone', (v) => v],
  ['widthMultiplier', (v) => `w${v}`],
  ['stem', (v) => `${v}stem`],
  ['imageSize', (v) => `${v}px`],
  ['batchSize', (v) => `b${v}`],
  ['baseLr', (v) => `lr${v}`],
  ['epochs', (v) => `${v}ep`],
  ['momentum', (v) => `m${v}`],
  ['weightDecay', (v) => `wd${v}`],
  ['fixedPredictorLr', (v) => (v === 'true' ? 'fixedpred' : 'decaypred')],
  ['projectorDim', (v) => `proj${v}`],
  ['projectorLayers', (v) => `${v}layerproj`],
  ['predictorHiddenDim', (v) => `pred${v}`],
  ['bnMomentum', (v) => `bn${v}`],
  ['cropScaleMin', (v) => `crop${v}`],
  ['cropScaleMax', (v) => `cropmax${v}`],
  ['colorJitter', (v) => `jitter${v}`],
  ['colorJitterP', (v) => `jitterp${v}`],
  ['grayscaleP', (v) => `gray${v}`],
  ['blurP', (v) => `blur${v}`],
  ['flipP', (v) => `flip${v}`],
  ['seed', (v) => `seed${v}`],
];

const NAMED_FIELDS = new Set<string>(NAME_PARTS.map(([field]) => field));

/** Fields left out of default names that a sweep may still vary (to compare speed, say). */
const SWEEP_ONLY_PARTS: readonly [keyof TrainConfig, (value: string) => string][] = [
  ['backend', (v) => v],
  ['replicas', (v) => `${v}threads`],
  ['microBatch', (v) => `micro${v}`],
  ['loaderThreads', (v) => `${v}loaders`],
  ['maxCachedImages', (v) => `cache${v}`],
];

/** How `field` = `value` reads in a run name ("b128", "lr0.03", "64px", "wasm"); any other field reads "field-value". */
export function namePart(field: string, value: unknown): string {
  const format = [...NAME_PARTS, ...SWEEP_ONLY_PARTS].find(([named]) => named === field)?.[1];
  return format ? format(String(value)) : `${field}-${String(value)}`;
}

/** Whether `field` is one that names are made of (what is learned depends on it). */
export function isNamedField(field: string): boolean {
  return NAMED_FIELDS.has(field);
}

/** The parts of `config` that differ from its preset, in NAME_PARTS order. Blur counts when it is not its image size's default. */
export function differenceParts(config: TrainConfig): string[] {
  const preset: TrainConfig = { ...PRESETS[config.preset], blurP: defaultBlurP(config.imageSize) };
  return NAME_PARTS.filter(([field]) => config[field] !== preset[field]).map(([field, format]) => format(String(config[field])));
}

/** The names of the runs in `runsDir`; a run.json that cannot be read names nothing. */
export function takenRunNames(runsDir: string): Set<string> {
  const names = new Set<string>();
  for (const runDir of listRuns(runsDir)) {
    try {
      const record = JSON.parse(fs.readFileSync(path.join(runDir, RUN_FILE), 'utf8')) as { name?: unknown };
      if (typeof record.name === 'string') names.add(record.name);
    } catch {
      // a damaged run is listed (and named) by its folder, which is unique already
    }
  }
  return names;
}

/** `base`, or `base-2`, `base-3`… : the first that is not taken. */
export function uniqueName(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

/** Characters a name may not hold (runNameProblem): controls, bidi marks, line separators. */
const UNNAMEABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
/** Room left for the preset, the parts and a counter within MAX_RUN_NAME_LENGTH. */
const MAX_FOLDER_PART = 48;

/**
 * "<folder>-<preset>" followed by `parts`. The folder is the dataset's own name, as people call
 * it, without the characters a run name may not hold and cut short, so the name passes
 * runNameProblem like one a person types.
 */
export function baseRunName(folder: string, preset: string, parts: readonly string[]): string {
  const folderName = [...path.basename(path.resolve(folder)).replace(UNNAMEABLE, '')].slice(0, MAX_FOLDER_PART).join('').trim() || 'run';
  return [folderName, preset, ...parts].join('-').slice(0, MAX_RUN_NAME_LENGTH - 4);
}

/**
 * The default name of a new run of `config` on `folder`, unique among the runs of `runsDir`:
 * "cifar10-tiny", "cifar10-tiny-b128-lr0.03", "cifar10-tiny-2". Two processes starting runs in
 * the same second may still pick the same name; their folders (the run's id) differ regardless.
 */
export function defaultRunName(folder: string, config: TrainConfig, runsDir: string): string {
  return uniqueName(baseRunName(folder, config.preset, differenceParts(config)), takenRunNames(runsDir));
}
