import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {
  conv2dFilterGradientOnWasm, conv2dForwardOnWasm, conv2dInputGradientOnWasm, FilterGradFormulation, InputGradFormulation,
  preferredFilterGradFormulation, preferredForwardConvFormulation, preferredInputGradFormulation, registerWasmGradientKernels,
} from '../../src/training/tfjs/wasmGradients';
import { BATCH_NORM_TRAINING, batchNormTraining } from '../../src/training/model/batchNorm';

type Shape4 = [number, number, number, number];
type Padding = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

interface ConvCase {
  name: string;
  input: Shape4;
  filter: Shape4;
  strides: number | [number, number];
  pad: Padding;
}

const CASES: ConvCase[] = [
  { name: '3x3 stride 2 same', input: [2, 8, 8, 5], filter: [3, 3, 5, 4], strides: 2, pad: 'same' },
  { name: '3x3 stride 1 same (padded)', input: [2, 6, 6, 5], filter: [3, 3, 5, 6], strides: 1, pad: 'same' },
  { name: '3x3 stride 1 valid', input: [2, 7, 7, 5], filter: [3, 3, 5, 4], strides: 1, pad: 'valid' },
  { name: '3x3 stride 2 valid on an even input (last row unread)', input: [2, 8, 8, 5], filter: [3, 3, 5, 4], strides: 2, pad: 'valid' },
  { name: '1x1 stride 1', input: [2, 5, 5, 6], filter: [1, 1, 6, 4], strides: 1, pad: 'same' },
  { name: '1x1 stride 2 (shortcut)', input: [2, 8, 8, 4], filter: [1, 1, 4, 6], strides: 2, pad: 'same' },
  { name: '1x1 stride 2 on an odd input', input: [2, 7, 7, 4], filter: [1, 1, 4, 6], strides: 2, pad: 'same' },
  { name: '7x7 stride 2 same (ImageNet stem)', input: [2, 20, 20, 3], filter: [7, 7, 3, 8], strides: 2, pad: 'same' },
  { name: '3x3 stride 1 on RGB (CIFAR stem)', input: [2, 8, 8, 3], filter: [3, 3, 3, 8], strides: 1, pad: 'same' },
  { name: '3x3 stride 2 on odd 7x7 input', input: [3, 7, 7, 4], filter: [3, 3, 4, 5], strides: 2, pad: 'same' },
  { name: 'batch 1, 3x3 stride 2 on 9x9', input: [1, 9, 9, 3], filter: [3, 3, 3, 4], strides: 2, pad: 'same' },
  { name: 'asymmetric explicit padding', input: [2, 6, 6, 3], filter: [3, 3, 3, 4], strides: 2, pad: [[0, 0], [2, 1], [0, 3], [0, 0]] },
  { name: '5x5 stride 3 same', input: [2, 11, 10, 3], filter: [5, 5, 3, 4], strides: 3, pad: 'same' },
  { name: 'strides [2, 3], 3x3 valid', input: [2, 9, 11, 3], filter: [3, 3, 3, 4], strides: [2, 3], pad: 'valid' },
  { name: 'non-square 1x3 filter at strides [2, 1]', input: [2, 8, 7, 3], filter: [1, 3, 3, 5], strides: [2, 1], pad: 'same' },
  { name: '2x2 stride 2 (filter no wider than the stride)', input: [2, 8, 8, 3], filter: [2, 2, 3, 4], strides: 2, pad: 'valid' },
  // Registered conv2d runs these on our SIMD forward kernel (16+ input channels, 3x3, whole tiles of 8 outputs).
  { name: '3x3 stride 1 same, 16 -> 8 on an odd 7x5 input', input: [2, 7, 5, 16], filter: [3, 3, 16, 8], strides: 1, pad: 'same' },
  { name: '3x3 stride 2 same, 17 -> 16 on an odd 9x9 input', input: [2, 9, 9, 17], filter: [3, 3, 17, 16], strides: 2, pad: 'same' },
];

