/** What each backend's loader hands back to selectBackend, and the one way to switch to a backend. */
import * as tf from '@tensorflow/tfjs';

export interface LoadedBackend {
  backendName: string;
  detail: string;
}

export async function activate(backendName: string, failure: string): Promise<void> {
  if (!(await tf.setBackend(backendName))) {
    throw new Error(failure);
  }
  await tf.ready();
}

