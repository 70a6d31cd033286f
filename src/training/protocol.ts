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
/** What this machine offers the engine: backends (each tried), GPU adapters, versions. */
const EnvironmentRequestSchema = versioned('environment', {});

const HostMessageSchema = v.variant('type', [
  TrainRequestSchema, ResumeRequestSchema, StopRequestSchema, EmbedRequestSchema, SimilarRequestSchema,
  EnvironmentRequestSchema,
]);

export type TrainRequest = v.InferOutput<typeof TrainRequestSchema>;
export type ResumeRequest = v.InferOutput<typeof ResumeRequestSchema>;
export type StopRequest = v.InferOutput<typeof StopRequestSchema>;
export type EmbedRequest = v.InferOutput<typeof EmbedRequestSchema>;
export type SimilarRequest = v.InferOutput<typeof SimilarRequestSchema>;
export type EnvironmentRequest = v.InferOutput<typeof EnvironmentRequestSchema>;
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
const EnvironmentMessageSchema = versioned('environment', { lines: v.array(text), backends: v.array(BackendStatusSchema) });

const EngineMessageSchema = v.variant('type', [
  StartedMessageSchema, MetricMessageSchema, WarningMessageSchema, CheckpointMessageSchema, DoneMessageSchema, CancelledMessageSchema,
  ErrorMessageSchema, ProgressMessageSchema, SimilarResultMessageSchema, EmbedResultMessageSchema, EnvironmentMessageSchema,
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
export type BackendStatus = v.InferOutput<typeof BackendStatusSchema>;
export type EnvironmentMessage = v.InferOutput<typeof EnvironmentMessageSchema>;
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