/** The tiny preset's backbone convs (ResNet-18 ×0.25, CIFAR stem, 32 px), as bench/convGrad.ts lists them. */
const TINY_PRESET_CONVS: { name: string; input: Shape4; filter: Shape4; strides: number }[] = [
  { name: 'stem 3x3 3->16', input: [8, 32, 32, 3], filter: [3, 3, 3, 16], strides: 1 },
  { name: 'stage1 3x3 16->16', input: [8, 32, 32, 16], filter: [3, 3, 16, 16], strides: 1 },
  { name: 'stage2 down 3x3 s2', input: [8, 32, 32, 16], filter: [3, 3, 16, 32], strides: 2 },
  { name: 'stage2 shortcut 1x1 s2', input: [8, 32, 32, 16], filter: [1, 1, 16, 32], strides: 2 },
  { name: 'stage2 3x3 32->32', input: [8, 16, 16, 32], filter: [3, 3, 32, 32], strides: 1 },
  { name: 'stage3 down 3x3 s2', input: [8, 16, 16, 32], filter: [3, 3, 32, 64], strides: 2 },
  { name: 'stage3 shortcut 1x1 s2', input: [8, 16, 16, 32], filter: [1, 1, 32, 64], strides: 2 },
  { name: 'stage3 3x3 64->64', input: [8, 8, 8, 64], filter: [3, 3, 64, 64], strides: 1 },
  { name: 'stage4 down 3x3 s2', input: [8, 8, 8, 64], filter: [3, 3, 64, 128], strides: 2 },
  { name: 'stage4 shortcut 1x1 s2', input: [8, 8, 8, 64], filter: [1, 1, 64, 128], strides: 2 },
  { name: 'stage4 3x3 128->128', input: [8, 4, 4, 128], filter: [3, 3, 128, 128], strides: 1 },
];

const FILTER_GRAD_FORMULATIONS: FilterGradFormulation[] = ['simdKernel', 'batchContractedConv', 'im2colMatMul'];
const INPUT_GRAD_FORMULATIONS: InputGradFormulation[] = ['simdKernel', 'xnnpackConv'];

const TOLERANCE = 1e-4;

/** max |actual - expected| relative to max |expected|. */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  assert.strictEqual(actual.length, expected.length);
  let maxDiff = 0;
  let maxExpected = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i] - expected[i]));
    maxExpected = Math.max(maxExpected, Math.abs(expected[i]));
  }
  assert.ok(maxExpected > 0, 'the reference gradient is all zeros, so the comparison would prove nothing');
  return maxDiff / maxExpected;
}

interface CaseData { x: Float32Array; filter: Float32Array; lossWeights: Float32Array; outShape: Shape4 }

async function caseData(c: ConvCase, seed: number): Promise<CaseData> {
  await tf.setBackend('cpu');
  const outShape = tf.backend_util.computeConv2DInfo(c.input, c.filter, c.strides, 1, c.pad).outShape as Shape4;
  const values = (shape: number[], offset: number) => tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', seed + offset));
  const [x, filter, lossWeights] = [values(c.input, 0), values(c.filter, 1), values(outShape, 2)];
  const data = {
    x: x.dataSync() as Float32Array, filter: filter.dataSync() as Float32Array,
    lossWeights: lossWeights.dataSync() as Float32Array, outShape,
  };
  tf.dispose([x, filter, lossWeights]);
  return data;
}

/** dx and dW of sum(conv2d(x, W) * lossWeights), so that dy = lossWeights is not uniform. */
async function convGradients(backend: string, c: ConvCase, data: CaseData): Promise<{ dx: Float32Array; dW: Float32Array }> {
  await tf.setBackend(backend);
  const x = tf.tensor4d(data.x, c.input);
  const filter = tf.tensor4d(data.filter, c.filter);
  const lossWeights = tf.tensor4d(data.lossWeights, data.outShape);
  const gradients = tf.grads((xIn: tf.Tensor, filterIn: tf.Tensor) =>
    tf.sum(tf.mul(tf.conv2d(xIn as tf.Tensor4D, filterIn as tf.Tensor4D, c.strides, c.pad), lossWeights)));
  const [dx, dW] = gradients([x, filter]);
  const result = { dx: dx.dataSync() as Float32Array, dW: dW.dataSync() as Float32Array };
  tf.dispose([x, filter, lossWeights, dx, dW]);
  return result;
}

