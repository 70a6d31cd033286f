// The runs of a dataset folder side by side: one row per run (its settings and final figures), the
// config fields that differ between runs, and the text the terminal prints. One implementation for
// the extension's runs table (src/host/runsTable/) and for `simsiam runs` / `simsiam compare`.
// Reads run folders only (./runStore.ts); free of tfjs and of `vscode`.
import * as fs from 'fs';
import * as path from 'path';
import { defaultRunsDir, listRuns, readMetrics, readRun, readStatus, RUN_FILE, type RunRecord } from './runStore';
import type { EvaluationFigures, MetricRecord, RunStatus } from '../metrics';
import type { TrainConfig } from '../config';

/** The figures of an evaluation the table shows, for the trained network or its random-init baseline. */
export interface ShownFigures { knnTop1At20: number; knnTop1At200: number; probeTop1: number }

/** One run as the table and the terminal show it; a field the run does not have (yet) is null. */
export interface RunRow {
  runDir: string;
  /** The folder's name, when run.json cannot say. */
  id: string;
  name: string;
  note: string | null;
  /** 'damaged': run.json (or status.json) cannot be read: `problem` says why. */
  status: RunStatus | 'damaged';
  /** What is wrong with the run's files, naming the file; null when nothing is. */
  problem: string | null;
  /** ISO time the run was created. */
  started: string | null;
  /** Seconds spent training: the sum of its epochs' times. */
  durationSeconds: number | null;
  preset: string | null;
  backbone: string | null;
  imageSize: number | null;
  batchSize: number | null;
  baseLr: number | null;
  epochs: number | null;
  /** Colour-jitter strength s: the augmentation's strength. */
  colorJitter: number | null;
  backend: string | null;
  /** Of the last epoch record. */
  imagesPerSecond: number | null;
  /** The last epoch's mean loss. */
  finalLoss: number | null;
  /**
   * The last evaluation: null when the run has none; `figures` null when the dataset has no
   * class folders (nothing to score against: "no labels").
   */
  evaluation: { step: number; figures: ShownFigures | null; baseline: ShownFigures | null } | null;
}

export interface RunsReport {
  datasetRoot: string;
  /** The runs folders read (the dataset's own, then the extra ones that exist). */
  runsFolders: string[];
  /** Newest first; damaged runs first of all. */
  rows: RunRow[];
}

const shown = (figures: EvaluationFigures | null): ShownFigures | null =>
  figures && { knnTop1At20: figures.knnTop1At20, knnTop1At200: figures.knnTop1At200, probeTop1: figures.probeTop1 };

/** Resolves links, so that a dataset reached through two paths is one dataset. */
function canonical(folder: string): string {
  try {
    return fs.realpathSync(folder);
  } catch {
    return path.resolve(folder);
  }
}

/** run.json's optional note (checked by readRun), when it says something. */
function noteOf(record: RunRecord): string | null {
  const note = (record as { note?: string }).note;
  return note?.trim() ? note : null;
}

function damagedRow(runDir: string, problem: string): RunRow {
  return {
    runDir, id: path.basename(runDir), name: path.basename(runDir), note: null, status: 'damaged', problem, started: null,
    durationSeconds: null, preset: null, backbone: null, imageSize: null, batchSize: null, baseLr: null, epochs: null,
    colorJitter: null, backend: null, imagesPerSecond: null, finalLoss: null, evaluation: null,
  };
}

/** The row of the run in `runDir`; never throws: a run that cannot be read is a row saying why. */
export function readRunRow(runDir: string, metrics?: MetricRecord[]): RunRow {
  let record: RunRecord;
  let status: RunStatus;
  let problem: string | null = null;
  try {
    record = readRun(runDir);
    const stored = readStatus(runDir);
    status = stored.status;
    // An unreadable status.json reads as interrupted, with what is wrong in its message.
    if (status === 'interrupted' && stored.message) problem = stored.message.trim();
  } catch (error) {
    return damagedRow(runDir, (error as Error).message);
  }
  let records = metrics;
  if (!records) {
    try {
      records = readMetrics(runDir);
    } catch (error) {
      records = [];
      problem = (error as Error).message;
    }
  }
  return rowOf(runDir, record, status, problem, records);
}

function rowOf(runDir: string, record: RunRecord, status: RunStatus, problem: string | null, records: readonly MetricRecord[]): RunRow {
  const config: Partial<TrainConfig> = record.config;
  let durationSeconds: number | null = null;
  let lastEpoch = null;
  let lastEvaluation = null;
  for (const r of records) {
    if (r.kind === 'epoch') {
      durationSeconds = (durationSeconds ?? 0) + r.seconds;
      lastEpoch = r;
    } else if (r.kind === 'evaluation') {
      lastEvaluation = r;
    }
  }
  return {
    runDir, id: record.id, name: record.name, note: noteOf(record), status, problem, started: record.createdAt, durationSeconds,
    preset: config.preset ?? null, backbone: config.backbone ?? null, imageSize: config.imageSize ?? null,
    batchSize: config.batchSize ?? null, baseLr: config.baseLr ?? null, epochs: config.epochs ?? null,
    colorJitter: config.colorJitter ?? null, backend: record.backend,
    imagesPerSecond: lastEpoch?.imagesPerSecond ?? null, finalLoss: lastEpoch?.meanLoss ?? null,
    evaluation: lastEvaluation && { step: lastEvaluation.step, figures: shown(lastEvaluation.figures), baseline: shown(lastEvaluation.baseline) },
  };
}

