// Checkpoints in the standard tfjs layers format (model.json + weights.bin: loadable by tfjs-node
// and by Python's tensorflowjs converter) plus the optimizer's momentum buffers and the step.
// Each is written into a fresh folder that is renamed into place, then checkpoint.json is
// switched to it atomically: a crash or a full disk mid-write leaves the previous one usable.
// A checkpoint on disk is data, not trust: before tfjs sees it, every file is checked against the
// others (shapes, byte lengths, the SHA-256 it was written with) and every value for finiteness,
// and any problem is a CheckpointError that names the file and says what to do.
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import * as v from 'valibot';
import { count, describeIssue } from '../versioned';
import {
  CHECKPOINT_POINTER, CHECKPOINTS_DIR, checkpointFoldersOnDisk, checkpointSteps, readCheckpointPointer, writeJsonAtomic, type CheckpointPointer,
} from './runStore';

export { checkpointSteps };
import { runLockState } from './runLock';
import { digestOf, float32View, ownBuffer } from './fileChecks';

const KEEP_CHECKPOINTS = 2;
const MODEL_FILE = 'model.json';
const WEIGHTS_FILE = 'weights.bin';
const OPTIMIZER_FILE = 'optimizer.json';
const MOMENTUM_FILE = 'optimizer.bin';
/** `.tmp-<checkpoint name>-<pid of its writer>` */
const TEMPORARY_NAME = /^\.tmp-step-\d+-(\d+)$/;

/** A checkpoint that cannot be used. `problem` says what is wrong; the message adds what to do. */
export class CheckpointError extends Error {
  constructor(readonly problem: string, advice: string) {
    super(`${problem} ${advice}`);
  }
}

const Sha256Schema = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'is not a SHA-256 digest'));
const WeightSpecSchema = v.object({ name: v.pipe(v.string(), v.minLength(1)), shape: v.array(count), dtype: v.literal('float32') });
type WeightSpec = v.InferOutput<typeof WeightSpecSchema>;

const ModelJsonSchema = v.object({
  format: v.literal('layers-model'),
  modelTopology: v.looseObject({}),
  weightsManifest: v.strictTuple([v.object({ paths: v.strictTuple([v.literal(WEIGHTS_FILE)]), weights: v.array(WeightSpecSchema) })]),
  /** Checkpoints written before checksums have none. */
  userDefinedMetadata: v.optional(v.object({ weightsSha256: v.optional(Sha256Schema) })),
});

const OptimizerJsonSchema = v.object({
  step: count,
  epoch: count,
  /** Momentum buffers, named like the trainable weights of model.json. */
  specs: v.array(WeightSpecSchema),
  sha256: v.optional(Sha256Schema),
});

export interface LoadedCheckpoint {
  model: tf.LayersModel;
  /** Momentum buffers keyed by the parameter's original (layer/weight) name. */
  optimizerState: Record<string, tf.Tensor>;
  step: number;
  epoch: number;
  /** Side of the square images the model takes. */
  imageSize: number;
}

/** A checkpoint's model, checked to be a SimSiam model: one image input, three feature outputs. */
export interface LoadedModel {
  model: tf.LayersModel;
  imageSize: number;
  /** Length of a backbone feature vector (the representation retrieval ranks by). */
  featureDims: number;
}

const checkpointName = (step: number) => `step-${String(step).padStart(8, '0')}`;
const sizeOf = (shape: number[]) => shape.reduce((n, d) => n * d, 1);

function weightBytes(data: tf.io.WeightData | undefined): Uint8Array {
  if (!data) return new Uint8Array(0);
  const buffer = Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data;
  return new Uint8Array(buffer);
}

/**
 * Where `bytes` and `specs` disagree: a byte length other than the specs describe, or the first
 * non-finite value (a diverged run's weights) with the name of the weight that holds it.
 */
