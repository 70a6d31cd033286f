// The message protocol between the embedding map panel's host side (src/host/embeddingMap/) and
// its webview script (media/src/embeddingMap/): the map of a run's images and its data views.
// Built like the experiment panel's (./protocol.ts): versioned, every message checked on receipt
// with valibot, nested fields included. Paths the webview names are dataset-relative and are
// checked again by the host (src/host/panel/pathGuard.ts). Free of `vscode`, Node and the DOM.
import * as v from 'valibot';
import { count, finite, VersionedProtocol, type MessageBody } from '../training/versioned';

export const MAP_PROTOCOL_VERSION = 1;

export class MapProtocolError extends Error {}

const protocol = new VersionedProtocol(MAP_PROTOCOL_VERSION, MapProtocolError);
const versioned = protocol.message;
const text = v.string();
const MAX_PATH_LENGTH = 4096;
const pathText = v.pipe(v.string(), v.minLength(1), v.maxLength(MAX_PATH_LENGTH));

export const MAP_TABS = ['map', 'views'] as const;
export type MapTab = (typeof MAP_TABS)[number];
export const METHODS = ['pca', 'umap'] as const;
export type Method = (typeof METHODS)[number];
export const VIEWS = ['duplicates', 'labelIssues', 'outliers', 'redundant'] as const;
export type ViewName = (typeof VIEWS)[number];
export const VIEW_TITLES: Record<ViewName, string> = {
  duplicates: 'Near-duplicates', labelIssues: 'Possible label issues', outliers: 'Outliers (most unique)', redundant: 'Most redundant',
};
export const COLOR_BY = ['class', 'split'] as const;
export type ColorBy = (typeof COLOR_BY)[number];

/** What the page starts from and saves with setState (a window reload brings it back). */
export const MapPanelStateSchema = v.object({
  runDir: pathText,
  tab: v.optional(v.picklist(MAP_TABS)),
  method: v.optional(v.picklist(METHODS)),
  colorBy: v.optional(v.picklist(COLOR_BY)),
  view: v.optional(v.picklist(VIEWS)),
  threshold: v.optional(v.pipe(finite, v.minValue(-1), v.maxValue(1))),
});
export type MapPanelState = v.InferOutput<typeof MapPanelStateSchema>;

export function parseMapPanelState(raw: unknown): MapPanelState | null {
  const result = v.safeParse(MapPanelStateSchema, raw);
  return result.success ? result.output : null;
}

// ---- extension → webview -------------------------------------------------------------------

const InitSchema = versioned('init', {
  runName: text,
  /** Webview URI of the dataset root: a thumbnail's src is this + '/' + its encoded relative path. */
  imageBase: text,
  classes: v.array(text),
});
const BusySchema = versioned('busy', { target: v.picklist(MAP_TABS), text });
const ErrorSchema = versioned('error', { target: v.picklist(MAP_TABS), message: text });
const sameLengths = (columns: unknown[][]) => new Set(columns.map((c) => c.length)).size <= 1;
const MapSchema = v.pipe(
  versioned('map', {
    method: v.picklist(METHODS), checkpointStep: count, cached: v.boolean(), classes: v.array(text),
    paths: v.array(text), labels: v.array(v.nullable(count)), splits: v.array(v.picklist(['train', 'test'])),
    x: v.array(finite), y: v.array(finite),
  }),
  v.check((m) => sameLengths([m.paths, m.labels, m.splits, m.x, m.y]), 'has columns of different lengths'),
);
export const ViewItemSchema = v.object({ path: text, label: v.nullable(text), score: finite, suggested: v.nullable(text) });
export type ViewItem = v.InferOutput<typeof ViewItemSchema>;
const ViewSchema = versioned('view', {
  view: v.picklist(VIEWS), checkpointStep: count, k: count, threshold: v.nullable(finite),
  /** Ranked views: one group per item; near-duplicates: one group per set of duplicates. */
  groups: v.array(v.object({ items: v.array(ViewItemSchema), minScore: v.nullable(finite) })),
});
const ShowTabSchema = versioned('showTab', { tab: v.picklist(MAP_TABS), view: v.optional(v.picklist(VIEWS)) });

const ToWebviewSchema = v.variant('type', [InitSchema, BusySchema, ErrorSchema, MapSchema, ViewSchema, ShowTabSchema]);
export type ToMapWebviewMessage = v.InferOutput<typeof ToWebviewSchema>;
export type MapMessage = v.InferOutput<typeof MapSchema>;
export type ViewMessage = v.InferOutput<typeof ViewSchema>;

// ---- webview → extension -------------------------------------------------------------------

const ReadySchema = versioned('ready', {});
const RequestMapSchema = versioned('requestMap', { method: v.picklist(METHODS) });
const RequestViewSchema = versioned('requestView', {
  view: v.picklist(VIEWS), k: v.pipe(count, v.minValue(1), v.maxValue(100)), threshold: v.pipe(finite, v.minValue(-1), v.maxValue(1)),
});
const ImageActionSchema = versioned('image', { action: v.picklist(['open', 'reveal', 'gallery']), path: pathText });
/** What the page drew, for tests and diagnostics: points on the map, the selection, the view's rows. */
const RenderedSchema = versioned('rendered', {
  tab: v.picklist(MAP_TABS), method: v.nullable(v.picklist(METHODS)), points: count, selected: count,
  selectedPaths: v.array(text), view: v.nullable(v.picklist(VIEWS)), viewPaths: v.array(text), frameMs: v.nullable(finite),
});

const FromWebviewSchema = v.variant('type', [ReadySchema, RequestMapSchema, RequestViewSchema, ImageActionSchema, RenderedSchema]);
export type FromMapWebviewMessage = v.InferOutput<typeof FromWebviewSchema>;
export type MapRenderedReport = v.InferOutput<typeof RenderedSchema>;

export function parseFromMapWebview(raw: unknown): FromMapWebviewMessage {
  return protocol.parse(FromWebviewSchema, raw, 'embedding map webview');
}

export function parseToMapWebview(raw: unknown): ToMapWebviewMessage {
  return protocol.parse(ToWebviewSchema, raw, 'extension');
}

export function mapMessage<B extends MessageBody<ToMapWebviewMessage | FromMapWebviewMessage>>(body: B): B & { v: typeof MAP_PROTOCOL_VERSION } {
  return protocol.stamp(body);
}

/** A thumbnail's src from the dataset root's webview URI and a '/'-separated relative path. */
export function imageSrc(imageBase: string, relPath: string): string {
  return `${imageBase.replace(/\/$/, '')}/${relPath.split('/').map(encodeURIComponent).join('/')}`;
}
