// The one message protocol between the extension host (src/host/panel/) and the experiment
// panel's script (media/src/panel.ts). Both sides import this file and validate what they receive,
// nested fields included, with the same valibot helpers as the engine protocol
// (src/training/protocol.ts): a message of another version, of an unknown type or with a malformed
// field is dropped and logged, never acted on. Nothing here imports `vscode` or the DOM, so it
// bundles into both. Each message type is derived from its schema, so the two cannot drift apart.
import * as v from 'valibot';
import { MetricRecordSchema, RunStatusSchema } from '../training/metrics';
import { count, finite, VersionedProtocol, type MessageBody } from '../training/versioned';

export const WEBVIEW_PROTOCOL_VERSION = 1;

export class WebviewProtocolError extends Error {}

const protocol = new VersionedProtocol(WEBVIEW_PROTOCOL_VERSION, WebviewProtocolError);
const text = v.string();
const records = v.array(MetricRecordSchema);

// Paths from the webview are bounded here and resolved against the dataset root by src/host/panel/pathGuard.ts.
const MAX_PATH_LENGTH = 4096;
const pathText = v.pipe(v.string(), v.minLength(1), v.maxLength(MAX_PATH_LENGTH));

/** A phase of work between steps (the engine's latest `progress` message): loading images, a kNN evaluation, indexing. */
const PhaseSchema = v.object({ task: text, done: count, total: count });
export type Phase = v.InferOutput<typeof PhaseSchema>;

/**
 * Where a run stands, as every view words it (./runText.ts): the panel's header, the
 * status bar, the progress notification and the Experiments view are all built from this.
 */
const RunProgressSchema = v.object({
  /** The run trains now (in this window or another process). */
  running: v.boolean(),
  /** The global optimizer step, counted from the run's start (never the step within an epoch). */
  step: count,
  /** Epochs completed. */
  epochsDone: count,
  epochs: count,
  /** Known for live runs, derivable from an epoch record otherwise; null when neither. */
  batchesPerEpoch: v.nullable(count),
  /** The last step's loss while this window trains the run, else the last epoch's mean: labelled, since they differ. */
  loss: v.nullable(v.object({ of: v.picklist(['step', 'epoch']), value: finite })),
  knnTop1: v.nullable(finite),
  /** Work in progress between steps; null when none. */
  phase: v.nullable(PhaseSchema),
  /** Live runs only: seconds to the end at the current training pace. */
  etaSeconds: v.nullable(finite),
});
export type RunProgress = v.InferOutput<typeof RunProgressSchema>;

/** What the panel header shows about a run; also enough to label it in the compare list. */
const RunViewSchema = v.object({
  runDir: text,
  id: text,
  name: text,
  datasetRoot: text,
  status: RunStatusSchema,
  progress: RunProgressSchema,
  /** The backend as the run trained on it (with its training threads, while this window knows them). */
  backend: text,
  preset: text,
  /** Failure text, or why a run stopped. */
  message: v.nullable(text),
});
export type RunView = v.InferOutput<typeof RunViewSchema>;

const CompareOptionSchema = v.object({ runDir: text, label: text });
export type CompareOption = v.InferOutput<typeof CompareOptionSchema>;

const SplitSchema = v.picklist(['train', 'test']);
export type Split = v.InferOutput<typeof SplitSchema>;

/** An image of the run's dataset: `path` is relative to the dataset root, '/'-separated. */
const GalleryImageSchema = v.object({
  path: text,
  /** webview URI of the image (asWebviewUri), '' when the browser cannot show the format. */
  src: text,
  label: v.nullable(text),
  /** Cosine similarity to the query; null for the query itself. */
  score: v.nullable(finite),
  /** The split the run's scan puts the image in; null (or absent, from older hosts) when unknown. */
  split: v.optional(v.nullable(SplitSchema)),
});
export type GalleryImage = v.InferOutput<typeof GalleryImageSchema>;

/** Which neighbours the gallery keeps: of one class folder, of one split; null keeps all. */
const GalleryFilterSchema = v.object({ label: v.nullable(v.pipe(text, v.maxLength(1000))), split: v.nullable(SplitSchema) });
export type GalleryFilter = v.InferOutput<typeof GalleryFilterSchema>;
export const NO_FILTER: GalleryFilter = { label: null, split: null };

/** Whether the filter keeps `image`: a filter on what the image does not say (no class, no split) keeps nothing. */
export function matchesFilter(image: Pick<GalleryImage, 'label' | 'split'>, filter: GalleryFilter): boolean {
  return (filter.label === null || image.label === filter.label) && (filter.split === null || image.split === filter.split);
}

export const isFiltered = (filter: GalleryFilter | undefined): boolean => filter !== undefined && (filter.label !== null || filter.split !== null);

