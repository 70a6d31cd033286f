// The one message protocol between the engine process (src/training) and whoever drives it:
// the VS Code extension through child_process.fork, or the CLI's `--json` output.
// It imports nothing from tfjs so the extension can use it without loading the engine.
// Every message carries the protocol version; receivers validate it, nested fields included,
// before acting. The schemas are valibot's (small, tree-shaken, shared with the webview's
// protocol); each message type is derived from its schema, so the two cannot drift apart.
import * as v from 'valibot';
import { configProblems, type TrainConfig } from './config';
import { MetricRecordSchema } from './metrics';
import { count, finite, VersionedProtocol, type MessageBody } from './versioned';

export {
  mergeMetrics, RUN_STATUSES, RunStatusSchema, MetricRecordSchema,
  type EpochRecord, type EvalRecord, type EvaluationFigures, type EvaluationRecord, type MetricRecord, type RunStatus, type StepRecord,
} from './metrics';
export type { MessageBody } from './versioned';

export const PROTOCOL_VERSION = 2;

/** The engine's tfjs backend reads the folder of tfjs' wasm binaries from this variable. */
export const WASM_DIR_ENV = 'SIMSIAM_WASM_DIR';
/** Folder whose node_modules holds native backends installed by "SimSiam: Set Up Native Backend" (see tfjs/externalBackends.ts). */
export const BACKENDS_DIR_ENV = 'SIMSIAM_BACKENDS_DIR';

const text = v.string();

/** A resolved TrainConfig, checked field by field by config.ts (the one set of config rules). */
export const TrainConfigSchema = v.custom<TrainConfig>((value) => configProblems(value).length === 0,
  (issue) => `not a valid training config: ${configProblems(issue.input).map((p) => p.text).join('; ')}`);

export const DatasetSummarySchema = v.object({
  root: text,
  trainImages: count,
  testImages: count,
  classes: v.array(text),
});
export type DatasetSummary = v.InferOutput<typeof DatasetSummarySchema>;

// ---- host → engine -------------------------------------------------------------------------

export class ProtocolError extends Error {}

const protocol = new VersionedProtocol(PROTOCOL_VERSION, ProtocolError);
const versioned = protocol.message;

const TrainRequestSchema = versioned('train', {
  folder: text,
  /** Resolved once by the caller (CLI flags or the extension's settings); checked again here. */
  config: TrainConfigSchema,
  /** Parent folder for run folders; default <folder>/.simsiam/runs. */
  runsDir: v.optional(text),
  name: v.optional(text),
});
const ResumeRequestSchema = versioned('resume', {
  runDir: text,
  /** Raise the epoch budget. */
  epochs: v.optional(v.pipe(count, v.minValue(1))),
});
const StopRequestSchema = versioned('stop', {});
const EmbedRequestSchema = versioned('embed', { runDir: text });
const SimilarRequestSchema = versioned('similar', { runDir: text, image: text, k: v.pipe(count, v.minValue(1)) });
/** Neighbours of the mean of several images' l2-normalised embeddings (re-normalised); answered with similarResult. */
const SimilarToMeanRequestSchema = versioned('similarToMean', {
  runDir: text, images: v.pipe(v.array(text), v.minLength(1), v.maxLength(64)), k: v.pipe(count, v.minValue(1)),
});
/** Pairs of views of a few images exactly as the trainer renders them (src/training/data/preview.ts). */
const PreviewRequestSchema = versioned('preview', {
  folder: text, config: TrainConfigSchema, runsDir: v.optional(text),
  images: v.pipe(count, v.minValue(1), v.maxValue(16)), pairs: v.pipe(count, v.minValue(1), v.maxValue(8)), epoch: count,
});
// -- the embedding map and the data views (src/training/projection, src/training/dataViews) --
export const MAP_METHODS = ['pca', 'umap'] as const;
export const DATA_VIEW_NAMES = ['labelIssues', 'outliers', 'redundant'] as const;
/** Neighbours per image the data views look at, and how many images they list at most. */
const viewK = v.pipe(count, v.minValue(1), v.maxValue(100));
const viewLimit = v.pipe(count, v.minValue(1), v.maxValue(10_000));
const cosine = v.pipe(finite, v.minValue(-1), v.maxValue(1));
const MapRequestSchema = versioned('map', { runDir: text, method: v.picklist(MAP_METHODS) });
const DataViewRequestSchema = versioned('dataView', { runDir: text, view: v.picklist(DATA_VIEW_NAMES), k: viewK, limit: viewLimit });
const DuplicatesRequestSchema = versioned('duplicates', { runDir: text, threshold: cosine });
// -- end of the embedding map and the data views --
/** What this machine offers the engine: backends (each tried), GPU adapters, versions. */
const EnvironmentRequestSchema = versioned('environment', {});
/** A run's full evaluation of one checkpoint (the latest when no step), answered with its `metric` record. */
const EvaluateRequestSchema = versioned('evaluate', { runDir: text, step: v.optional(count) });
/** The run's embeddings written for other tools: npy (+ paths file), CSV, or a TensorBoard projector folder. */
const ExportRequestSchema = versioned('export', { runDir: text, format: v.picklist(['npy', 'csv', 'projector']), out: v.optional(text) });

