// A data-parallel training replica (see dataParallel.ts): its own tfjs backend and model copy,
// trained on its shard of every batch with the gradient average the main thread sends back.
import { parentPort, workerData } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendSelection } from './backend';
import { SgdMomentum } from '../optimizer';
import { parametersOf, parameterGroups } from '../step';
import { flatten, shardGradients, unflatten, type ReplicaInit, type ReplicaReply, type ReplicaRequest } from './dataParallel';
// Registers the batch-norm layer class the topology names.
import '../model/batchNorm';

const init = workerData as ReplicaInit;
const port = parentPort!;
const reply = (message: ReplicaReply, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

async function start(): Promise<void> {
  await selectBackend(init.backend as BackendSelection);
  const model = await tf.models.modelFromJSON(init.architecture);
  const shapes = model.getWeights().map((w) => w.shape);
  const weights = init.weights.map((w, i) => tf.tensor(w, shapes[i], 'float32'));
  model.setWeights(weights);
  tf.dispose(weights);
  const parameters = parametersOf(model);
  const optimizer = new SgdMomentum(init.config.momentum, init.config.weightDecay);
  const momentum = init.momentum.map((m, i) => tf.tensor(m, parameters.variables[i].shape, 'float32'));
  optimizer.loadBuffers(parameters.variables, momentum);
  tf.dispose(momentum);
  const size = init.config.imageSize;
  let lrs = { encoder: 0, predictor: 0 };

  port.on('message', (request: ReplicaRequest) => {
    try {
      if (request.kind === 'step') {
        lrs = { encoder: request.lrs[0], predictor: request.lrs[1] };
        const sums = shardGradients(model, parameters.variables, request.view1, request.view2, request.count, size, request.microBatch);
        reply({ kind: 'gradients', ...sums }, [sums.gradients.buffer as ArrayBuffer]);
      } else if (request.kind === 'apply') {
        const grads = unflatten(request.gradients, parameters.variables);
        optimizer.step(parameterGroups(parameters, lrs), grads);
        tf.dispose(Object.values(grads));
      } else {
        const flat = flatten(parameters.variables);
        reply({ kind: 'weights', weights: flat }, [flat.buffer as ArrayBuffer]);
      }
    } catch (error) {
      reply({ kind: 'error', message: (error as Error).message });
    }
  });
  reply({ kind: 'ready' });
}

start().catch((error: Error) => reply({ kind: 'error', message: error.message }));