/** A query of several images is the mean of their l2-normalised embeddings. */
export const MAX_QUERY_IMAGES = 64;

/** One augmented view: base64 of its size*size*3 RGB bytes (8 bits, the normalisation undone). */
const viewBytesText = v.pipe(v.string(), v.maxLength(4 * 1024 * 1024));
const PreviewImageSchema = v.object({
  path: text,
  label: v.nullable(text),
  /** Where the trainer renders each pair: its epoch, batch and slot. */
  pairs: v.pipe(v.array(v.object({ epoch: count, batch: count, slot: count, view1: viewBytesText, view2: viewBytesText })), v.maxLength(16)),
});
export type PreviewImage = v.InferOutput<typeof PreviewImageSchema>;

/**
 * What the panel keeps with vscode.setState. The extension writes runDir into the page; after a
 * window reload VS Code hands the state back to the serializer, which must check it.
 */
const PanelStateSchema = v.object({
  runDir: pathText,
  compareRunDir: v.optional(v.nullable(pathText)),
  queryPath: v.optional(v.nullable(pathText)),
});
export type PanelState = v.InferOutput<typeof PanelStateSchema>;

/** The saved state, or null when it is missing or malformed. */
export function parsePanelState(raw: unknown): PanelState | null {
  const result = v.safeParse(PanelStateSchema, raw);
  return result.success ? result.output : null;
}

const versioned = protocol.message;

// ---- extension → webview -------------------------------------------------------------------

const InitMessageSchema = versioned('init', {
  run: RunViewSchema,
  /** Every metric record of the run so far; replaces whatever the panel shows. */
  history: records,
  compareOptions: v.array(CompareOptionSchema),
  /** The gallery query the extension will (re)send, or null: then the panel may restore its own. */
  galleryQuery: v.nullable(text),
});
const HistoryMessageSchema = versioned('history', { records });
/** Records as the engine sent them, in arrival order; the panel merges them into what it holds. */
const AppendMessageSchema = versioned('append', { records });
const StatusMessageSchema = versioned('status', { run: RunViewSchema });
const CompareOptionsMessageSchema = versioned('compareOptions', { options: v.array(CompareOptionSchema) });
/** Another run's loss curve to overlay; runDir null clears the overlay. */
const CompareSeriesMessageSchema = versioned('compareSeries', {
  runDir: v.nullable(text), label: text, steps: v.array(count), losses: v.array(finite),
});
const GalleryBusyMessageSchema = versioned('galleryBusy', { text });
const GalleryMessageSchema = versioned('gallery', {
  query: GalleryImageSchema,
  neighbours: v.pipe(v.array(GalleryImageSchema), v.maxLength(1000)),
  /** The checkpoint the embeddings came from. */
  checkpointStep: v.nullable(count),
  /** Every query image when the query is the mean of several (`query` is the first); absent for one. */
  queries: v.optional(v.pipe(v.array(GalleryImageSchema), v.maxLength(MAX_QUERY_IMAGES))),
  /** The filter the neighbours passed, and how many nearest images were looked through for them. */
  filter: v.optional(GalleryFilterSchema),
  searched: v.optional(count),
  /** The dataset's class folders ([] when unlabelled) and splits, for the filter's choices. */
  classes: v.optional(v.pipe(v.array(text), v.maxLength(100_000))),
  splits: v.optional(v.array(SplitSchema)),
});
const GalleryErrorMessageSchema = versioned('galleryError', { message: text });
const AugmentationPreviewBusySchema = versioned('augmentationPreviewBusy', { text });
/** Pairs of views of a few dataset images, as the trainer renders them under `settings`. */
const AugmentationPreviewSchema = versioned('augmentationPreview', {
  size: v.pipe(count, v.minValue(1), v.maxValue(1024)),
  /** What the views follow, in words: the settings' preset and augmentation, and whether the run trains with them. */
  settings: text,
  images: v.pipe(v.array(PreviewImageSchema), v.maxLength(16)),
  notes: v.pipe(v.array(text), v.maxLength(100)),
});
const AugmentationPreviewErrorSchema = versioned('augmentationPreviewError', { message: text });

const ToWebviewSchema = v.variant('type', [
  InitMessageSchema, HistoryMessageSchema, AppendMessageSchema, StatusMessageSchema, CompareOptionsMessageSchema,
  CompareSeriesMessageSchema, GalleryBusyMessageSchema, GalleryMessageSchema, GalleryErrorMessageSchema,
  AugmentationPreviewBusySchema, AugmentationPreviewSchema, AugmentationPreviewErrorSchema,
]);

