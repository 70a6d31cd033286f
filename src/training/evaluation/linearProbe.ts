// The linear probe: how linearly separable the classes are in the frozen features. Multinomial
// logistic regression, with the objective of scikit-learn's LogisticRegression (its defaults:
// L2 penalty with C = 1, intercept not penalised):
//
//     minimise  ½‖W‖² + C · Σᵢ −log softmax(W xᵢ + b)[yᵢ]
//
// solved to convergence by L-BFGS in double precision. The problem is strictly convex in W, so any
// solver that converges lands on the same classifier: the probe's accuracy is a property of the
// features, not of optimiser settings, and scikit-learn reproduces it (test/unit/linearProbe.test.ts).
// Plain TypeScript, not tfjs: float64 throughout, the same on every backend, and fast enough for the
// feature sizes the presets produce (docs/EVALUATION.md has the budget and timings).

export interface LabelledFeatures {
  /** count × dim, row-major. */
  features: Float32Array;
  labels: Int32Array;
  count: number;
  dim: number;
}

export interface ProbeOptions {
  /** Inverse regularisation strength, as scikit-learn's C. */
  c: number;
  maxIterations: number;
  /** Stop when the largest gradient component of the per-image objective falls below this. */
  gradientTolerance: number;
}

/** scikit-learn's C = 1; converged far tighter than its default tol, so that both reach the optimum. */
export const PROBE_DEFAULTS: ProbeOptions = { c: 1, maxIterations: 1000, gradientTolerance: 1e-6 };

export interface LinearClassifier {
  classes: number;
  dim: number;
  /** classes × dim, row-major. */
  weights: Float64Array;
  bias: Float64Array;
  iterations: number;
  converged: boolean;
}

/** Parameters packed as [W (classes × dim), b (classes)]. */
type Packed = Float64Array;

/**
 * The objective divided by the image count (same minimiser, a scale-free tolerance) and its
 * gradient, written into `gradient`.
 */
function objective(data: LabelledFeatures, classes: number, c: number, theta: Packed, gradient: Float64Array): number {
  const { features, labels, count, dim } = data;
  const biasAt = classes * dim;
  gradient.fill(0);
  const logits = new Float64Array(classes);
  let loss = 0;
  for (let i = 0; i < count; i++) {
    const row = i * dim;
    let max = -Infinity;
    for (let k = 0; k < classes; k++) {
      let z = theta[biasAt + k];
      const w = k * dim;
      for (let j = 0; j < dim; j++) z += theta[w + j] * features[row + j];
      logits[k] = z;
      if (z > max) max = z;
    }
    let sum = 0;
    for (let k = 0; k < classes; k++) {
      logits[k] = Math.exp(logits[k] - max);
      sum += logits[k];
    }
    const y = labels[i];
    loss += Math.log(sum) + max - (Math.log(logits[y]) + max);
    for (let k = 0; k < classes; k++) {
      // d(-log p_y)/dz_k = p_k - [k = y]
      const residual = logits[k] / sum - (k === y ? 1 : 0);
      if (residual === 0) continue;
      const w = k * dim;
      for (let j = 0; j < dim; j++) gradient[w + j] += residual * features[row + j];
      gradient[biasAt + k] += residual;
    }
  }
  const scale = c / count;
  let penalty = 0;
  for (let p = 0; p < biasAt; p++) {
    penalty += theta[p] * theta[p];
    gradient[p] = gradient[p] * scale + theta[p] / count;
  }
  for (let k = 0; k < classes; k++) gradient[biasAt + k] *= scale;
  return loss * scale + (0.5 * penalty) / count;
}

