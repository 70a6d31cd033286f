import * as assert from 'assert';
import { spawnSync } from 'child_process';

/**
 * The release is process-wide and cannot be undone, and other suites in this process install it
 * (selectBackend does), so the comparison runs in a fresh process: the same SimSiam gradients on
 * wasm without it, then with it.
 */
interface Outcome {
  equal: boolean; maxDifference: number; peakBefore: number; peakAfter: number; leakedBefore: number; leakedAfter: number;
  callerDyKept: boolean; sharedGradientError: number;
}

function runComparison(): Outcome {
  const requireOf = (module: string) => JSON.stringify(require.resolve(module));
  const script = `
    const tf = require('@tensorflow/tfjs');
    require('@tensorflow/tfjs-backend-wasm');
    const { registerWasmGradientKernels } = require(${requireOf('../../src/training/tfjs/wasmGradients')});
    const { releaseGradientInputsEarly } = require(${requireOf('../../src/training/tfjs/gradientMemory')});
    const { resolveConfig } = require(${requireOf('../../src/training/config')});
    const { buildSimSiam } = require(${requireOf('../../src/training/model/simsiam')});
    const { computeGradients, parametersOf } = require(${requireOf('../../src/training/step')});
    (async () => {
      registerWasmGradientKernels();
      await tf.setBackend('wasm');
      const model = buildSimSiam(resolveConfig('tiny', { imageSize: 16, projectorDim: 64, predictorHiddenDim: 16 }));
      const { variables } = parametersOf(model);
      const view1 = tf.randomNormal([8, 16, 16, 3], 0, 1, 'float32', 1);
      const view2 = tf.randomNormal([8, 16, 16, 3], 0, 1, 'float32', 2);
      const measure = async () => {
        const tensorsBefore = tf.memory().numTensors;
        let gradients;
        const profile = await tf.profile(() => { gradients = computeGradients(model, view1, view2, variables); });
        const values = variables.map((v) => Array.from(gradients.grads[v.name].dataSync()));
        tf.dispose([gradients.loss, gradients.zStd, ...Object.values(gradients.grads)]);
        return { values, peak: profile.peakBytes, leaked: tf.memory().numTensors - tensorsBefore };
      };
      const before = await measure();
      releaseGradientInputsEarly();
      const after = await measure();
      let maxDifference = 0;
      before.values.forEach((values, i) => values.forEach((v, j) => { maxDifference = Math.max(maxDifference, Math.abs(v - after.values[i][j])); }));
      const equal = before.values.length === after.values.length && before.values.every((values, i) => values.length === after.values[i].length);
      // A dy passed to tf.grad belongs to the caller.
      const dy = tf.ones([3]);
      tf.grad((a) => tf.exp(a))(tf.ones([3]), dy).dispose();
      const callerDyKept = !dy.isDisposed;
      // A custom gradient that returns one tensor for two inputs made by different ops.
      const passBoth = tf.customGrad((a, b, save) => ({ value: tf.add(a, b), gradFunc: (g) => [g, g] }));
      const v = tf.tensor1d([0.1, 0.7, -1.3]);
      const got = tf.grad((x) => tf.sum(passBoth(tf.exp(x), tf.sin(x))))(v).dataSync();
      const expected = tf.add(tf.exp(v), tf.cos(v)).dataSync();
      const sharedGradientError = Math.max(...Array.from(got, (g, i) => Math.abs(g - expected[i])));
      console.log(JSON.stringify({ equal, maxDifference, peakBefore: before.peak, peakAfter: after.peak, leakedBefore: before.leaked,
        leakedAfter: after.leaked, callerDyKept, sharedGradientError }));
    })().catch((error) => { console.error(error); process.exit(1); });`;
  const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120_000 });
  assert.strictEqual(result.status, 0, result.stderr);
  return JSON.parse(result.stdout.trim().split('\n').pop()!);
}

describe('releasing gradient inputs early', () => {
  let outcome: Outcome;

  before(function () {
    this.timeout(180_000);
    outcome = runComparison();
  });

  it('gives the same gradients with a much lower peak of tensor memory, and leaks nothing', () => {
    assert.ok(outcome.equal, 'one gradient per variable, same shapes');
    assert.strictEqual(outcome.maxDifference, 0, 'bitwise the same gradients');
    assert.ok(outcome.peakAfter < 0.7 * outcome.peakBefore, `peak ${outcome.peakAfter} bytes vs ${outcome.peakBefore} without the release`);
    assert.strictEqual(outcome.leakedBefore, 0);
    assert.strictEqual(outcome.leakedAfter, 0);
  });

  it('leaves a dy passed by the caller alone, and survives one gradient tensor returned for two inputs', () => {
    assert.ok(outcome.callerDyKept, 'tf.grad disposed the dy it was given');
    assert.ok(outcome.sharedGradientError < 1e-6, `gradient error ${outcome.sharedGradientError}`);
  });
});