export type AppendMessage = v.InferOutput<typeof AppendMessageSchema>;
export type CompareSeriesMessage = v.InferOutput<typeof CompareSeriesMessageSchema>;
export type GalleryMessage = v.InferOutput<typeof GalleryMessageSchema>;
export type AugmentationPreviewMessage = v.InferOutput<typeof AugmentationPreviewSchema>;
export type ToWebviewMessage = v.InferOutput<typeof ToWebviewSchema>;

// ---- webview → extension -------------------------------------------------------------------

const ReadyMessageSchema = versioned('ready', {});
const CompareRequestSchema = versioned('compare', { runDir: v.nullable(pathText) });
/**
 * random: any dataset image; pick: ask the user; path: a dataset image the panel already shows;
 * paths: several it shows, searched by the mean of their embeddings. Each may name a filter.
 */
const QueryRequestSchema = v.variant('source', [
  versioned('query', { source: v.picklist(['random', 'pick']), filter: v.optional(GalleryFilterSchema) }),
  v.object({
    v: v.literal(WEBVIEW_PROTOCOL_VERSION), type: v.literal('query'), source: v.literal('path'), path: pathText,
    filter: v.optional(GalleryFilterSchema),
  }, 'a query from source "path" needs a path'),
  v.object({
    v: v.literal(WEBVIEW_PROTOCOL_VERSION), type: v.literal('query'), source: v.literal('paths'),
    paths: v.pipe(v.array(pathText), v.minLength(1), v.maxLength(MAX_QUERY_IMAGES)), filter: v.optional(GalleryFilterSchema),
  }, `a query from source "paths" needs 1 to ${MAX_QUERY_IMAGES} paths`),
]);
const OpenImageRequestSchema = versioned('openImage', { path: pathText });
const shownText = v.pipe(text, v.maxLength(10_000));
/**
 * Sent after the panel drew something new: what a person would see as points on the curves and as
 * words around them, and the latest record of each kind the panel holds (one at most per kind).
 */
const RenderedReportSchema = versioned('rendered', {
  stepPoints: count, epochPoints: count, comparePoints: count, latest: v.pipe(records, v.maxLength(MetricRecordSchema.options.length)), // the last of each kind
  /** The header's summary line, the message shown where the charts are (null when none), and the notes of the charts without points. */
  summary: shownText, banner: v.nullable(shownText), emptyNotes: v.pipe(v.array(shownText), v.maxLength(20)),
});
/**
 * Sent once the gallery's thumbnails finished loading (or failing to), with the class agreement it
 * shows ("k of n share the query's class"; null for an unlabelled dataset or a mixed query).
 */
const GalleryRenderedReportSchema = versioned('galleryRendered', {
  query: text, images: count, loaded: count, failed: count,
  agreement: v.optional(v.nullable(v.object({ label: text, same: count, of: count }))),
});
/** Another epoch's views (the preview starts at epoch 0). */
const AugmentationPreviewRequestSchema = versioned('augmentationPreviewRequest', { epoch: count });
/** Sent once the preview drew its views: how many images and views it shows. */
const AugmentationPreviewRenderedSchema = versioned('augmentationPreviewRendered', { images: count, views: count, settings: shownText });
const WebviewLogMessageSchema = versioned('log', { level: v.picklist(['warn', 'error']), message: shownText });

const FromWebviewSchema = v.variant('type', [
  ReadyMessageSchema, CompareRequestSchema, QueryRequestSchema, OpenImageRequestSchema, RenderedReportSchema,
  GalleryRenderedReportSchema, WebviewLogMessageSchema, AugmentationPreviewRequestSchema, AugmentationPreviewRenderedSchema,
]);

export type QueryRequest = v.InferOutput<typeof QueryRequestSchema>;
export type RenderedReport = v.InferOutput<typeof RenderedReportSchema>;
export type GalleryRenderedReport = v.InferOutput<typeof GalleryRenderedReportSchema>;
export type AugmentationPreviewRendered = v.InferOutput<typeof AugmentationPreviewRenderedSchema>;
export type FromWebviewMessage = v.InferOutput<typeof FromWebviewSchema>;

// ---- validation ----------------------------------------------------------------------------

/** Validates what the extension receives from the panel. Throws WebviewProtocolError. */
export function parseFromWebview(raw: unknown): FromWebviewMessage {
  return protocol.parse(FromWebviewSchema, raw, 'webview');
}

/** Validates what the panel receives from the extension. Throws WebviewProtocolError. */
export function parseToWebview(raw: unknown): ToWebviewMessage {
  return protocol.parse(ToWebviewSchema, raw, 'extension');
}

export type WebviewMessageBody<T> = MessageBody<T>;

/** Builds a message with the version filled in; the body is checked against the message types. */
export function webviewMessage<B extends MessageBody<ToWebviewMessage | FromWebviewMessage>>(body: B): B & { v: typeof WEBVIEW_PROTOCOL_VERSION } {
  return protocol.stamp(body);
}
