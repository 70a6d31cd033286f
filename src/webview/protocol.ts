// The one message protocol between the extension host (src/webview/panel.ts) and the experiment
// panel's script (media/src/panel.ts). Both sides import this file and validate what they receive:
// a message of another version, of an unknown type or with a malformed field is dropped and
// logged, never acted on. Nothing here imports `vscode` or the DOM, so it bundles into both.
import type { MetricRecord } from '../training/runStore';
import type { RunStatus } from '../training/protocol';

export const WEBVIEW_PROTOCOL_VERSION = 1;

/** What the panel header shows about a run; also enough to label it in the compare list. */
export interface RunView {
  runDir: string;
  id: string;
  name: string;
  datasetRoot: string;
  status: RunStatus;
  step: number;
  epoch: number;
  epochs: number;
  /** Known once the engine reported it (live runs) or derivable from metrics; null otherwise. */
  batchesPerEpoch: number | null;
  backend: string;
  preset: string;
  /** Failure text, or why a run stopped. */
  message: string | null;
  /** Live runs only: seconds to the end at the current pace. */
  etaSeconds: number | null;
}

export interface CompareOption { runDir: string; label: string }

/** An image of the run's dataset: `path` is relative to the dataset root, '/'-separated. */
export interface GalleryImage {
  path: string;
  /** webview URI of the image (asWebviewUri), '' when the browser cannot show the format. */
  src: string;
  label: string | null;
  /** Cosine similarity to the query; null for the query itself. */
  score: number | null;
}

// ---- extension → webview -------------------------------------------------------------------

export interface InitMessage {
  v: number; type: 'init';
  run: RunView;
  /** Every metric record of the run so far; replaces whatever the panel shows. */
  history: MetricRecord[];
  compareOptions: CompareOption[];
  /** The gallery query the extension will (re)send, or null: then the panel may restore its own. */
  galleryQuery: string | null;
}
export interface HistoryMessage { v: number; type: 'history'; records: MetricRecord[] }
export interface AppendMessage { v: number; type: 'append'; records: MetricRecord[] }
export interface StatusMessage { v: number; type: 'status'; run: RunView }
export interface CompareOptionsMessage { v: number; type: 'compareOptions'; options: CompareOption[] }
/** Another run's loss curve to overlay; runDir null clears the overlay. */
export interface CompareSeriesMessage {
  v: number; type: 'compareSeries';
  runDir: string | null; label: string; steps: number[]; losses: number[];
}
export interface GalleryBusyMessage { v: number; type: 'galleryBusy'; text: string }
export interface GalleryMessage {
  v: number; type: 'gallery';
  query: GalleryImage;
  neighbours: GalleryImage[];
  /** The checkpoint the embeddings came from. */
  checkpointStep: number | null;
}
export interface GalleryErrorMessage { v: number; type: 'galleryError'; message: string }

export type ToWebviewMessage =
  | InitMessage | HistoryMessage | AppendMessage | StatusMessage | CompareOptionsMessage | CompareSeriesMessage
  | GalleryBusyMessage | GalleryMessage | GalleryErrorMessage;

// ---- webview → extension -------------------------------------------------------------------

export interface ReadyMessage { v: number; type: 'ready' }
export interface CompareRequest { v: number; type: 'compare'; runDir: string | null }
/** random: any dataset image; pick: ask the user; path: a dataset image the panel already shows. */
export interface QueryRequest { v: number; type: 'query'; source: 'random' | 'pick' | 'path'; path?: string }
export interface OpenImageRequest { v: number; type: 'openImage'; path: string }
/** Sent after the charts drew new data: what a person would see as points on the curves. */
export interface RenderedReport { v: number; type: 'rendered'; stepPoints: number; epochPoints: number; comparePoints: number }
/** Sent once the gallery's thumbnails finished loading (or failing to). */
export interface GalleryRenderedReport { v: number; type: 'galleryRendered'; query: string; images: number; loaded: number; failed: number }
export interface WebviewLogMessage { v: number; type: 'log'; level: 'warn' | 'error'; message: string }

export type FromWebviewMessage =
  | ReadyMessage | CompareRequest | QueryRequest | OpenImageRequest | RenderedReport | GalleryRenderedReport
  | WebviewLogMessage;

// ---- validation ----------------------------------------------------------------------------

export class WebviewProtocolError extends Error {}

type Check = (value: unknown) => boolean;
const isString: Check = (v) => typeof v === 'string';
const isNumber: Check = (v) => typeof v === 'number';
const isCount: Check = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isFinite: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const nullable = (check: Check): Check => (v) => v === null || check(v);
const optional = (check: Check): Check => (v) => v === undefined || check(v);
const oneOf = (...allowed: string[]): Check => (v) => typeof v === 'string' && allowed.includes(v);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const arrayOf = (check: Check, maxLength = Number.MAX_SAFE_INTEGER): Check =>
  (v) => Array.isArray(v) && v.length <= maxLength && v.every(check);
