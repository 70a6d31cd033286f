// Synchronous data-parallel training over worker threads, for the single-threaded backends.
//
// wasm (and cpu) run one thread in Node, so on an N-core machine one process leaves N−1 cores
// idle. Each step the batch is split into equal shards: the main thread trains on the first, each
// replica thread (its own tfjs + wasm instance, same weights) on one of the others. The main
// thread gathers the shard gradients, averages them in a fixed order and sends the average back;
// every replica applies the same average with the same SGD, so all stay bitwise identical. The
// update equals the single-process one with the full batch, except that batch-norm statistics come
// from each shard ("ghost batch norm", as per-GPU BN in the official multi-GPU recipe).
//
// A shard too large for one pass (the wasm heap holds 4 GiB) is split further into micro-batches,
// run one after another on the same thread; their gradients, weighted by their images, add up to
// the shard's. The same trainer runs them on one thread when there are no replicas.
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from '../config';
import type { SgdMomentum, ParameterGroup } from '../optimizer';
import { computeGradients, readAndDispose } from '../step';

/** The thread's entry point, compiled next to this module (out/ and the bundle's dist/). */
const REPLICA_WORKER_FILE = 'replicaWorker.js';
/** Below this many images per shard, batch-norm statistics get too noisy to be worth the speed. */
export const MIN_SHARD = 8;

export type ModelArchitecture = Parameters<typeof tf.models.modelFromJSON>[0];

export interface ReplicaInit {
  config: TrainConfig;
  backend: string;
  /** The main model's architecture, so a replica has the same layers in the same order. */
  architecture: ModelArchitecture;
  /** model.getWeights() of the main model, trainable and not, in order. */
  weights: Float32Array[];
  /** Momentum buffers in trainable-variable order. */
  momentum: Float32Array[];
}

export type ReplicaRequest =
  | { kind: 'step'; view1: Float32Array; view2: Float32Array; count: number; microBatch: number; lrs: number[] }
  | { kind: 'apply'; gradients: Float32Array }
  | { kind: 'weights' };

/** A shard's gradient, loss and z-std, each summed over its micro-batches weighted by their images. */
export interface ShardSums { gradients: Float32Array; loss: number; zStd: number }

export type ReplicaReply =
  | { kind: 'ready' }
  | ({ kind: 'gradients' } & ShardSums)
  | { kind: 'weights'; weights: Float32Array }
  | { kind: 'error'; message: string };

/** How many shards a batch is split into: one per core on single-threaded backends. */
export function replicaCount(config: TrainConfig, backendName: string, cores = os.availableParallelism()): number {
  if (backendName !== 'wasm' && backendName !== 'cpu') return 1; // TensorFlow's own backends use every core already
  const wanted = config.replicas > 0 ? config.replicas : Math.min(cores, 4);
  for (let n = wanted; n > 1; n--) {
    if (config.batchSize % n === 0 && config.batchSize / n >= MIN_SHARD) return n;
  }
  return 1;
}

/** Trainable variables' values (or gradients) as one flat array, in variable order. */
export function flatten(tensors: tf.Tensor[]): Float32Array {
  const flat = new Float32Array(tensors.reduce((n, t) => n + t.size, 0));
  let offset = 0;
  for (const t of tensors) {
    flat.set(t.dataSync() as Float32Array, offset);
    offset += t.size;
  }
  return flat;
}

/** Gradients keyed by variable name from a flat array in variable order. */
export function unflatten(flat: Float32Array, variables: tf.Variable[]): Record<string, tf.Tensor> {
  const grads: Record<string, tf.Tensor> = {};
  let offset = 0;
  for (const v of variables) {
    grads[v.name] = tf.tensor(flat.subarray(offset, offset + v.size), v.shape, 'float32');
    offset += v.size;
  }
  return grads;
}

/** Sizes of the micro-batches a shard of `count` images is split into: as even as can be, none above `microBatch`. */
export function microBatchSizes(count: number, microBatch: number): number[] {
  const parts = microBatch > 0 ? Math.ceil(count / microBatch) : 1;
  const base = Math.floor(count / parts);
  return Array.from({ length: parts }, (_, i) => base + (i < count % parts ? 1 : 0));
}

/** Forward and backward of one thread's shard, micro-batch after micro-batch (see the top of this file). */
export function shardGradients(model: tf.LayersModel, variables: tf.Variable[], view1: Float32Array, view2: Float32Array,
  count: number, imageSize: number, microBatch: number): ShardSums {
  const floatsPerImage = imageSize * imageSize * 3;
  let sums: ShardSums | null = null;
  let start = 0;
  for (const images of microBatchSizes(count, microBatch)) {
    const shape: [number, number, number, number] = [images, imageSize, imageSize, 3];
    const [from, to] = [start * floatsPerImage, (start + images) * floatsPerImage];
    const x1 = tf.tensor4d(view1.subarray(from, to), shape);
    const x2 = tf.tensor4d(view2.subarray(from, to), shape);
    const gradients = computeGradients(model, x1, x2, variables);
    tf.dispose([x1, x2]);
    const flat = flatten(variables.map((v) => gradients.grads[v.name]));
    const { loss, zStd } = readAndDispose(gradients);
    if (sums === null) {
      for (let i = 0; i < flat.length; i++) flat[i] *= images;
      sums = { gradients: flat, loss: loss * images, zStd: zStd * images };
    } else {
      for (let i = 0; i < flat.length; i++) sums.gradients[i] += images * flat[i];
      sums.loss += loss * images;
      sums.zStd += zStd * images;
    }
    start += images;
  }
  return sums!;
}