function valuesProblem(specs: { name: string; shape: number[]; dtype: string }[], bytes: Uint8Array, what: string,
  describer: string): string | null {
  const odd = specs.find((spec) => spec.dtype !== 'float32');
  if (odd) return `holds ${what} "${odd.name}" as ${odd.dtype}; a checkpoint holds float32 only`;
  const expected = specs.reduce((n, spec) => n + sizeOf(spec.shape), 0) * 4;
  if (bytes.byteLength !== expected) return `holds ${bytes.byteLength} bytes where ${describer} describes ${expected}`;
  const values = float32View(bytes);
  let offset = 0;
  for (const spec of specs) {
    const end = offset + sizeOf(spec.shape);
    for (let i = offset; i < end; i++) {
      if (!Number.isFinite(values[i])) return `holds ${values[i]} in ${what} "${spec.name}"`;
    }
    offset = end;
  }
  return null;
}

/** The model's specs and bytes as `model.save` gives them. */
function modelArtifacts(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  return new Promise((resolve, reject) => {
    model.save(tf.io.withSaveHandler(async (artifacts) => {
      resolve(artifacts);
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    })).catch(reject);
  });
}

/** Folders being written by this process now: the only temporaries of this PID that are not leftovers. */
const writing = new Set<string>();

/**
 * Removes half-written checkpoint folders (`.tmp-step-N-<pid>`) whose writer is gone: killed
 * mid-write. Only the holder of the run's training lock writes checkpoints, and the lock tells a
 * live holder from a dead one whose pid was reused, so another process's temporary is live only
 * while that process holds the lock (or while someone is taking it and the holder is not known yet).
 */
export function removeStaleTemporaries(runDir: string): void {
  const checkpointsDir = path.join(runDir, CHECKPOINTS_DIR);
  if (!fs.existsSync(checkpointsDir)) return;
  const lock = runLockState(runDir, 'training');
  for (const name of fs.readdirSync(checkpointsDir)) {
    const pid = Number(TEMPORARY_NAME.exec(name)?.[1] ?? 0);
    if (pid <= 0) continue;
    const dir = path.join(checkpointsDir, name);
    const live = pid === process.pid ? writing.has(dir) : lock.held && (lock.holder === null || lock.holder.pid === pid);
    if (!live) fs.rmSync(dir, { recursive: true, force: true });
  }
}

function pointTo(runDir: string, name: string, step: number, epoch: number): void {
  writeJsonAtomic(path.join(runDir, CHECKPOINT_POINTER), { dir: path.join(CHECKPOINTS_DIR, name), step, epoch });
}

export async function saveCheckpoint(runDir: string, model: tf.LayersModel, optimizerState: Record<string, tf.Tensor>,
  step: number, epoch: number): Promise<string> {
  const checkpointsDir = path.join(runDir, CHECKPOINTS_DIR);
  const name = checkpointName(step);
  const artifacts = await modelArtifacts(model);
  const weights = weightBytes(artifacts.weightData);
  const momentum = await tf.io.encodeWeights(optimizerState);
  const momentumBytes = weightBytes(momentum.data);
  // A checkpoint of a diverged model would become "the latest" and push the last good one out.
  const problem = valuesProblem(artifacts.weightSpecs ?? [], weights, 'weight', 'its manifest') ??
    valuesProblem(momentum.specs, momentumBytes, 'momentum', 'its specs');
  if (problem) {
    throw new Error(`Checkpoint ${name} was not written to ${checkpointsDir}: the model ${problem} (training diverged). ` +
      'The previous checkpoint is kept; lower the learning rate (baseLr) or check the images, then resume or start a new run.');
  }
  fs.mkdirSync(checkpointsDir, { recursive: true });
  removeStaleTemporaries(runDir);
  const finalDir = path.join(checkpointsDir, name);
  const temporaryDir = path.join(checkpointsDir, `.tmp-${name}-${process.pid}`);
  writing.add(temporaryDir);
  try {
    fs.rmSync(temporaryDir, { recursive: true, force: true });
    fs.mkdirSync(temporaryDir);
    const modelJson = {
      format: 'layers-model',
      generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
      convertedBy: null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs }],
      userDefinedMetadata: { weightsSha256: digestOf(weights) },
    };
    fs.writeFileSync(path.join(temporaryDir, WEIGHTS_FILE), weights);
    fs.writeFileSync(path.join(temporaryDir, MODEL_FILE), JSON.stringify(modelJson));
    fs.writeFileSync(path.join(temporaryDir, MOMENTUM_FILE), momentumBytes);
    fs.writeFileSync(path.join(temporaryDir, OPTIMIZER_FILE),
      JSON.stringify({ step, epoch, specs: momentum.specs, sha256: digestOf(momentumBytes) }));
    fs.rmSync(finalDir, { recursive: true, force: true });
    fs.renameSync(temporaryDir, finalDir);
  } catch (error) {
    fs.rmSync(temporaryDir, { recursive: true, force: true });
    throw new Error(`Could not write a checkpoint in ${checkpointsDir}: ${(error as Error).message}. ` +
      'The previous checkpoint is kept; free disk space or fix permissions, then resume.');
  } finally {
    writing.delete(temporaryDir);
  }
  pointTo(runDir, name, step, epoch);
  pruneCheckpoints(runDir, name);
  return finalDir;
}

