// The message protocol between the runs table's host side (src/host/runsTable/) and its webview
// script (media/src/runsTable/). Built like the experiment panel's (./protocol.ts): versioned,
// every message checked on receipt with valibot, nested fields included. Also the one definition
// of the overlays' x axes, shared by the webview and the tests. Free of `vscode`, Node and the DOM.
import * as v from 'valibot';
import { EvaluationRecordSchema, RunStatusSchema } from '../training/metrics';
import { count, finite, VersionedProtocol, type MessageBody } from '../training/versioned';

export const RUNS_TABLE_PROTOCOL_VERSION = 1;

export class RunsTableProtocolError extends Error {}

const protocol = new VersionedProtocol(RUNS_TABLE_PROTOCOL_VERSION, RunsTableProtocolError);
const versioned = protocol.message;
const text = v.string();
const nullableText = v.nullable(text);
const nullableNumber = v.nullable(finite);
const MAX_PATH_LENGTH = 4096;
const pathText = v.pipe(v.string(), v.minLength(1), v.maxLength(MAX_PATH_LENGTH));
/** More runs than this are not overlaid at once (the charts would be unreadable anyway). */
export const MAX_SELECTED_RUNS = 24;

// ---- x axes ------------------------------------------------------------------------------------

export const X_AXES = ['step', 'epoch', 'images'] as const;
export type XAxis = (typeof X_AXES)[number];
export const X_AXIS_LABELS: Record<XAxis, string> = { step: 'step', epoch: 'epoch', images: 'images seen' };

/** What a run needs to place its records on any x axis. */
export interface AxisScale { batchSize: number; stepsPerEpoch: number | null }

/**
 * Where a record taken after optimizer step `step` sits on `axis`. Images seen is step × batch
 * size, so runs with different batch sizes line up by the data they consumed. On the epoch axis a
 * step sits at its fraction of the epoch when the run's steps per epoch are known.
 */
export function axisValue(axis: XAxis, point: { step: number; epoch: number }, scale: AxisScale): number {
  switch (axis) {
    case 'step':
      return point.step;
    case 'images':
      return point.step * scale.batchSize;
    case 'epoch':
      return scale.stepsPerEpoch ? point.step / scale.stepsPerEpoch : point.epoch;
  }
}

// ---- shared shapes -----------------------------------------------------------------------------

const FiguresSchema = v.object({ knnTop1At20: finite, knnTop1At200: finite, probeTop1: finite });

const RunRowSchema = v.object({
  runDir: text, id: text, name: text, note: nullableText,
  status: v.union([RunStatusSchema, v.literal('damaged')]),
  problem: nullableText, started: nullableText, durationSeconds: nullableNumber,
  preset: nullableText, backbone: nullableText, imageSize: nullableNumber, batchSize: nullableNumber,
  baseLr: nullableNumber, epochs: nullableNumber, colorJitter: nullableNumber, backend: nullableText,
  imagesPerSecond: nullableNumber, finalLoss: nullableNumber,
  evaluation: v.nullable(v.object({ step: count, figures: v.nullable(FiguresSchema), baseline: v.nullable(FiguresSchema) })),
});
/** A row of src/training/run/runsReport.ts as checked here (src/host/runsTable/ asserts the two agree). */
export type RunRowShape = v.InferOutput<typeof RunRowSchema>;

/**
 * What the overlays need of one run: its step curve (thinned evenly when long), its epoch records'
 * figures, its kNN monitor points and its evaluations.
 */
const RunSeriesSchema = v.object({
  runDir: text,
  name: text,
  batchSize: v.pipe(v.number(), v.integer(), v.minValue(1)),
  stepsPerEpoch: v.nullable(v.pipe(v.number(), v.integer(), v.minValue(1))),
  steps: v.object({ step: v.array(count), epoch: v.array(count), loss: v.array(finite), lr: v.array(finite) }),
  epochs: v.object({ step: v.array(count), epoch: v.array(count), meanLoss: v.array(finite), zStdRatio: v.array(finite) }),
  knn: v.object({ step: v.array(count), epoch: v.array(count), top1: v.array(finite) }),
  evaluations: v.array(EvaluationRecordSchema),
});
export type RunSeries = v.InferOutput<typeof RunSeriesSchema>;

const DifferenceSchema = v.object({ field: text, values: v.array(v.unknown()) });

/** What the webview keeps with setState; the serializer gets it back after a reload and checks it. */
const RunsTableStateSchema = v.object({
  datasetRoot: pathText,
  selected: v.optional(v.pipe(v.array(pathText), v.maxLength(MAX_SELECTED_RUNS))),
  axis: v.optional(v.picklist(X_AXES)),
  sort: v.optional(v.object({ column: v.pipe(text, v.maxLength(40)), descending: v.boolean() })),
  statusFilter: v.optional(v.pipe(text, v.maxLength(20))),
  smoothing: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(0.999))),
  logScale: v.optional(v.boolean()),
});
export type RunsTableState = v.InferOutput<typeof RunsTableStateSchema>;