const HostMessageSchema = v.variant('type', [
  TrainRequestSchema, ResumeRequestSchema, StopRequestSchema, EmbedRequestSchema, SimilarRequestSchema,
  SimilarToMeanRequestSchema, PreviewRequestSchema, EnvironmentRequestSchema, EvaluateRequestSchema, ExportRequestSchema, MapRequestSchema, DataViewRequestSchema, DuplicatesRequestSchema,
]);

export type TrainRequest = v.InferOutput<typeof TrainRequestSchema>;
export type ResumeRequest = v.InferOutput<typeof ResumeRequestSchema>;
export type StopRequest = v.InferOutput<typeof StopRequestSchema>;
export type EmbedRequest = v.InferOutput<typeof EmbedRequestSchema>;
export type SimilarRequest = v.InferOutput<typeof SimilarRequestSchema>;
export type SimilarToMeanRequest = v.InferOutput<typeof SimilarToMeanRequestSchema>;
export type PreviewRequest = v.InferOutput<typeof PreviewRequestSchema>;
export type EnvironmentRequest = v.InferOutput<typeof EnvironmentRequestSchema>;
export type EvaluateRequest = v.InferOutput<typeof EvaluateRequestSchema>;
export type ExportRequest = v.InferOutput<typeof ExportRequestSchema>;
export type MapRequest = v.InferOutput<typeof MapRequestSchema>;
export type DataViewRequest = v.InferOutput<typeof DataViewRequestSchema>;
export type DuplicatesRequest = v.InferOutput<typeof DuplicatesRequestSchema>;
export type MapMethod = (typeof MAP_METHODS)[number];
export type DataViewName = (typeof DATA_VIEW_NAMES)[number];
export type HostMessage = v.InferOutput<typeof HostMessageSchema>;

// ---- engine → host -------------------------------------------------------------------------

const StartedMessageSchema = versioned('started', {
  runDir: text,
  runId: text,
  backend: text,
  config: TrainConfigSchema,
  dataset: DatasetSummarySchema,
  /** 0 for a new run; the step it continues from when resumed. */
  startStep: count,
  batchesPerEpoch: v.pipe(count, v.minValue(1)),
});
/** A metric record, exactly as metrics.jsonl stores it. */
const MetricMessageSchema = versioned('metric', { record: MetricRecordSchema });
const WarningMessageSchema = versioned('warning', { message: text, file: v.optional(text) });
const CheckpointMessageSchema = versioned('checkpoint', { step: count, epoch: count, dir: text });
const DoneMessageSchema = versioned('done', {
  status: v.picklist(['completed', 'stopped']), step: count, epoch: count, runDir: text,
});
/** A new run stopped while its images were read, before its folder existed: nothing was created. */
const CancelledMessageSchema = versioned('cancelled', { message: text });
const ErrorMessageSchema = versioned('error', {
  message: text,
  detail: v.optional(text),
  /** The config field to change, when changing one fixes it: the extension names its setting, the CLI its flag. */
  field: v.optional(text),
});
const ProgressMessageSchema = versioned('progress', { task: text, done: count, total: count });
export const NeighbourSchema = v.object({ path: text, score: finite, label: v.nullable(text) });
const SimilarResultMessageSchema = versioned('similarResult', { query: text, neighbours: v.array(NeighbourSchema) });
/** Each view: base64 of its size*size*3 RGB bytes (src/training/data/preview.ts previewResultFields). */
const PreviewResultMessageSchema = versioned('previewResult', {
  size: v.pipe(count, v.minValue(1)),
  images: v.array(v.object({
    relPath: text, label: v.nullable(text),
    pairs: v.array(v.object({ epoch: count, batch: count, slot: count, view1: text, view2: text })),
  })),
  notes: v.array(text),
});
const EmbedResultMessageSchema = versioned('embedResult', { runDir: text, images: count, reembedded: count });
/** Each backend as the doctor found it: loaded (with its speed) or why not. */
export const BackendStatusSchema = v.object({
  name: text,
  loaded: v.boolean(),
  detail: v.optional(text),
  reason: v.optional(text),
  imagesPerSecond: v.optional(v.nullable(finite)),
});
/** The doctor's report: `lines` for people (as `simsiam doctor` prints them), `backends` for code. */
const ExportResultMessageSchema = versioned('exportResult', { runDir: text, files: v.array(text) });
const EnvironmentMessageSchema = versioned('environment', { lines: v.array(text), backends: v.array(BackendStatusSchema) });