function pruneCheckpoints(runDir: string, newest: string): void {
  const checkpointsDir = path.join(runDir, CHECKPOINTS_DIR);
  const old = checkpointFoldersOnDisk(runDir).map((c) => c.name).filter((n) => n !== newest).sort();
  for (const name of old.slice(0, Math.max(0, old.length - (KEEP_CHECKPOINTS - 1)))) {
    fs.rmSync(path.join(checkpointsDir, name), { recursive: true, force: true });
  }
}

/** Reads one checkpoint folder; every problem found becomes a CheckpointError naming the file. */
class CheckpointReader {
  readonly dir: string;

  constructor(private readonly runDir: string, readonly name: string) {
    this.dir = path.join(runDir, CHECKPOINTS_DIR, name);
  }

  fail(file: string, problem: string): never {
    const step = checkpointFoldersOnDisk(this.runDir).find((c) => c.name === this.name)?.step ?? Infinity;
    const earlier = checkpointFoldersOnDisk(this.runDir).find((c) => c.step < step);
    throw new CheckpointError(`Checkpoint ${this.dir} cannot be used: ${path.join(this.dir, file)} ${problem}.`, earlier
      ? `Resume the run to continue from the checkpoint before it (${path.join(CHECKPOINTS_DIR, earlier.name)}), or start a new run.`
      : 'The run has no earlier checkpoint: start a new run.');
  }