const shaped = (shape: Record<string, Check>): Check =>
  (v) => isObject(v) && Object.entries(shape).every(([field, check]) => check(v[field]));

const RUN_STATUSES = ['running', 'completed', 'stopped', 'failed', 'interrupted'];

const isRunView = shaped({
  runDir: isString, id: isString, name: isString, datasetRoot: isString, status: oneOf(...RUN_STATUSES),
  step: isCount, epoch: isCount, epochs: isCount, batchesPerEpoch: nullable(isCount), backend: isString,
  preset: isString, message: nullable(isString), etaSeconds: nullable(isFinite),
});
// loss may be NaN (the engine reports a diverged step before stopping), so only `number`.
const isMetricRecord: Check = (v) => isObject(v) && isCount(v.step) && isCount(v.epoch) && (
  (v.kind === 'step' && isNumber(v.loss) && isNumber(v.lr)) ||
  (v.kind === 'eval' && isNumber(v.knnTop1)) ||
  (v.kind === 'epoch' && isNumber(v.meanLoss) && isNumber(v.lr) && isNumber(v.zStd) && isNumber(v.zStdReference) &&
    nullable(isNumber)(v.knnTop1) && isNumber(v.imagesPerSecond) && isNumber(v.seconds)));
const isCompareOption = shaped({ runDir: isString, label: isString });
const isGalleryImage = shaped({ path: isString, src: isString, label: nullable(isString), score: nullable(isNumber) });

const TO_WEBVIEW: Record<ToWebviewMessage['type'], Record<string, Check>> = {
  init: { run: isRunView, history: arrayOf(isMetricRecord), compareOptions: arrayOf(isCompareOption), galleryQuery: nullable(isString) },
  history: { records: arrayOf(isMetricRecord) },
  append: { records: arrayOf(isMetricRecord) },
  status: { run: isRunView },
  compareOptions: { options: arrayOf(isCompareOption) },
  compareSeries: { runDir: nullable(isString), label: isString, steps: arrayOf(isFinite), losses: arrayOf(isNumber) },
  galleryBusy: { text: isString },
  gallery: { query: isGalleryImage, neighbours: arrayOf(isGalleryImage, 1000), checkpointStep: nullable(isCount) },
  galleryError: { message: isString },
};

// Paths from the webview are bounded here and resolved against the dataset root by pathGuard.ts.
const MAX_PATH_LENGTH = 4096;
const isPathText: Check = (v) => typeof v === 'string' && v.length > 0 && v.length <= MAX_PATH_LENGTH;

const FROM_WEBVIEW: Record<FromWebviewMessage['type'], Record<string, Check>> = {
  ready: {},
  compare: { runDir: nullable(isPathText) },
  query: { source: oneOf('random', 'pick', 'path'), path: optional(isPathText) },
  openImage: { path: isPathText },
  rendered: { stepPoints: isCount, epochPoints: isCount, comparePoints: isCount },
  galleryRendered: { query: isString, images: isCount, loaded: isCount, failed: isCount },
  log: { level: oneOf('warn', 'error'), message: (v) => typeof v === 'string' && v.length <= 10_000 },
};

function validate<T>(raw: unknown, shapes: Record<string, Record<string, Check>>, side: string): T {
  if (!isObject(raw)) throw new WebviewProtocolError(`${side} message is not an object`);
  if (raw.v !== WEBVIEW_PROTOCOL_VERSION) {
    throw new WebviewProtocolError(`${side} message has protocol version ${JSON.stringify(raw.v)}, expected ${WEBVIEW_PROTOCOL_VERSION}`);
  }
  const type = raw.type;
  if (typeof type !== 'string' || !Object.prototype.hasOwnProperty.call(shapes, type)) {
    throw new WebviewProtocolError(`unknown ${side} message type ${JSON.stringify(type)}`);
  }
  for (const [field, check] of Object.entries(shapes[type])) {
    if (!check(raw[field])) throw new WebviewProtocolError(`${side} message "${type}": field "${field}" is malformed`);
  }
  if (type === 'query' && raw.source === 'path' && raw.path === undefined) {
    throw new WebviewProtocolError(`${side} message "query": source "path" needs a path`);
  }
  return raw as T;
}

/** Validates what the extension receives from the panel. Throws WebviewProtocolError. */
export function parseFromWebview(raw: unknown): FromWebviewMessage {
  return validate<FromWebviewMessage>(raw, FROM_WEBVIEW, 'webview');
}

/** Validates what the panel receives from the extension. Throws WebviewProtocolError. */
export function parseToWebview(raw: unknown): ToWebviewMessage {
  return validate<ToWebviewMessage>(raw, TO_WEBVIEW, 'extension');
}

/** A message without its version field (distributes over the union, member by member). */
export type WebviewMessageBody<T> = T extends unknown ? Omit<T, 'v'> : never;

/** Builds a message with the version filled in. */
export function webviewMessage<B extends WebviewMessageBody<ToWebviewMessage | FromWebviewMessage>>(body: B): B & { v: number } {
  return { v: WEBVIEW_PROTOCOL_VERSION, ...body };
}