// -- the embedding map and the data views --
const sameLengths = (columns: unknown[][]) => new Set(columns.map((c) => c.length)).size <= 1;
/** One point per indexed image, as columns: 50 000 points are a few MB, not tens. */
const MapResultMessageSchema = v.pipe(
  versioned('mapResult', {
    runDir: text,
    method: v.picklist(MAP_METHODS),
    checkpointStep: count,
    /** True when the layout came from the run's map cache rather than being computed now. */
    cached: v.boolean(),
    datasetRoot: text,
    classes: v.array(text),
    /** '/'-separated, relative to datasetRoot. */
    paths: v.array(text),
    labels: v.array(v.nullable(count)),
    splits: v.array(v.picklist(['train', 'test'])),
    x: v.array(finite),
    y: v.array(finite),
  }),
  v.check((m) => sameLengths([m.paths, m.labels, m.splits, m.x, m.y]), 'has columns of different lengths'),
  v.check((m) => m.labels.every((label) => label === null || label < m.classes.length), 'has a label beyond its classes'),
);
export const DataViewItemSchema = v.object({
  /** Absolute. */
  path: text,
  label: v.nullable(text),
  /** labelIssues: share of neighbours in another class; outliers: 1 − mean cosine to the k nearest; redundant: mean cosine. */
  score: finite,
  /** labelIssues: the class most disagreeing neighbours carry. */
  suggested: v.nullable(text),
});
const DataViewResultMessageSchema = versioned('dataViewResult', {
  runDir: text, view: v.picklist(DATA_VIEW_NAMES), k: count, checkpointStep: count, items: v.array(DataViewItemSchema),
});
export const DuplicateGroupSchema = v.object({ paths: v.array(text), minScore: finite });
const DuplicatesResultMessageSchema = versioned('duplicatesResult', {
  runDir: text, threshold: cosine, checkpointStep: count, groups: v.array(DuplicateGroupSchema),
});
// -- end of the embedding map and the data views --

const EngineMessageSchema = v.variant('type', [
  StartedMessageSchema, MetricMessageSchema, WarningMessageSchema, CheckpointMessageSchema, DoneMessageSchema, CancelledMessageSchema,
  ErrorMessageSchema, ProgressMessageSchema, SimilarResultMessageSchema, EmbedResultMessageSchema, EnvironmentMessageSchema, ExportResultMessageSchema,
  PreviewResultMessageSchema,
  MapResultMessageSchema, DataViewResultMessageSchema, DuplicatesResultMessageSchema,
]);

export type StartedMessage = v.InferOutput<typeof StartedMessageSchema>;
export type MetricMessage = v.InferOutput<typeof MetricMessageSchema>;
export type WarningMessage = v.InferOutput<typeof WarningMessageSchema>;
export type CheckpointMessage = v.InferOutput<typeof CheckpointMessageSchema>;
export type DoneMessage = v.InferOutput<typeof DoneMessageSchema>;
export type CancelledMessage = v.InferOutput<typeof CancelledMessageSchema>;
export type ErrorMessage = v.InferOutput<typeof ErrorMessageSchema>;
export type ProgressMessage = v.InferOutput<typeof ProgressMessageSchema>;
export type Neighbour = v.InferOutput<typeof NeighbourSchema>;
export type SimilarResultMessage = v.InferOutput<typeof SimilarResultMessageSchema>;
export type EmbedResultMessage = v.InferOutput<typeof EmbedResultMessageSchema>;
export type PreviewResultMessage = v.InferOutput<typeof PreviewResultMessageSchema>;
export type BackendStatus = v.InferOutput<typeof BackendStatusSchema>;
export type EnvironmentMessage = v.InferOutput<typeof EnvironmentMessageSchema>;
export type ExportResultMessage = v.InferOutput<typeof ExportResultMessageSchema>;
export type MapResultMessage = v.InferOutput<typeof MapResultMessageSchema>;
export type DataViewItem = v.InferOutput<typeof DataViewItemSchema>;
export type DataViewResultMessage = v.InferOutput<typeof DataViewResultMessageSchema>;
export type DuplicateGroup = v.InferOutput<typeof DuplicateGroupSchema>;
export type DuplicatesResultMessage = v.InferOutput<typeof DuplicatesResultMessageSchema>;
export type EngineMessage = v.InferOutput<typeof EngineMessageSchema>;
/** How the engine reports: to the extension over IPC, or to the CLI's printer. */
export type Emit = (message: EngineMessage) => void;

// ---- validation ----------------------------------------------------------------------------

export function parseHostMessage(raw: unknown): HostMessage {
  return protocol.parse(HostMessageSchema, raw, 'host');
}

export function parseEngineMessage(raw: unknown): EngineMessage {
  return protocol.parse(EngineMessageSchema, raw, 'engine');
}

/** Builds a message with the version filled in; the body is checked against the message types. */
export function message<B extends MessageBody<EngineMessage | HostMessage>>(body: B): B & { v: typeof PROTOCOL_VERSION } {
  return protocol.stamp(body);
}