/**
 * Every run of the dataset in `datasetRoot` (`readRow` reads each: a cache may stand in): those in its own runs folder (<root>/.simsiam/runs),
 * damaged ones included, and those in `extraRunsFolders` that trained on this dataset. A damaged
 * run in an extra folder cannot say which dataset it belongs to, so only the dataset's own folder
 * lists damaged runs.
 */
export function readRunsReport(datasetRoot: string, extraRunsFolders: readonly string[] = [],
  readRow: (runDir: string) => RunRow = readRunRow): RunsReport {
  const root = canonical(datasetRoot);
  const own = canonical(defaultRunsDir(root));
  const extra = [...new Set(extraRunsFolders.map(canonical))].filter((folder) => folder !== own && fs.existsSync(folder));
  const rows: RunRow[] = listRuns(own).map((runDir) => readRow(runDir));
  for (const folder of extra) {
    for (const runDir of listRuns(folder)) {
      if (datasetOf(runDir) !== root) continue;
      const row = readRow(runDir);
      if (row.status !== 'damaged') rows.push(row);
    }
  }
  return { datasetRoot: root, runsFolders: [own, ...extra].filter((folder) => fs.existsSync(folder)), rows: sortRows(rows) };
}

function datasetOf(runDir: string): string | null {
  try {
    return canonical(readRun(runDir).dataset.root);
  } catch {
    return null;
  }
}

/** Damaged runs first (by folder), then newest first. */
function sortRows(rows: RunRow[]): RunRow[] {
  const damaged = rows.filter((r) => r.status === 'damaged').sort((a, b) => a.runDir.localeCompare(b.runDir));
  const runs = rows.filter((r) => r.status !== 'damaged').sort((a, b) => (b.started ?? '').localeCompare(a.started ?? ''));
  return [...damaged, ...runs];
}

// ---- config diff -------------------------------------------------------------------------------

