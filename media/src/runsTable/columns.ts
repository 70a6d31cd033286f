// The runs table's columns: what each cell says, what it sorts by, and the status filter. Pure
// (no DOM), so a unit test checks it. A figure a run does not have reads "—"; an evaluation of a
// dataset without class folders reads "no labels".
import type { RunRowShape as RunRow } from '../../../src/webview/runsTableProtocol';
import { formatDuration } from '../../../src/webview/format';

export const BLANK = '—';
export const NO_LABELS = 'no labels';

type Figure = 'knnTop1At20' | 'knnTop1At200' | 'probeTop1';

export interface Column {
  id: string;
  title: string;
  /** What the header's tooltip explains. */
  description: string;
  numeric: boolean;
  text(row: RunRow): string;
  /** Sorts by this; null (missing) always sorts last. */
  value(row: RunRow): number | string | null;
}

const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
const plain = (x: number | null, digits?: number) => (x === null ? BLANK : digits === undefined ? String(x) : x.toFixed(digits));

function figure(row: RunRow, which: 'figures' | 'baseline', field: Figure): number | null {
  return row.evaluation?.[which]?.[field] ?? null;
}

function figureText(row: RunRow, which: 'figures' | 'baseline', field: Figure): string {
  if (!row.evaluation) return BLANK;
  const figures = row.evaluation[which];
  return figures ? percent(figures[field]) : NO_LABELS;
}

/** "2026-11-28 21:57" in the viewer's time zone. */
function startedText(iso: string | null): string {
  if (!iso) return BLANK;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const two = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}`;
}

const text = (id: string, title: string, description: string, get: (row: RunRow) => string | null): Column => ({
  id, title, description, numeric: false, text: (row) => get(row) ?? BLANK, value: get,
});
const number = (id: string, title: string, description: string, get: (row: RunRow) => number | null, digits?: number): Column => ({
  id, title, description, numeric: true, text: (row) => plain(get(row), digits), value: get,
});
const evaluation = (id: string, title: string, description: string, which: 'figures' | 'baseline', field: Figure): Column => ({
  id, title, description, numeric: true, text: (row) => figureText(row, which, field), value: (row) => figure(row, which, field),
});

export const COLUMNS: Column[] = [
  text('name', 'Name', 'The run\'s name (its note, when it has one, shows below)', (r) => r.name),
  text('status', 'Status', 'running, completed, stopped, failed, interrupted, or damaged (its files cannot be read)', (r) => r.status),
  { ...text('started', 'Started', 'When the run was created', (r) => r.started), text: (r) => startedText(r.started) },
  { ...number('duration', 'Duration', 'Time spent training (the sum of its epochs)', (r) => r.durationSeconds),
    text: (r) => (r.durationSeconds === null ? BLANK : formatDuration(r.durationSeconds)) },
  text('preset', 'Preset', 'The recipe preset the config started from', (r) => r.preset),
  text('backbone', 'Backbone', 'The encoder\'s ResNet', (r) => r.backbone),
  number('imageSize', 'Size', 'Input image size, px', (r) => r.imageSize),
  number('batchSize', 'Batch', 'Batch size', (r) => r.batchSize),
  number('baseLr', 'Base lr', 'Base learning rate (lr = base × batch / 256)', (r) => r.baseLr),
  number('epochs', 'Epochs', 'Epochs the run trains for', (r) => r.epochs),
  number('colorJitter', 'Jitter', 'Augmentation strength: colour-jitter strength s', (r) => r.colorJitter),
  text('backend', 'Backend', 'The tfjs backend it trained on', (r) => r.backend),
  number('imagesPerSecond', 'Images/s', 'Training throughput in the last epoch', (r) => r.imagesPerSecond, 1),
  number('finalLoss', 'Loss', 'The last epoch\'s mean loss', (r) => r.finalLoss, 4),
  evaluation('knn20', 'kNN@20', 'kNN top-1 (k = 20) of the last evaluation', 'figures', 'knnTop1At20'),
  evaluation('knn20Init', 'init', 'The same for the untrained network of the same config', 'baseline', 'knnTop1At20'),
  evaluation('knn200', 'kNN@200', 'kNN top-1 (k = 200) of the last evaluation', 'figures', 'knnTop1At200'),
  evaluation('knn200Init', 'init', 'The same for the untrained network of the same config', 'baseline', 'knnTop1At200'),
  evaluation('probe', 'Probe', 'Linear-probe top-1 of the last evaluation', 'figures', 'probeTop1'),
  evaluation('probeInit', 'init', 'The same for the untrained network of the same config', 'baseline', 'probeTop1'),
];

export interface SortOrder { column: string; descending: boolean }

/** The rows in the order of `order`; missing values last either way, ties by start time (newest first). */
export function sortRows(rows: readonly RunRow[], order: SortOrder | undefined): RunRow[] {
  const column = COLUMNS.find((c) => c.id === order?.column);
  if (!column || !order) return [...rows];
  const direction = order.descending ? -1 : 1;
  return [...rows].sort((a, b) => {
    const x = column.value(a);
    const y = column.value(b);
    if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
    const compared = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return compared * direction || (b.started ?? '').localeCompare(a.started ?? '');
  });
}

export const ALL_STATUSES = 'all';

/** The rows with status `status` ('all': every row). */
export function filterRows(rows: readonly RunRow[], status: string): RunRow[] {
  return status === ALL_STATUSES ? [...rows] : rows.filter((row) => row.status === status);
}

/** The filter's choices: every status some row has, in a fixed order. */
export function statusChoices(rows: readonly RunRow[]): string[] {
  const order = ['running', 'completed', 'stopped', 'interrupted', 'failed', 'damaged'];
  const present = new Set(rows.map((row) => row.status));
  return [ALL_STATUSES, ...order.filter((status) => present.has(status as RunRow['status']))];
}

/** What a config value reads as in the diff. */
export function configValueText(value: unknown): string {
  if (value === undefined) return BLANK;
  return typeof value === 'string' ? value : JSON.stringify(value);
}
