// The one message protocol between the engine process (src/training) and whoever drives it:
// the VS Code extension through child_process.fork, or the CLI's `--json` output.
// It imports nothing from tfjs so the extension can use it without loading the engine.
// Every message carries the protocol version; receivers validate before acting.

export const PROTOCOL_VERSION = 1;

export type RunStatus = 'running' | 'completed' | 'stopped' | 'failed' | 'interrupted';

export interface DatasetSummary {
  root: string;
  trainImages: number;
  testImages: number;
  classes: string[];
}

// ---- host → engine -------------------------------------------------------------------------

export interface TrainRequest {
  v: number; type: 'train';
  folder: string;
  preset: string;
  /** TrainConfig fields to override; validated by the engine. */
  overrides: Record<string, unknown>;
  /** Parent folder for run folders; default <folder>/.simsiam/runs. */
  runsDir?: string;
  name?: string;
}
export interface ResumeRequest { v: number; type: 'resume'; runDir: string; /** Raise the epoch budget. */ epochs?: number }
export interface StopRequest { v: number; type: 'stop' }
export interface EmbedRequest { v: number; type: 'embed'; runDir: string }
export interface SimilarRequest { v: number; type: 'similar'; runDir: string; image: string; k: number }

export type HostMessage = TrainRequest | ResumeRequest | StopRequest | EmbedRequest | SimilarRequest;

// ---- engine → host -------------------------------------------------------------------------

export interface StartedMessage {
  v: number; type: 'started';
  runDir: string;
  runId: string;
  backend: string;
  config: Record<string, unknown>;
  dataset: DatasetSummary;
  /** 0 for a new run; the step it continues from when resumed. */
  startStep: number;
  batchesPerEpoch: number;
  /** kNN top-1 of the untrained network (new labelled runs only): the baseline to read the curve against. */
  initialKnnTop1: number | null;
}
export interface StepMessage {
  v: number; type: 'step';
  step: number; epoch: number; batch: number; batchesPerEpoch: number;
  loss: number; lr: number;
}
export interface EpochMessage {
  v: number; type: 'epoch';
  epoch: number; epochs: number; step: number;
  meanLoss: number;
  lr: number;
  /** Collapse monitor: std over the batch of l2-normalised z, averaged over channels. */
  zStd: number;
  /** 1/√d: what zStd is for a healthy, uncollapsed representation. */
  zStdReference: number;
  knnTop1: number | null;
  imagesPerSecond: number;
  seconds: number;
}
export interface WarningMessage { v: number; type: 'warning'; message: string; file?: string }
export interface CheckpointMessage { v: number; type: 'checkpoint'; step: number; epoch: number; dir: string }
export interface DoneMessage { v: number; type: 'done'; status: 'completed' | 'stopped'; step: number; epoch: number; runDir: string }
export interface ErrorMessage { v: number; type: 'error'; message: string; detail?: string }
export interface ProgressMessage { v: number; type: 'progress'; task: string; done: number; total: number }
export interface Neighbour { path: string; score: number; label: string | null }
export interface SimilarResultMessage { v: number; type: 'similarResult'; query: string; neighbours: Neighbour[] }
export interface EmbedResultMessage { v: number; type: 'embedResult'; runDir: string; images: number; reembedded: number }

export type EngineMessage =
  | StartedMessage | StepMessage | EpochMessage | WarningMessage | CheckpointMessage | DoneMessage
  | ErrorMessage | ProgressMessage | SimilarResultMessage | EmbedResultMessage;

// ---- validation ----------------------------------------------------------------------------

type FieldKind = 'string' | 'number' | 'finite' | 'object' | 'array' | 'numberOrNull' | '?string' | '?number';
type Shape = Record<string, FieldKind>;

const HOST_SHAPES: Record<HostMessage['type'], Shape> = {
  train: { folder: 'string', preset: 'string', overrides: 'object', runsDir: '?string', name: '?string' },
  resume: { runDir: 'string', epochs: '?number' },
  stop: {},
  embed: { runDir: 'string' },
  similar: { runDir: 'string', image: 'string', k: 'finite' },
};

const ENGINE_SHAPES: Record<EngineMessage['type'], Shape> = {
  started: { runDir: 'string', runId: 'string', backend: 'string', config: 'object', dataset: 'object', startStep: 'finite', batchesPerEpoch: 'finite', initialKnnTop1: 'numberOrNull' },
  // loss is 'number' (not finite) so a NaN can be reported before the run stops on it.
  step: { step: 'finite', epoch: 'finite', batch: 'finite', batchesPerEpoch: 'finite', loss: 'number', lr: 'finite' },
  epoch: { epoch: 'finite', epochs: 'finite', step: 'finite', meanLoss: 'number', lr: 'finite', zStd: 'number', zStdReference: 'finite', knnTop1: 'numberOrNull', imagesPerSecond: 'finite', seconds: 'finite' },
  warning: { message: 'string', file: '?string' },
  checkpoint: { step: 'finite', epoch: 'finite', dir: 'string' },
  done: { status: 'string', step: 'finite', epoch: 'finite', runDir: 'string' },
  error: { message: 'string', detail: '?string' },
  progress: { task: 'string', done: 'finite', total: 'finite' },
  similarResult: { query: 'string', neighbours: 'array' },
  embedResult: { runDir: 'string', images: 'finite', reembedded: 'finite' },
};

function fieldMatches(kind: FieldKind, value: unknown): boolean {
  switch (kind) {
    case 'string': return typeof value === 'string';
    case 'number': return typeof value === 'number';
    case 'finite': return typeof value === 'number' && Number.isFinite(value);
    case 'object': return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'array': return Array.isArray(value);
    case 'numberOrNull': return value === null || typeof value === 'number';
    case '?string': return value === undefined || typeof value === 'string';
    case '?number': return value === undefined || (typeof value === 'number' && Number.isFinite(value));
  }
}

export class ProtocolError extends Error {}

function validate<T>(raw: unknown, shapes: Record<string, Shape>, side: string): T {
  if (typeof raw !== 'object' || raw === null) throw new ProtocolError(`${side} message is not an object`);
  const message = raw as Record<string, unknown>;
  if (message.v !== PROTOCOL_VERSION) {
    throw new ProtocolError(`${side} message has protocol version ${JSON.stringify(message.v)}, expected ${PROTOCOL_VERSION}`);
  }
  const shape = typeof message.type === 'string' ? shapes[message.type] : undefined;
  if (!shape || !Object.prototype.hasOwnProperty.call(shapes, message.type as string)) {
    throw new ProtocolError(`unknown ${side} message type ${JSON.stringify(message.type)}`);
  }
  for (const [field, kind] of Object.entries(shape)) {
    if (!fieldMatches(kind, message[field])) {
      throw new ProtocolError(`${side} message "${message.type}": field "${field}" must be ${kind}`);
    }
  }
  return message as T;
}

export function parseHostMessage(raw: unknown): HostMessage {
  return validate<HostMessage>(raw, HOST_SHAPES, 'host');
}

export function parseEngineMessage(raw: unknown): EngineMessage {
  return validate<EngineMessage>(raw, ENGINE_SHAPES, 'engine');
}

/** A message without its version field (distributes over the union, member by member). */
export type MessageBody<T> = T extends unknown ? Omit<T, 'v'> : never;

/** Builds a message with the version filled in; the body is checked against the message types. */
export function message<B extends MessageBody<EngineMessage | HostMessage>>(body: B): B & { v: number } {
  return { v: PROTOCOL_VERSION, ...body };
}
