// Image files → embeddings with a run's checkpoint. The vectors come from the trainer's
// embedRecords, the same deterministic centre view and l2-normalised backbone features the kNN
// monitor evaluates, so retrieval ranks images by exactly what the run reports on.
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { loadModel } from '../run/checkpoint';
import type { CheckpointPointer } from '../run/runStore';
import { embedRecords } from '../embedding';
import { decodeImage, ImageDecodeError } from '../data/imageDecode';
import type { ImageRecord } from '../data/dataset';
import type { EmbeddedFiles } from './embeddingIndex';

export interface CheckpointModel {
  model: tf.LayersModel;
  checkpoint: CheckpointPointer;
  /** The checkpoint's folder, for messages. */
  dir: string;
  /** Side of the square images the model takes. */
  imageSize: number;
  /** Length of a feature vector. */
  dims: number;
}

/** The model of `checkpoint`; one that fails a check is refused with an error naming its file. */
export async function loadCheckpointModel(runDir: string, checkpoint: CheckpointPointer): Promise<CheckpointModel> {
  const { model, imageSize, featureDims } = await loadModel(runDir, checkpoint);
  return { model, checkpoint, dir: path.join(runDir, checkpoint.dir), imageSize, dims: featureDims };
}

/** Why `file` cannot be decoded, asked again for the few files embedRecords left out. */
async function decodeFailure(file: string, imageSize: number): Promise<string> {
  try {
    await decodeImage(file, imageSize);
    return 'it could not be decoded when it was embedded (was it being written?)';
  } catch (error) {
    return error instanceof ImageDecodeError ? error.reason : (error as Error).message;
  }
}

/** Embeds `files` in batches; undecodable ones are reported in `failed`, not thrown. */
export async function embedFiles(loaded: CheckpointModel, files: { path: string; relPath: string }[], imageSize: number,
  onProgress?: (done: number) => void): Promise<EmbeddedFiles> {
  if (imageSize !== loaded.imageSize) {
    // Only an edited run.json disagrees with its own checkpoint; tfjs would fail with a shape error.
    throw new Error(`Checkpoint ${loaded.dir} takes ${loaded.imageSize} px images, but the run's run.json asks for ${imageSize} px: ` +
      `set imageSize back to ${loaded.imageSize} in run.json.`);
  }
  const records: ImageRecord[] = files.map((f) => ({ path: f.path, relPath: f.relPath, label: null, split: 'train' }));
  const { features, kept } = await embedRecords(loaded.model, records, imageSize, onProgress);
  let vectors: Float32Array;
  try {
    vectors = kept.length ? (await features.data()) as Float32Array : new Float32Array(0);
  } finally {
    features.dispose();
  }
  const keptSet = new Set(kept);
  const failed: EmbeddedFiles['failed'] = [];
  for (let position = 0; position < files.length; position++) {
    if (!keptSet.has(position)) failed.push({ position, reason: await decodeFailure(files[position].path, imageSize) });
  }
  return { vectors, dims: loaded.dims, kept, failed };
}

/** The embedding of one query file; a missing or undecodable file is an error that names it. */
export async function embedQuery(loaded: CheckpointModel, file: string, imageSize: number): Promise<Float32Array> {
  const embedded = await embedFiles(loaded, [{ path: file, relPath: path.basename(file) }], imageSize);
  if (embedded.failed.length) {
    throw new Error(`Cannot use ${file} as a query image: ${embedded.failed[0].reason}`);
  }
  return embedded.vectors;
}