const dot = (a: Float64Array, b: Float64Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
const maxAbs = (a: Float64Array) => a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

/** Fits the probe on `train` (labels in [0, classes)). */
export function fitLinearProbe(train: LabelledFeatures, classes: number, options: ProbeOptions = PROBE_DEFAULTS): LinearClassifier {
  const size = classes * train.dim + classes;
  const memory = 10;
  let theta: Packed = new Float64Array(size);
  let gradient = new Float64Array(size);
  let value = objective(train, classes, options.c, theta, gradient);
  const history: { s: Float64Array; y: Float64Array; rho: number }[] = [];
  let iterations = 0;
  let converged = maxAbs(gradient) < options.gradientTolerance;
  while (!converged && iterations < options.maxIterations) {
    iterations++;
    // Two-loop recursion: direction = −H·g with the last `memory` curvature pairs.
    const direction = Float64Array.from(gradient, (g) => -g);
    const alphas: number[] = [];
    for (let h = history.length - 1; h >= 0; h--) {
      const { s, y, rho } = history[h];
      const alpha = rho * dot(s, direction);
      alphas[h] = alpha;
      for (let i = 0; i < size; i++) direction[i] -= alpha * y[i];
    }
    const last = history.at(-1);
    const gamma = last ? dot(last.s, last.y) / dot(last.y, last.y) : 1 / Math.max(1, maxAbs(gradient));
    for (let i = 0; i < size; i++) direction[i] *= gamma;
    for (let h = 0; h < history.length; h++) {
      const { s, y, rho } = history[h];
      const beta = rho * dot(y, direction);
      for (let i = 0; i < size; i++) direction[i] += s[i] * (alphas[h] - beta);
    }
    let slope = dot(gradient, direction);
    if (slope >= 0) {
      // Not a descent direction (curvature information went stale): restart from steepest descent.
      history.length = 0;
      for (let i = 0; i < size; i++) direction[i] = -gradient[i];
      slope = dot(gradient, direction);
    }
    // Backtracking line search on the Armijo condition.
    let step = 1;
    const next = new Float64Array(size);
    const nextGradient = new Float64Array(size);
    let nextValue = Infinity;
    for (let tries = 0; tries < 40; tries++) {
      for (let i = 0; i < size; i++) next[i] = theta[i] + step * direction[i];
      nextValue = objective(train, classes, options.c, next, nextGradient);
      if (nextValue <= value + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    if (!(nextValue < value)) break; // no progress possible in float64: as converged as it gets
    const s = Float64Array.from(next, (x, i) => x - theta[i]);
    const y = Float64Array.from(nextGradient, (g, i) => g - gradient[i]);
    const sy = dot(s, y);
    if (sy > 1e-12) {
      history.push({ s, y, rho: 1 / sy });
      if (history.length > memory) history.shift();
    }
    theta = next;
    gradient = nextGradient;
    value = nextValue;
    converged = maxAbs(gradient) < options.gradientTolerance;
  }
  const weightCount = classes * train.dim;
  return {
    classes, dim: train.dim,
    weights: theta.slice(0, weightCount), bias: theta.slice(weightCount),
    iterations, converged,
  };
}

export function predict(classifier: LinearClassifier, data: Omit<LabelledFeatures, 'labels'>): Int32Array {
  const { classes, dim, weights, bias } = classifier;
  const predicted = new Int32Array(data.count);
  for (let i = 0; i < data.count; i++) {
    let best = -Infinity;
    for (let k = 0; k < classes; k++) {
      let z = bias[k];
      for (let j = 0; j < dim; j++) z += weights[k * dim + j] * data.features[i * dim + j];
      if (z > best) {
        best = z;
        predicted[i] = k;
      }
    }
  }
  return predicted;
}

/** Top-1 accuracy on `test` of the probe fitted on `train`. */
export function linearProbeTop1(train: LabelledFeatures, test: LabelledFeatures, classes: number,
  options: ProbeOptions = PROBE_DEFAULTS): { top1: number; classifier: LinearClassifier } {
  const classifier = fitLinearProbe(train, classes, options);
  const predicted = predict(classifier, test);
  let correct = 0;
  for (let i = 0; i < test.count; i++) if (predicted[i] === test.labels[i]) correct++;
  return { top1: test.count ? correct / test.count : 0, classifier };
}