export interface ConfigDifference {
  field: string;
  /** One per run, in the order given; undefined where a run's config lacks the field (an older run). */
  values: unknown[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The config fields whose values are not the same in every run, in the order the configs list them. */
export function configDiff(configs: readonly Readonly<Record<string, unknown>>[]): ConfigDifference[] {
  const fields = [...new Set(configs.flatMap((config) => Object.keys(config)))];
  return fields
    .map((field) => ({ field, values: configs.map((config) => config[field]) }))
    .filter(({ values }) => values.some((value) => !same(value, values[0])));
}

// ---- terminal text -----------------------------------------------------------------------------

/** What a missing figure reads as, in the terminal and in the table. */
export const BLANK = '—';
export const NO_LABELS = 'no labels';

const percent = (x: number) => `${(x * 100).toFixed(1)}%`;

/** A figure of the last evaluation: "—" before any, "no labels" without class folders. */
export function figureText(row: RunRow, which: 'figures' | 'baseline', field: keyof ShownFigures): string {
  if (!row.evaluation) return BLANK;
  const figures = row.evaluation[which];
  return figures ? percent(figures[field]) : NO_LABELS;
}

export function durationText(seconds: number | null): string {
  if (seconds === null) return BLANK;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const numberText = (x: number | null, digits?: number) => (x === null ? BLANK : digits === undefined ? String(x) : x.toFixed(digits));

/** A column of the terminal table (and of the runs table's webview, which has its own renderer). */
interface Column { title: string; cell: (row: RunRow) => string; right?: boolean }

export const REPORT_COLUMNS: Column[] = [
  { title: 'name', cell: (r) => r.name },
  { title: 'status', cell: (r) => r.status },
  { title: 'started', cell: (r) => (r.started ? r.started.replace('T', ' ').slice(0, 16) : BLANK) },
  { title: 'duration', cell: (r) => durationText(r.durationSeconds), right: true },
  { title: 'preset', cell: (r) => r.preset ?? BLANK },
  { title: 'backbone', cell: (r) => r.backbone ?? BLANK },
  { title: 'size', cell: (r) => numberText(r.imageSize), right: true },
  { title: 'batch', cell: (r) => numberText(r.batchSize), right: true },
  { title: 'base lr', cell: (r) => numberText(r.baseLr), right: true },
  { title: 'epochs', cell: (r) => numberText(r.epochs), right: true },
  { title: 'jitter', cell: (r) => numberText(r.colorJitter), right: true },
  { title: 'backend', cell: (r) => r.backend ?? BLANK },
  { title: 'img/s', cell: (r) => numberText(r.imagesPerSecond, 1), right: true },
  { title: 'loss', cell: (r) => numberText(r.finalLoss, 4), right: true },
  { title: 'kNN@20', cell: (r) => figureText(r, 'figures', 'knnTop1At20'), right: true },
  { title: '(init)', cell: (r) => figureText(r, 'baseline', 'knnTop1At20'), right: true },
  { title: 'kNN@200', cell: (r) => figureText(r, 'figures', 'knnTop1At200'), right: true },
  { title: '(init)', cell: (r) => figureText(r, 'baseline', 'knnTop1At200'), right: true },
  { title: 'probe', cell: (r) => figureText(r, 'figures', 'probeTop1'), right: true },
  { title: '(init)', cell: (r) => figureText(r, 'baseline', 'probeTop1'), right: true },
];

/** Lines of aligned columns; `clean` makes each cell safe to print (file names are data). */
function alignedLines(header: string[], cells: string[][], right: boolean[]): string[] {
  const widths = header.map((title, i) => Math.max([...title].length, ...cells.map((row) => [...row[i]].length)));
  const line = (row: string[]) => row.map((cell, i) => {
    const pad = ' '.repeat(widths[i] - [...cell].length);
    return right[i] ? pad + cell : cell + pad;
  }).join('  ').trimEnd();
  return [line(header), ...cells.map(line)];
}

/**
 * The runs table for the terminal: aligned columns, then a line per damaged run or note.
 * `clean` is applied to every text taken from the run's files (printable(), in the CLI).
 */
export function formatRunsTable(report: RunsReport, clean: (text: string) => string = (t) => t): string[] {
  if (report.rows.length === 0) {
    return [`no runs in ${clean(report.runsFolders.join(', ') || defaultRunsDir(report.datasetRoot))}`];
  }
  const cells = report.rows.map((row) => REPORT_COLUMNS.map((column) => clean(column.cell(row))));
  const lines = alignedLines(REPORT_COLUMNS.map((c) => c.title), cells, REPORT_COLUMNS.map((c) => c.right ?? false));
  const notes = report.rows.flatMap((row) => [
    ...(row.problem ? [`${clean(row.name)}: ${clean(row.problem)}`] : []),
    ...(row.note ? [`${clean(row.name)}: note: ${clean(row.note)}`] : []),
  ]);
  return [...lines, ...(notes.length ? ['', ...notes] : [])];
}

export interface ComparedRun { row: RunRow; config: Record<string, unknown> }

/** The runs `runDirs` name, each readable or an error that names the folder and the problem. */
export function readComparedRuns(runDirs: readonly string[]): ComparedRun[] {
  return runDirs.map((runDir) => {
    const dir = path.resolve(runDir);
    if (!fs.existsSync(path.join(dir, RUN_FILE))) throw new Error(`${dir} is not a run folder (it has no ${RUN_FILE}).`);
    const row = readRunRow(dir);
    if (row.status === 'damaged') throw new Error(`${dir} cannot be compared: ${row.problem}`);
    return { row, config: { ...readRun(dir).config } };
  });
}

const valueText = (value: unknown) => (value === undefined ? BLANK : typeof value === 'string' ? value : JSON.stringify(value));

/** `simsiam compare`: the config fields that differ, side by side, then each run's final figures. */
export function formatComparison(runs: readonly ComparedRun[], clean: (text: string) => string = (t) => t): string[] {
  const names = runs.map((run) => clean(run.row.name));
  const diff = configDiff(runs.map((run) => run.config));
  const diffLines = diff.length
    ? alignedLines(['config', ...names], diff.map((d) => [d.field, ...d.values.map((value) => clean(valueText(value)))]),
      [false, ...runs.map(() => true)])
    : ['config: the same in every run'];
  const metrics: [string, (row: RunRow) => string][] = [
    ['status', (r) => r.status],
    ['duration', (r) => durationText(r.durationSeconds)],
    ['images/s', (r) => numberText(r.imagesPerSecond, 1)],
    ['final loss', (r) => numberText(r.finalLoss, 4)],
    ['kNN top-1 k=20', (r) => figureText(r, 'figures', 'knnTop1At20')],
    ['  random init', (r) => figureText(r, 'baseline', 'knnTop1At20')],
    ['kNN top-1 k=200', (r) => figureText(r, 'figures', 'knnTop1At200')],
    ['  random init', (r) => figureText(r, 'baseline', 'knnTop1At200')],
    ['probe top-1', (r) => figureText(r, 'figures', 'probeTop1')],
    ['  random init', (r) => figureText(r, 'baseline', 'probeTop1')],
  ];
  const metricLines = alignedLines(['final', ...names], metrics.map(([title, cell]) => [title, ...runs.map((run) => clean(cell(run.row)))]),
    [false, ...runs.map(() => true)]);
  const folders = runs.map((run) => `${clean(run.row.name)}: ${clean(run.row.runDir)}`);
  return [...folders, '', ...diffLines, '', ...metricLines];
}