class Replica {
  private readonly worker: Worker;
  private pending: { resolve: (r: ReplicaReply) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;

  constructor(init: ReplicaInit) {
    this.worker = new Worker(path.join(__dirname, REPLICA_WORKER_FILE), { workerData: init });
    this.worker.on('message', (reply: ReplicaReply) => {
      const waiter = this.pending;
      this.pending = null;
      if (reply.kind === 'error') waiter?.reject(new Error(`training replica: ${reply.message}`));
      else waiter?.resolve(reply);
    });
    const fail = (error: Error) => {
      this.failure = error;
      this.pending?.reject(error);
      this.pending = null;
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`a training replica thread stopped (exit code ${code})`)));
  }

  /** Sends a request; resolves with the reply when one is expected. */
  request(message: ReplicaRequest, transfer: ArrayBuffer[] = []): Promise<ReplicaReply> {
    if (this.failure) return Promise.reject(this.failure);
    const reply = new Promise<ReplicaReply>((resolve, reject) => {
      this.pending = { resolve, reject };
    });
    this.worker.postMessage(message, transfer);
    return reply;
  }

  send(message: ReplicaRequest): void {
    if (this.failure) throw this.failure;
    this.worker.postMessage(message);
  }

  waitReady(): Promise<ReplicaReply> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
    });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

/** Runs training steps on the main model plus replica threads, one shard each, each in micro-batches of at most `microBatch` images. */
export class DataParallelTrainer {
  private constructor(
    private readonly model: tf.LayersModel,
    private readonly variables: tf.Variable[],
    private readonly optimizer: SgdMomentum,
    private readonly replicas: Replica[],
    private readonly imageSize: number,
    /** Images per pass on one thread; 0 = a whole shard. */
    readonly microBatch: number,
  ) {}

  static async create(model: tf.LayersModel, variables: tf.Variable[], optimizer: SgdMomentum, config: TrainConfig,
    backend: string, shards: number, microBatch = 0): Promise<DataParallelTrainer> {
    const init: ReplicaInit = {
      config, backend, architecture: { modelTopology: model.toJSON(null, false) } as ModelArchitecture,
      weights: model.getWeights().map((w) => w.dataSync() as Float32Array),
      momentum: optimizer.bufferValues(variables).map((b) => b.dataSync() as Float32Array),
    };
    const replicas = Array.from({ length: shards - 1 }, () => new Replica(init));
    try {
      await Promise.all(replicas.map((r) => r.waitReady()));
    } catch (error) {
      await Promise.all(replicas.map((r) => r.close()));
      throw error;
    }
    return new DataParallelTrainer(model, variables, optimizer, replicas, config.imageSize, microBatch);
  }

  get shards(): number {
    return this.replicas.length + 1;
  }

  async step(view1: Float32Array, view2: Float32Array, count: number, groups: ParameterGroup[]): Promise<{ loss: number; zStd: number }> {
    const shard = Math.floor(count / this.shards);
    const lrs = groups.map((g) => g.lr);
    const floats = shard * this.imageSize * this.imageSize * 3;
    const slice = (view: Float32Array, i: number) => view.slice(i * floats, (i + 1) * floats);
    const microBatch = this.microBatch;
    const replies = this.replicas.map((replica, r) => {
      const a = slice(view1, r + 1);
      const b = slice(view2, r + 1);
      return replica.request({ kind: 'step', view1: a, view2: b, count: shard, microBatch, lrs }, [a.buffer as ArrayBuffer, b.buffer as ArrayBuffer]);
    });

    const own = shardGradients(this.model, this.variables, view1.subarray(0, floats), view2.subarray(0, floats), shard,
      this.imageSize, microBatch);
    const mean = own.gradients;
    let { loss, zStd } = own;
    for (const reply of await Promise.all(replies)) {
      if (reply.kind !== 'gradients') throw new Error(`training replica answered ${reply.kind} to a step`);
      for (let i = 0; i < mean.length; i++) mean[i] += reply.gradients[i];
      loss += reply.loss;
      zStd += reply.zStd;
    }
    const scale = 1 / (shard * this.shards);
    for (let i = 0; i < mean.length; i++) mean[i] *= scale;
    for (const replica of this.replicas) replica.send({ kind: 'apply', gradients: mean });
    const grads = unflatten(mean, this.variables);
    this.optimizer.step(groups, grads);
    tf.dispose(Object.values(grads));
    return { loss: loss * scale, zStd: zStd * scale };
  }

  /** A replica's trainable weights, flat: tests use it to check that replicas stay in step. */
  async replicaWeights(index: number): Promise<Float32Array> {
    const reply = await this.replicas[index].request({ kind: 'weights' });
    if (reply.kind !== 'weights') throw new Error(`training replica answered ${reply.kind} to weights`);
    return reply.weights;
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.close()));
  }
}
