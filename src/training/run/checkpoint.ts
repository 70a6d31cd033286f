// Checkpoints in the standard tfjs layers format (model.json + weights.bin: loadable by tfjs-node
// and by Python's tensorflowjs converter) plus the optimizer's momentum buffers and the step.
// Each is written into a fresh folder that is renamed into place, then checkpoint.json is
// switched to it atomically: a crash or a full disk mid-write leaves the previous one usable.
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { CHECKPOINT_POINTER, readCheckpointPointer, readJson, writeJsonAtomic } from './runStore';

const CHECKPOINTS_DIR = 'checkpoints';
const KEEP_CHECKPOINTS = 2;


export interface LoadedCheckpoint {
  model: tf.LayersModel;
  /** Momentum buffers keyed by the parameter's original (layer/weight) name. */
  optimizerState: Record<string, tf.Tensor>;
  step: number;
  epoch: number;
}

function weightBytes(data: tf.io.WeightData | undefined): Uint8Array {
  if (!data) return new Uint8Array(0);
  const buffer = Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data;
  return new Uint8Array(buffer);
}

async function writeModel(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const modelJson = {
      format: 'layers-model',
      generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
      convertedBy: null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
    };
    fs.writeFileSync(path.join(dir, 'weights.bin'), weightBytes(artifacts.weightData));
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(modelJson));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
}

export async function loadModel(dir: string): Promise<tf.LayersModel> {
  const modelJson = readJson<{ modelTopology: object; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] }>(
    path.join(dir, 'model.json'));
  const weights = fs.readFileSync(path.join(dir, 'weights.bin'));
  return tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: modelJson.modelTopology,
    weightSpecs: modelJson.weightsManifest.flatMap((group) => group.weights),
    weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
  }));
}

export async function saveCheckpoint(runDir: string, model: tf.LayersModel, optimizerState: Record<string, tf.Tensor>,
  step: number, epoch: number): Promise<string> {
  const checkpointsDir = path.join(runDir, CHECKPOINTS_DIR);
  fs.mkdirSync(checkpointsDir, { recursive: true });
  const name = `step-${String(step).padStart(8, '0')}`;
  const finalDir = path.join(checkpointsDir, name);
  const temporaryDir = path.join(checkpointsDir, `.tmp-${name}-${process.pid}`);
  fs.rmSync(temporaryDir, { recursive: true, force: true });
  fs.mkdirSync(temporaryDir);
  try {
    await writeModel(model, temporaryDir);
    const encoded = await tf.io.encodeWeights(optimizerState);
    fs.writeFileSync(path.join(temporaryDir, 'optimizer.bin'), weightBytes(encoded.data));
    fs.writeFileSync(path.join(temporaryDir, 'optimizer.json'), JSON.stringify({ step, epoch, specs: encoded.specs }));
    fs.rmSync(finalDir, { recursive: true, force: true });
    fs.renameSync(temporaryDir, finalDir);
  } catch (error) {
    fs.rmSync(temporaryDir, { recursive: true, force: true });
    throw new Error(`Could not write a checkpoint in ${checkpointsDir}: ${(error as Error).message}. ` +
      'The previous checkpoint is kept; free disk space or fix permissions, then resume.');
  }
  writeJsonAtomic(path.join(runDir, CHECKPOINT_POINTER), { dir: path.join(CHECKPOINTS_DIR, name), step, epoch });
  pruneCheckpoints(checkpointsDir, name);
  return finalDir;
}

function pruneCheckpoints(checkpointsDir: string, newest: string): void {
  const names = fs.readdirSync(checkpointsDir);
  const old = names.filter((n) => n.startsWith('step-') && n !== newest).sort();
  // A process killed while writing a checkpoint leaves its temporary folder (a full model's worth of
  // bytes). Only one process trains a run and its own was just renamed, so any left now is such a leftover.
  const leftovers = names.filter((n) => n.startsWith('.tmp-'));
  for (const name of [...old.slice(0, Math.max(0, old.length - (KEEP_CHECKPOINTS - 1))), ...leftovers]) {
    fs.rmSync(path.join(checkpointsDir, name), { recursive: true, force: true });
  }
}

export async function loadCheckpoint(runDir: string): Promise<LoadedCheckpoint | null> {
  const pointer = readCheckpointPointer(runDir);
  if (!pointer) return null;
  const dir = path.join(runDir, pointer.dir);
  const model = await loadModel(dir);
  const meta = readJson<{ specs: tf.io.WeightsManifestEntry[] }>(path.join(dir, 'optimizer.json'));
  const bytes = fs.readFileSync(path.join(dir, 'optimizer.bin'));
  const optimizerState = tf.io.decodeWeights(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), meta.specs);
  return { model, optimizerState, step: pointer.step, epoch: pointer.epoch };
}
