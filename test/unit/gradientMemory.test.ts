import * as assert from 'assert';
import { spawnSync } from 'child_process';

/**
 * The release is process-wide and cannot be undone, and other suites in this process install it
 * (selectBackend does), so the comparison runs in a fresh process: the same SimSiam gradients on
 * wasm without it, then with it.
 */
function runComparison(): { equal: boolean; maxDifference: number; peakBefore: number; peakAfter: number; leakedBefore: number; leakedAfter: number } {
  const requireOf = (module: string) => JSON.stringify(require.resolve(module));
  const script = `
    const tf = require('@tensorflow/tfjs');
    require('@tensorflow/tfjs-backend-wasm');
    const { registerWasmGradientKernels } = require(${requireOf('../../src/training/wasmGradients')});
    const { releaseGradientInputsEarly } = require(${requireOf('../../src/training/gradientMemory')});
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
      console.log(JSON.stringify({ equal, maxDifference, peakBefore: before.peak, peakAfter: after.peak, leakedBefore: before.leaked, leakedAfter: after.leaked }));
    })().catch((error) => { console.error(error); process.exit(1); });`;
  const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120_000 });
  assert.strictEqual(result.status, 0, result.stderr);
  return JSON.parse(result.stdout.trim().split('\n').pop()!);
}

describe('releasing gradient inputs early', () => {
  it('gives the same gradients with a much lower peak of tensor memory, and leaks nothing', function () {
    this.timeout(180_000);
    const outcome = runComparison();
    assert.ok(outcome.equal, 'one gradient per variable, same shapes');
    assert.strictEqual(outcome.maxDifference, 0, 'bitwise the same gradients');
    assert.ok(outcome.peakAfter < 0.7 * outcome.peakBefore, `peak ${outcome.peakAfter} bytes vs ${outcome.peakBefore} without the release`);
    assert.strictEqual(outcome.leakedBefore, 0);
    assert.strictEqual(outcome.leakedAfter, 0);
  });
});