export function parseRunsTableState(raw: unknown): RunsTableState | null {
  const result = v.safeParse(RunsTableStateSchema, raw);
  return result.success ? result.output : null;
}

// ---- extension → webview -------------------------------------------------------------------------

const RowsMessageSchema = versioned('rows', { datasetRoot: text, runsFolders: v.array(text), rows: v.array(RunRowSchema) });
/** The selected runs' curves and config diff; replaces what the overlays show. */
const SeriesMessageSchema = versioned('series', {
  runs: v.pipe(v.array(RunSeriesSchema), v.maxLength(MAX_SELECTED_RUNS)),
  /** Fields differing between the selected runs; values in the order of `runs`. */
  diff: v.array(DifferenceSchema),
});
/** The host sets the view (a command's arguments, the tests): the webview applies it and asks for what it needs. */
const ViewMessageSchema = versioned('view', {
  selected: v.optional(v.pipe(v.array(text), v.maxLength(MAX_SELECTED_RUNS))),
  axis: v.optional(v.picklist(X_AXES)),
});
const ToWebviewSchema = v.variant('type', [RowsMessageSchema, SeriesMessageSchema, ViewMessageSchema]);
export type ToRunsTableMessage = v.InferOutput<typeof ToWebviewSchema>;
export type SeriesMessage = v.InferOutput<typeof SeriesMessageSchema>;

// ---- webview → extension -------------------------------------------------------------------------

/** A PNG as a data URL is at most this long (a chart is a few hundred KB); CSV likewise. */
export const MAX_SAVED_CHARS = 32 * 1024 * 1024;
const fileName = v.pipe(text, v.minLength(1), v.maxLength(120), v.regex(/^[A-Za-z0-9 ._-]+$/, 'a plain file name'));

const ReadyMessageSchema = versioned('ready', {});
const SelectMessageSchema = versioned('select', { runDirs: v.pipe(v.array(pathText), v.maxLength(MAX_SELECTED_RUNS)) });
const OpenRunMessageSchema = versioned('openRun', { runDir: pathText });
const SaveMessageSchema = v.variant('format', [
  versioned('save', {
    format: v.literal('png'), name: fileName,
    data: v.pipe(text, v.maxLength(MAX_SAVED_CHARS), v.regex(/^data:image\/png;base64,[A-Za-z0-9+/]+=*$/, 'a base64 PNG data URL')),
  }),
  versioned('save', { format: v.literal('csv'), name: fileName, data: v.pipe(text, v.maxLength(MAX_SAVED_CHARS)) }),
]);
const ChartReportSchema = v.object({
  id: text,
  /** Per drawn series: the run, the x values of its points (the first 2,000), and the value its legend shows. */
  series: v.pipe(v.array(v.object({
    runDir: text, label: text, color: text, points: count, xs: v.pipe(v.array(finite), v.maxLength(2000)), latest: nullableText,
  })), v.maxLength(4 * MAX_SELECTED_RUNS)),
});
/** What the webview shows once drawn: the rows in table order, the selection, the axis, each chart and the diff. */
const RenderedMessageSchema = versioned('rendered', {
  rows: v.pipe(v.array(v.object({ runDir: text, color: text, cells: v.array(text) })), v.maxLength(10_000)),
  selected: v.array(text),
  axis: v.picklist(X_AXES),
  charts: v.pipe(v.array(ChartReportSchema), v.maxLength(10)),
  diffFields: v.array(text),
});
const LogMessageSchema = versioned('log', { level: v.picklist(['warn', 'error']), message: v.pipe(text, v.maxLength(10_000)) });

const FromWebviewSchema = v.variant('type', [
  ReadyMessageSchema, SelectMessageSchema, OpenRunMessageSchema, SaveMessageSchema, RenderedMessageSchema, LogMessageSchema,
]);
export type FromRunsTableMessage = v.InferOutput<typeof FromWebviewSchema>;
export type RunsTableRendered = v.InferOutput<typeof RenderedMessageSchema>;
export type SaveRequest = v.InferOutput<typeof SaveMessageSchema>;

export function parseFromRunsTable(raw: unknown): FromRunsTableMessage {
  return protocol.parse(FromWebviewSchema, raw, 'runs table webview');
}

export function parseToRunsTable(raw: unknown): ToRunsTableMessage {
  return protocol.parse(ToWebviewSchema, raw, 'extension');
}

export type RunsTableMessageBody<T> = MessageBody<T>;

export function runsTableMessage<B extends MessageBody<ToRunsTableMessage | FromRunsTableMessage>>(body: B): B & { v: typeof RUNS_TABLE_PROTOCOL_VERSION } {
  return protocol.stamp(body);
}