/** The values of a kernel's result, which is then freed. */
function readInfo(info: tf.TensorInfo): Float32Array {
  const values = tf.backend().readSync(info.dataId) as Float32Array;
  tf.backend().disposeData(info.dataId);
  return values;
}

describe('wasm convolution gradient kernels', function () {
  let previousBackend: string | undefined;

  before(async () => {
    previousBackend = tf.getBackend();
    registerWasmGradientKernels();
    await tf.setBackend('wasm');
  });

  after(async () => {
    // Other suites in this process expect the backend they had (cpu when none was chosen).
    await tf.setBackend(previousBackend ?? 'cpu');
  });

  for (const [index, c] of CASES.entries()) {
    it(`match the cpu backend: ${c.name}`, async () => {
      const data = await caseData(c, 100 * index);
      const expected = await convGradients('cpu', c, data);
      const actual = await convGradients('wasm', c, data);
      const dWError = relativeError(actual.dW, expected.dW);
      const dxError = relativeError(actual.dx, expected.dx);
      assert.ok(dWError < TOLERANCE, `dW relative error ${dWError}`);
      assert.ok(dxError < TOLERANCE, `dx relative error ${dxError}`);
    });
  }

  it('compute the same dW and dx with every formulation', async () => {
    for (const [index, c] of CASES.entries()) {
      const data = await caseData(c, 100 * index);
      const expected = await convGradients('cpu', c, data);
      await tf.setBackend('wasm');
      const x = tf.tensor4d(data.x, c.input);
      const filter = tf.tensor4d(data.filter, c.filter);
      const dy = tf.tensor4d(data.lossWeights, data.outShape);
      for (const formulation of FILTER_GRAD_FORMULATIONS) {
        const dW = readInfo(conv2dFilterGradientOnWasm(x, dy, { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape: c.filter }, tf.backend(), formulation));
        const error = relativeError(dW, expected.dW);
        assert.ok(error < TOLERANCE, `${c.name}, dW ${formulation}: relative error ${error}`);
      }
      for (const formulation of INPUT_GRAD_FORMULATIONS) {
        const dx = conv2dInputGradientOnWasm(dy, filter, { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: c.input }, tf.backend(), formulation);
        assert.ok(dx !== undefined, `${c.name}: no dx formulation covers it`);
        const error = relativeError(readInfo(dx), expected.dx);
        assert.ok(error < TOLERANCE, `${c.name}, dx ${formulation}: relative error ${error}`);
      }
      tf.dispose([x, filter, dy]);
    }
  });

  // The SIMD kernels against the XNNPACK formulations they replace, at the sizes training runs.
  for (const c of TINY_PRESET_CONVS) {
    for (const batch of [c.input[0], 1]) {
      it(`compute the tiny preset's ${c.name} gradients with the SIMD kernels as with XNNPACK, batch ${batch}`, async () => {
        await tf.setBackend('wasm');
        const input: Shape4 = [batch, c.input[1], c.input[2], c.input[3]];
        const outShape = tf.backend_util.computeConv2DInfo(input, c.filter, c.strides, 1, 'same').outShape;
        const [x, filter, dy] = [input, c.filter, outShape].map((shape, i) => tf.randomNormal(shape, 0, 1, 'float32', 40 + i));
        const filterAttrs = { strides: c.strides, pad: 'same' as const, dataFormat: 'NHWC' as const, filterShape: c.filter };
        const dWs = FILTER_GRAD_FORMULATIONS.map((f) => readInfo(conv2dFilterGradientOnWasm(x, dy, filterAttrs, tf.backend(), f)));
        const inputAttrs = { strides: c.strides, pad: 'same' as const, dataFormat: 'NHWC' as const, inputShape: input };
        const dxs = INPUT_GRAD_FORMULATIONS.map((f) => readInfo(conv2dInputGradientOnWasm(dy, filter, inputAttrs, tf.backend(), f)!));
        tf.dispose([x, filter, dy]);
        for (const [i, formulation] of FILTER_GRAD_FORMULATIONS.entries()) {
          const error = relativeError(dWs[0], dWs[i]);
          assert.ok(error < TOLERANCE, `dW simdKernel vs ${formulation}: relative error ${error}`);
        }
        const error = relativeError(dxs[0], dxs[1]);
        assert.ok(error < TOLERANCE, `dx simdKernel vs xnnpackConv: relative error ${error}`);
      });
    }
  }

  it('leave no tensors or wasm buffers behind', async () => {
    const c = CASES[0];
    const data = await caseData(c, 7);
    await tf.setBackend('wasm');
    await convGradients('wasm', c, data);   // first use creates nothing lasting, but let it settle
    const tensorsBefore = tf.memory().numTensors;
    const buffersBefore = tf.backend().numDataIds();
    await convGradients('wasm', c, data);
    assert.strictEqual(tf.memory().numTensors, tensorsBefore);
    assert.strictEqual(tf.backend().numDataIds(), buffersBefore);
  });

  it('hand paddings wider than the filter to wasm\'s own input-gradient kernel, and give a zero dW where no output reads x', async () => {
    // x sits at padded row/column 4; the only window (stride 3, 3 taps) covers 0..2.
    const c: ConvCase = { name: 'all-padding window', input: [1, 1, 1, 1], filter: [3, 3, 1, 1], strides: 3, pad: [[0, 0], [4, 0], [4, 0], [0, 0]] };
    await tf.setBackend('wasm');
    const dy = tf.ones([1, 1, 1, 1]);
    const filter = tf.ones(c.filter);
    const inputAttrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC' as const, inputShape: c.input };
    assert.strictEqual(conv2dInputGradientOnWasm(dy, filter, inputAttrs, tf.backend()), undefined);
    tf.dispose([dy, filter]);

    const data = await caseData(c, 3);
    const expected = await convGradients('cpu', c, data);
    const actual = await convGradients('wasm', c, data);
    assert.deepStrictEqual(Array.from(actual.dW), Array.from(expected.dW));
    assert.deepStrictEqual(Array.from(actual.dx), Array.from(expected.dx));
    assert.ok(actual.dW.every((v) => v === 0));
  });

  it('reject NCHW with a message that names the supported layout', async () => {
    await tf.setBackend('wasm');
    const x = tf.zeros([1, 3, 4, 4]);
    const dy = tf.zeros([1, 2, 4, 4]);
    assert.throws(
      () => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy },
        { strides: 1, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 3, 2] } as unknown as tf.NamedAttrMap),
      /supports dataFormat 'NHWC' only/);
    tf.dispose([x, dy]);
  });

  it('choose the SIMD kernels where wasm SIMD compiles (it does in Node)', () => {
    assert.strictEqual(preferredFilterGradFormulation([3, 3, 16, 16], 1), 'simdKernel');
    assert.strictEqual(preferredInputGradFormulation(), 'simdKernel');
    assert.strictEqual(preferredInputGradFormulation(16), 'simdKernel');
    // dx into an RGB image's channels (the stem's, which nothing needs) stays on XNNPACK.
    assert.strictEqual(preferredInputGradFormulation(3), 'xnnpackConv');
  });

  it('without wasm SIMD, choose the matrix-product formulation only for stride-1 1x1 or RGB-input filters', () => {
    assert.strictEqual(preferredFilterGradFormulation([1, 1, 64, 16], 1, false), 'im2colMatMul');
    assert.strictEqual(preferredFilterGradFormulation([3, 3, 3, 16], [1, 1], false), 'im2colMatMul');
    assert.strictEqual(preferredFilterGradFormulation([3, 3, 16, 16], 1, false), 'batchContractedConv');
    assert.strictEqual(preferredFilterGradFormulation([1, 1, 16, 32], 2, false), 'batchContractedConv');
    assert.strictEqual(preferredFilterGradFormulation([7, 7, 3, 64], 2, false), 'batchContractedConv');
  });

  it('multiply transposed operands as the cpu backend does (the products in matMul gradients)', async () => {
    const cases: { a: number[]; b: number[]; transposeA: boolean; transposeB: boolean }[] = [
      { a: [6, 4], b: [6, 5], transposeA: true, transposeB: false },
      { a: [4, 6], b: [5, 6], transposeA: false, transposeB: true },
      { a: [6, 4], b: [5, 6], transposeA: true, transposeB: true },
      { a: [1, 6, 4], b: [1, 6, 5], transposeA: true, transposeB: false },
      { a: [3, 6, 4], b: [3, 5, 6], transposeA: true, transposeB: true },   // several matrices: wasm's own loop
      { a: [4, 6], b: [6, 5], transposeA: false, transposeB: false },
    ];
    for (const [index, c] of cases.entries()) {
      await tf.setBackend('cpu');
      const values = [c.a, c.b].map((shape, i) => tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', 500 + 10 * index + i).dataSync()));
      const product = async (backend: string) => {
        await tf.setBackend(backend);
        const [a, b] = [tf.tensor(values[0], c.a), tf.tensor(values[1], c.b)];
        const result = tf.matMul(a, b, c.transposeA, c.transposeB);
        const data = { shape: result.shape, values: result.dataSync() as Float32Array };
        tf.dispose([a, b, result]);
        return data;
      };
      const expected = await product('cpu');
      const actual = await product('wasm');
      assert.deepStrictEqual(actual.shape, expected.shape);
      const error = relativeError(actual.values, expected.values);
      assert.ok(error < TOLERANCE, `case ${index}: relative error ${error}`);
    }
  });

  it('train a conv + batch-norm + relu + max-pool + dense net on wasm as on cpu', async () => {
    const inputShape: Shape4 = [4, 8, 8, 3];
    const shapes: Record<string, number[]> = {
      stem: [3, 3, 3, 8], block: [3, 3, 8, 8], shortcut: [1, 1, 8, 8], gamma: [8], beta: [8], dense: [8 * 2 * 2, 5],
    };
    await tf.setBackend('cpu');
    const initial = Object.fromEntries(Object.entries(shapes).map(([name, shape], i) => {
      const t = tf.tidy(() => name === 'gamma' ? tf.ones(shape) : tf.randomNormal(shape, 0, 0.3, 'float32', 10 + i));
      const values = t.dataSync() as Float32Array;
      t.dispose();
      return [name, values];
    }));
    const imagesTensor = tf.randomNormal(inputShape, 0, 1, 'float32', 99);
    const images = imagesTensor.dataSync() as Float32Array;
    imagesTensor.dispose();

    async function train(backend: string): Promise<{ losses: number[]; weights: Record<string, Float32Array> }> {
      await tf.setBackend(backend);
      const v = Object.fromEntries(Object.entries(shapes).map(([name, shape]) => [name, tf.variable(tf.tensor(initial[name], shape))]));
      const x = tf.tensor4d(images, inputShape);
      const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), 5);
      const optimizer = tf.train.sgd(0.1);
      const losses: number[] = [];
      for (let step = 0; step < 3; step++) {
        const loss = optimizer.minimize(() => {
          const stem = tf.conv2d(x, v.stem as tf.Variable<tf.Rank.R4>, 2, 'same');
          const { mean, variance } = tf.moments(stem, [0, 1, 2]);
          const normalised = tf.relu(tf.batchNorm4d(stem, mean as tf.Tensor1D, variance as tf.Tensor1D,
            v.beta as tf.Variable<tf.Rank.R1>, v.gamma as tf.Variable<tf.Rank.R1>, 1e-5));
          const residual = tf.add(tf.conv2d(normalised, v.block as tf.Variable<tf.Rank.R4>, 1, 'same'),
            tf.conv2d(normalised, v.shortcut as tf.Variable<tf.Rank.R4>, 1, 'same'));
          const pooled = tf.maxPool(tf.relu(residual) as tf.Tensor4D, 3, 2, 'same');
          const logits = tf.matMul(tf.reshape(pooled, [inputShape[0], -1]), v.dense as tf.Variable<tf.Rank.R2>);
          return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
        }, true) as tf.Scalar;
        losses.push(loss.dataSync()[0]);
        loss.dispose();
      }
      const weights = Object.fromEntries(Object.entries(v).map(([name, variable]) => [name, variable.dataSync() as Float32Array]));
      tf.dispose([x, labels, ...Object.values(v)]);
      optimizer.dispose();
      return { losses, weights };
    }

    const onCpu = await train('cpu');
    const onWasm = await train('wasm');
    assert.ok(onCpu.losses[2] < onCpu.losses[0], `the reference net should learn: ${onCpu.losses}`);
    for (let step = 0; step < 3; step++) {
      assert.ok(Math.abs(onWasm.losses[step] - onCpu.losses[step]) < 1e-4 * Math.max(1, onCpu.losses[step]),
        `step ${step}: wasm loss ${onWasm.losses[step]} vs cpu ${onCpu.losses[step]}`);
    }
    for (const name of Object.keys(shapes)) {
      assert.ok(relativeError(onWasm.weights[name], onCpu.weights[name]) < 1e-3, `weights of ${name} differ after training`);
      assert.ok(relativeError(onWasm.weights[name], initial[name]) > 1e-4, `${name} did not change`);
    }
  });

  describe('SIMD forward conv', () => {
    type Activation = 'linear' | 'relu';

    /** conv2d(x, W) + bias, then the activation, on the given backend (tf.fused.conv2d). */
    async function forwardOn(backend: string, c: ConvCase, data: CaseData, bias: Float32Array | undefined,
      activation: Activation): Promise<Float32Array> {
      await tf.setBackend(backend);
      return tf.tidy(() => tf.fused.conv2d({
        x: tf.tensor4d(data.x, c.input), filter: tf.tensor4d(data.filter, c.filter), strides: c.strides, pad: c.pad,
        bias: bias === undefined ? undefined : tf.tensor1d(bias), activation,
      }).dataSync() as Float32Array);
    }

    /** The same on wasm through conv2dForwardOnWasm itself, whatever the registered kernel would choose. */
    async function forwardOnSimdKernel(c: ConvCase, data: CaseData, bias: Float32Array | undefined,
      activation: Activation): Promise<Float32Array> {
      await tf.setBackend('wasm');
      const [x, filter] = [tf.tensor4d(data.x, c.input), tf.tensor4d(data.filter, c.filter)];
      const biasTensor = bias === undefined ? undefined : tf.tensor1d(bias);
      const out = conv2dForwardOnWasm(x, filter, biasTensor, {
        strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dilations: 1, activation,
      }, tf.backend());
      tf.dispose([x, filter, ...(biasTensor === undefined ? [] : [biasTensor])]);
      assert.ok(out !== undefined, `${c.name}: the SIMD forward kernel declined it`);
      return readInfo(out);
    }

    /** CASES with whole tiles of 8 output channels, the kernel's requirement. */
    const forwardCases: ConvCase[] = CASES.map((c) => ({
      ...c, filter: [c.filter[0], c.filter[1], c.filter[2], c.filter[3] <= 8 ? 8 : 16] as Shape4,
    }));

    for (const [index, c] of forwardCases.entries()) {
      it(`match the cpu backend, plain and with bias + relu: ${c.name}`, async () => {
        const data = await caseData(c, 300 + 100 * index);
        const bias = Float32Array.from({ length: c.filter[3] }, (_, i) => (i % 5) * 0.3 - 0.6);
        for (const [withBias, activation] of [[undefined, 'linear'], [bias, 'relu'], [bias, 'linear']] as const) {
          const expected = await forwardOn('cpu', c, data, withBias, activation);
          const actual = await forwardOnSimdKernel(c, data, withBias, activation);
          const error = relativeError(actual, expected);
          assert.ok(error < TOLERANCE, `${activation}${withBias ? ' + bias' : ''}: relative error ${error}`);
        }
      });
    }

    for (const c of TINY_PRESET_CONVS) {
      for (const batch of [c.input[0], 1]) {
        it(`compute the tiny preset's ${c.name} forward as the cpu backend does, batch ${batch}`, async () => {
          const conv: ConvCase = { name: c.name, input: [batch, c.input[1], c.input[2], c.input[3]], filter: c.filter, strides: c.strides, pad: 'same' };
          const data = await caseData(conv, 77);
          const error = relativeError(await forwardOnSimdKernel(conv, data, undefined, 'linear'), await forwardOn('cpu', conv, data, undefined, 'linear'));
          assert.ok(error < TOLERANCE, `relative error ${error}`);
        });
      }
    }

    it('run registered conv2d and fused conv2d on the shapes it is chosen for, as on cpu', async () => {
      const c: ConvCase = { name: 'stage1', input: [3, 10, 9, 16], filter: [3, 3, 16, 16], strides: 1, pad: 'same' };
      assert.strictEqual(preferredForwardConvFormulation(c.filter), 'simdKernel');
      const data = await caseData(c, 11);
      const bias = Float32Array.from({ length: 16 }, (_, i) => i * 0.1 - 0.8);
      for (const [withBias, activation] of [[undefined, 'linear'], [bias, 'relu']] as const) {
        const error = relativeError(await forwardOn('wasm', c, data, withBias, activation), await forwardOn('cpu', c, data, withBias, activation));
        assert.ok(error < TOLERANCE, `${activation}: relative error ${error}`);
      }
    });

    it('choose itself for 3x3-or-wider filters over 16+ input channels with whole output tiles, XNNPACK elsewhere', () => {
      assert.strictEqual(preferredForwardConvFormulation([3, 3, 16, 16]), 'simdKernel');
      assert.strictEqual(preferredForwardConvFormulation([3, 3, 128, 128]), 'simdKernel');
      assert.strictEqual(preferredForwardConvFormulation([3, 3, 3, 16]), 'xnnpack');      // the RGB stem
      assert.strictEqual(preferredForwardConvFormulation([1, 1, 32, 64]), 'xnnpack');     // a shortcut
      assert.strictEqual(preferredForwardConvFormulation([3, 3, 16, 12]), 'xnnpack');     // not whole tiles
      assert.strictEqual(preferredForwardConvFormulation([3, 3, 16, 16], false), 'xnnpack');   // no wasm SIMD
    });

    it('decline what it does not compute, for wasm\'s own kernel to run', async () => {
      await tf.setBackend('wasm');
      const x = tf.zeros([1, 6, 6, 16]);
      const filter = tf.zeros([3, 3, 16, 8]);
      const attrs = { strides: 1, pad: 'same' as const, dataFormat: 'NHWC' as const, dilations: 1, activation: 'linear' };
      const computed = conv2dForwardOnWasm(x, filter, undefined, attrs, tf.backend());
      assert.ok(computed !== undefined);
      tf.backend().disposeData(computed.dataId);
      assert.strictEqual(conv2dForwardOnWasm(x, filter, undefined, { ...attrs, dataFormat: 'NCHW' }, tf.backend()), undefined);
      assert.strictEqual(conv2dForwardOnWasm(x, filter, undefined, { ...attrs, dilations: 2 }, tf.backend()), undefined);
      assert.strictEqual(conv2dForwardOnWasm(x, filter, undefined, { ...attrs, activation: 'elu' }, tf.backend()), undefined);
      const sevenOutputs = tf.zeros([3, 3, 16, 7]);
      assert.strictEqual(conv2dForwardOnWasm(x, sevenOutputs, undefined, attrs, tf.backend()), undefined);
      tf.dispose([x, filter, sevenOutputs]);
    });

    it('leave no tensors or wasm buffers behind', async () => {
      const c: ConvCase = { name: 'stage1', input: [2, 8, 8, 16], filter: [3, 3, 16, 16], strides: 1, pad: 'same' };
      const data = await caseData(c, 5);
      await forwardOn('wasm', c, data, undefined, 'relu');
      const tensorsBefore = tf.memory().numTensors;
      const buffersBefore = tf.backend().numDataIds();
      await forwardOn('wasm', c, data, undefined, 'relu');
      await convGradients('wasm', c, data);
      assert.strictEqual(tf.memory().numTensors, tensorsBefore);
      assert.strictEqual(tf.backend().numDataIds(), buffersBefore);
    });
  });

  describe('Identity and same-dtype Cast', () => {
    it('share the input\'s buffer, which outlives the input, and free it with the last tensor', async () => {
      await tf.setBackend('wasm');
      const buffersBefore = tf.backend().numDataIds();
      const x = tf.tensor1d([1, -2, 3.5]);
      const copies = [tf.clone(x), tf.cast(x, 'float32')];
      assert.strictEqual(tf.backend().numDataIds(), buffersBefore + 1);
      x.dispose();
      for (const copy of copies) {
        assert.deepStrictEqual(Array.from(copy.dataSync()), [1, -2, 3.5]);
      }
      tf.dispose(copies);
      assert.strictEqual(tf.backend().numDataIds(), buffersBefore);
    });

    it('still convert where the dtype changes', async () => {
      await tf.setBackend('wasm');
      const x = tf.tensor1d([1.75, -2.5, 3], 'float32');
      const asInt = tf.cast(x, 'int32');
      assert.deepStrictEqual(Array.from(asInt.dataSync()), [1, -2, 3]);
      assert.strictEqual(asInt.dtype, 'int32');
      tf.dispose([x, asInt]);
    });
  });

  describe('fused batch norm kernels', () => {
    /** y, mean, variance and the gradients of sum(y · upstream) w.r.t. x, gamma and beta. */
    async function batchNormResults(backend: string, shape: number[]): Promise<Record<string, Float32Array>> {
      await tf.setBackend(backend);
      const channels = shape[shape.length - 1];
      return tf.tidy(() => {
        // Centred away from 0, as activations are: the two-pass variance must not lose it.
        const x = tf.randomNormal(shape, 2, 3, 'float32', 7);
        const gamma = tf.randomNormal([channels], 1, 0.5, 'float32', 8) as tf.Tensor1D;
        const beta = tf.randomNormal([channels], 0, 0.5, 'float32', 9) as tf.Tensor1D;
        const upstream = tf.randomNormal(shape, 0, 1, 'float32', 10);
        const { y, mean, variance } = batchNormTraining(x, gamma, beta, 1e-5);
        const [dx, dGamma, dBeta] = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(batchNormTraining(a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5).y, upstream)))([x, gamma, beta]);
        const values = { y, mean, variance, dx, dGamma, dBeta };
        return Object.fromEntries(Object.entries(values).map(([name, t]) => [name, t.dataSync() as Float32Array]));
      });
    }

    it('are what the wasm backend runs batch norm with', async () => {
      await tf.setBackend('wasm');
      assert.ok(tf.getKernel(BATCH_NORM_TRAINING, 'wasm') !== undefined);
    });

    // Conv activations (several 64-row summing blocks and a partial one; channels not a multiple
    // of 4) and the heads' dense activations.
    for (const shape of [[4, 5, 5, 3], [2, 3, 3, 6], [32, 16, 16, 16], [7, 9, 9, 64], [1, 4, 4, 128], [16, 8], [64, 512], [3, 7]]) {
      it(`match the element-wise ops on cpu for [${shape}]: values, batch statistics and gradients`, async () => {
        const expected = await batchNormResults('cpu', shape);
        const actual = await batchNormResults('wasm', shape);
        for (const name of Object.keys(expected)) {
          const error = relativeError(actual[name], expected[name]);
          assert.ok(error < TOLERANCE, `${name}: relative error ${error}`);
        }
      });
    }

    it('leave no tensors behind in a training step', async () => {
      await tf.setBackend('wasm');
      const x = tf.randomNormal([4, 6, 6, 8]);
      const gamma = tf.ones([8]) as tf.Tensor1D;
      const beta = tf.zeros([8]) as tf.Tensor1D;
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const { y, mean, variance } = batchNormTraining(a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5);
          tf.dispose([mean, variance]);   // the caller's, as FusedBatchNormalization disposes them
          return tf.sum(y);
        })([x, gamma, beta]);
      });
      assert.strictEqual(tf.memory().numTensors, before);
      tf.dispose([x, gamma, beta]);
    });
  });
});