  bytes(file: string): Buffer {
    try {
      return fs.readFileSync(path.join(this.dir, file));
    } catch (error) {
      return this.fail(file, (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing' : `cannot be read (${(error as Error).message})`);
    }
  }

  json<S extends v.GenericSchema>(file: string, schema: S): v.InferOutput<S> {
    const text = this.bytes(file).toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      return this.fail(file, `is not JSON (${(error as Error).message})`);
    }
    const result = v.safeParse(schema, value);
    if (!result.success) this.fail(file, `is not a valid ${file}: ${describeIssue(result.issues)}`);
    return result.output;
  }

  /** Bytes of `file` after checking them against `specs` (read from `specFile`) and the digest they were written with. */
  values(file: string, specFile: string, specs: WeightSpec[], sha256: string | undefined, what: string): Uint8Array {
    const names = new Set<string>();
    for (const spec of specs) {
      if (names.has(spec.name)) this.fail(specFile, `describes ${what} "${spec.name}" twice`);
      names.add(spec.name);
    }
    const bytes = this.bytes(file);
    const problem = valuesProblem(specs, bytes, what, specFile);
    if (problem) this.fail(file, problem);
    if (sha256 !== undefined && digestOf(bytes) !== sha256) this.fail(file, 'does not match the checksum it was written with (damaged on disk)');
    return bytes;
  }

  async model(): Promise<LoadedModel> {
    const modelJson = this.json(MODEL_FILE, ModelJsonSchema);
    const specs = modelJson.weightsManifest[0].weights;
    const weights = this.values(WEIGHTS_FILE, MODEL_FILE, specs, modelJson.userDefinedMetadata?.weightsSha256, 'weight');
    let model: tf.LayersModel;
    try {
      model = await tf.loadLayersModel(tf.io.fromMemory({
        modelTopology: modelJson.modelTopology, weightSpecs: specs, weightData: ownBuffer(weights),
      }));
    } catch (error) {
      return this.fail(MODEL_FILE, `does not describe a model its weights fit (${(error as Error).message})`);
    }
    const [input] = model.inputs;
    const imageSize = input?.shape[1];
    const featureDims = model.outputs[0]?.shape[1];
    const isSimSiam = model.inputs.length === 1 && input.shape.length === 4 && typeof imageSize === 'number' &&
      input.shape[2] === imageSize && input.shape[3] === 3 && model.outputs.length === 3 &&
      model.outputs.every((output) => output.shape.length === 2 && typeof output.shape[1] === 'number');
    if (!isSimSiam || typeof featureDims !== 'number') {
      model.dispose();
      return this.fail(MODEL_FILE, 'does not describe a SimSiam model (one square RGB image input, three feature outputs)');
    }
    return { model, imageSize, featureDims };
  }

  /** The whole checkpoint; `pointer`, when given, must agree with the folder about the step. */
  async checkpoint(pointer: CheckpointPointer | null): Promise<LoadedCheckpoint> {
    const optimizer = this.json(OPTIMIZER_FILE, OptimizerJsonSchema);
    if (checkpointName(optimizer.step) !== this.name) this.fail(OPTIMIZER_FILE, `is for step ${optimizer.step}`);
    if (pointer && (pointer.step !== optimizer.step || pointer.epoch !== optimizer.epoch)) {
      this.fail(OPTIMIZER_FILE, `is for step ${optimizer.step}, epoch ${optimizer.epoch}, but ${CHECKPOINT_POINTER} says ` +
        `step ${pointer.step}, epoch ${pointer.epoch}`);
    }
    const momentum = this.values(MOMENTUM_FILE, OPTIMIZER_FILE, optimizer.specs, optimizer.sha256, 'momentum');
    const loaded = await this.model();
    const problem = momentumProblem(loaded.model, optimizer.specs);
    if (problem) {
      loaded.model.dispose();
      this.fail(OPTIMIZER_FILE, problem);
    }
    const optimizerState = tf.io.decodeWeights(ownBuffer(momentum), optimizer.specs);
    return { model: loaded.model, optimizerState, step: optimizer.step, epoch: optimizer.epoch, imageSize: loaded.imageSize };
  }
}

/** Where the optimizer's momentum buffers and the model's trainable weights disagree. */
function momentumProblem(model: tf.LayersModel, specs: WeightSpec[]): string | null {
  const specOf = new Map(specs.map((spec) => [spec.name, spec]));
  for (const weight of model.trainableWeights) {
    const spec = specOf.get(weight.originalName);
    if (!spec) return `has no momentum for the trainable weight "${weight.originalName}"`;
    if (spec.shape.join() !== weight.shape.join()) {
      return `gives momentum "${spec.name}" the shape [${spec.shape}], the weight has [${weight.shape}]`;
    }
    specOf.delete(weight.originalName);
  }
  const [extra] = specOf.keys();
  return extra === undefined ? null : `holds momentum "${extra}", which is no trainable weight of the model`;
}

/** The checkpoint folder `pointer` names, which must be one under the run's checkpoints/. */
function pointedReader(runDir: string, pointer: CheckpointPointer): CheckpointReader {
  const relative = path.relative(path.join(runDir, CHECKPOINTS_DIR), path.resolve(runDir, pointer.dir));
  if (relative !== checkpointName(pointer.step)) {
    throw new CheckpointError(`${path.join(runDir, CHECKPOINT_POINTER)} names "${pointer.dir}" for step ${pointer.step}, ` +
      `not ${path.join(CHECKPOINTS_DIR, checkpointName(pointer.step))}.`, 'Resume the run to continue from its newest intact checkpoint, or start a new run.');
  }
  return new CheckpointReader(runDir, relative);
}

/** The model of the checkpoint `pointer` names (for embedding: the optimizer state is not read). */
export async function loadModel(runDir: string, pointer: CheckpointPointer): Promise<LoadedModel> {
  return pointedReader(runDir, pointer).model();
}

/** The checkpoint that checkpoint.json names, or null before the first one; one that fails a check is refused. */
export async function loadCheckpoint(runDir: string): Promise<LoadedCheckpoint | null> {
  const pointer = readCheckpointPointer(runDir);
  return pointer && pointedReader(runDir, pointer).checkpoint(pointer);
}

/**
 * The newest checkpoint that passes every check: the one checkpoint.json names, else the newest
 * earlier one on disk, which checkpoint.json is then switched to (so a resume continues from it).
 * Each checkpoint refused on the way is passed to `onRefused`. Null when the run has no
 * checkpoint yet; a CheckpointError when none of them can be used.
 */
export async function loadLastGoodCheckpoint(runDir: string, onRefused: (refused: CheckpointError) => void): Promise<LoadedCheckpoint | null> {
  const refused: CheckpointError[] = [];
  const refuse = (error: unknown) => {
    if (!(error instanceof CheckpointError)) throw error;
    refused.push(error);
    onRefused(error);
  };
  let pointer: CheckpointPointer | null = null;
  try {
    pointer = readCheckpointPointer(runDir);
    // No pointer: before the first checkpoint, or a crash between a folder's rename and the
    // pointer's write; in the second case the folder on disk is the checkpoint to use.
    if (!pointer && checkpointFoldersOnDisk(runDir).length === 0) return null;
  } catch (error) {
    // A garbled checkpoint.json names no step: every checkpoint folder on disk is a candidate.
    refuse(new CheckpointError((error as Error).message, 'The newest intact checkpoint on disk is used instead.'));
  }
  if (pointer) {
    try {
      return await pointedReader(runDir, pointer).checkpoint(pointer);
    } catch (error) {
      refuse(error);
    }
  }
  for (const { name, step } of checkpointFoldersOnDisk(runDir)) {
    if (pointer && step >= pointer.step) continue;
    try {
      const loaded = await new CheckpointReader(runDir, name).checkpoint(null);
      pointTo(runDir, name, loaded.step, loaded.epoch);
      return loaded;
    } catch (error) {
      refuse(error);
    }
  }
  throw new CheckpointError(`No checkpoint of ${runDir} can be used: ${refused.map((e) => e.problem).join(' ') || 'there is none on disk.'}`,
    'Start a new run.');
}

/** The checkpoint at `step`, checked as a resume checks it, without its optimizer state. */
export async function loadCheckpointAt(runDir: string, step: number): Promise<Omit<LoadedCheckpoint, 'optimizerState'>> {
  const folder = checkpointFoldersOnDisk(runDir).find((f) => f.step === step);
  if (!folder) {
    const steps = checkpointSteps(runDir);
    throw new CheckpointError(`${runDir} has no checkpoint at step ${step}.`,
      steps.length ? `Its checkpoints on disk are at step ${steps.join(', ')}.` : 'It has no checkpoint yet.');
  }
  const { optimizerState, ...loaded } = await new CheckpointReader(runDir, folder.name).checkpoint(null);
  tf.dispose(Object.values(optimizerState));
  return loaded;
}

/**
 * For the NaN-loss rollback: the newest checkpoint that loads and holds finite values, made the
 * run's current one (see loadLastGoodCheckpoint); null when there is none.
 */
export async function lastGoodCheckpoint(runDir: string, onRefused: (refused: CheckpointError) => void = () => undefined): Promise<CheckpointPointer | null> {
  try {
    const loaded = await loadLastGoodCheckpoint(runDir, onRefused);
    if (!loaded) return null;
    loaded.model.dispose();
    tf.dispose(Object.values(loaded.optimizerState));
    return readCheckpointPointer(runDir);
  } catch (error) {
    if (error instanceof CheckpointError) return null;
    throw error;
  }
}
