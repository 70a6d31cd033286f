// Principal component analysis of row-major vectors down to a few components, without forming
// the d × d covariance: block subspace iteration applies C·V = Xcᵀ(Xc·V)/n, two passes over the
// data per iteration (≈ 2·n·d·p multiply-adds), then a Rayleigh–Ritz step picks the leading axes.
// 50 000 × 128 takes well under a second; forming the covariance would cost n·d²/2 and, for
// 512-d features, several seconds. Pure JavaScript: runs in the engine, in tests and in the bench.
import { Rng } from '../data/rng';

export interface PcaResult {
  /** Row-major, count × components: each row's coordinates on the principal axes. */
  coordinates: Float32Array;
  /** components × dims, row-major, unit length, sign fixed so the largest entry is positive. */
  axes: Float64Array;
  /** Variance along each axis (eigenvalues of the covariance, divided by n), descending. */
  variances: number[];
  /** Sum of the variances of every dimension, so variances[i] / totalVariance is the share explained. */
  totalVariance: number;
}

export interface PcaOptions {
  components?: number;
  /** Extra search directions: the leading axes converge at the rate λ(p+1)/λ(k). */
  oversample?: number;
  maxIterations?: number;
  /** Relative change of the leading variances below which the iteration stops. */
  tolerance?: number;
  seed?: number;
}

/** Column means of row-major vectors. */
function columnMeans(data: Float32Array, count: number, dims: number): Float64Array {
  const mean = new Float64Array(dims);
  for (let i = 0; i < count; i++) {
    const offset = i * dims;
    for (let j = 0; j < dims; j++) mean[j] += data[offset + j];
  }
  for (let j = 0; j < dims; j++) mean[j] /= Math.max(1, count);
  return mean;
}

/**
 * W = C·V for the covariance C of the centred data; V and W are p × dims, row-major (one
 * direction per row). Internally dims × p, so each pass reads a data row once, contiguously.
 */
function applyCovariance(data: Float32Array, count: number, dims: number, mean: Float64Array, basis: Float64Array, p: number): Float64Array {
  const transposed = new Float64Array(dims * p);
  for (let a = 0; a < p; a++) for (let j = 0; j < dims; j++) transposed[j * p + a] = basis[a * dims + j];
  // (x − mean)·v = x·v − mean·v.
  const meanDot = new Float64Array(p);
  for (let j = 0; j < dims; j++) for (let a = 0; a < p; a++) meanDot[a] += mean[j] * transposed[j * p + a];
  const accumulated = new Float64Array(dims * p);
  const projected = new Float64Array(p);
  const projectedSum = new Float64Array(p);
  for (let i = 0; i < count; i++) {
    const offset = i * dims;
    projected.fill(0);
    for (let j = 0; j < dims; j++) {
      const x = data[offset + j];
      const base = j * p;
      for (let a = 0; a < p; a++) projected[a] += x * transposed[base + a];
    }
    for (let a = 0; a < p; a++) {
      projected[a] -= meanDot[a];
      projectedSum[a] += projected[a];
    }
    for (let j = 0; j < dims; j++) {
      const x = data[offset + j];
      const base = j * p;
      for (let a = 0; a < p; a++) accumulated[base + a] += x * projected[a];
    }
  }
  // Σ (x − mean)·t = Σ x·t − mean · Σ t, with t the centred projections.
  const out = new Float64Array(p * dims);
  for (let a = 0; a < p; a++) {
    for (let j = 0; j < dims; j++) out[a * dims + j] = (accumulated[j * p + a] - mean[j] * projectedSum[a]) / Math.max(1, count);
  }
  return out;
}

/** Orthonormalises the rows in place (modified Gram–Schmidt); a row that collapses is replaced by a fresh random one. */
function orthonormalise(rows: Float64Array, p: number, dims: number, rng: Rng): void {
  for (let a = 0; a < p; a++) {
    for (let attempt = 0; ; attempt++) {
      for (let b = 0; b < a; b++) {
        let dot = 0;
        for (let j = 0; j < dims; j++) dot += rows[a * dims + j] * rows[b * dims + j];
        for (let j = 0; j < dims; j++) rows[a * dims + j] -= dot * rows[b * dims + j];
      }
      let norm = 0;
      for (let j = 0; j < dims; j++) norm += rows[a * dims + j] ** 2;
      norm = Math.sqrt(norm);
      if (norm > 1e-12 || attempt > 3) {
        for (let j = 0; j < dims; j++) rows[a * dims + j] /= norm || 1;
        break;
      }
      for (let j = 0; j < dims; j++) rows[a * dims + j] = rng.uniform(-1, 1);
    }
  }
}

/** Eigen-decomposition of a small symmetric matrix (cyclic Jacobi): values descending, vectors as rows. */
export function symmetricEigen(matrix: Float64Array, n: number): { values: number[]; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += a[i * n + j] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i]);
  const vectors = new Float64Array(n * n);
  order.forEach((column, row) => {
    for (let k = 0; k < n; k++) vectors[row * n + k] = v[k * n + column];
  });
  return { values: order.map((i) => a[i * n + i]), vectors };
}

/** The leading principal components of `count` row-major vectors of `dims` values. */
export function pca(data: Float32Array, count: number, dims: number, options: PcaOptions = {}): PcaResult {
  if (data.length !== count * dims) throw new Error(`${data.length} values cannot be ${count} vectors of ${dims} dimensions`);
  const components = Math.min(options.components ?? 2, dims);
  const p = Math.min(dims, components + (options.oversample ?? 4));
  // A map needs the leading plane, not digits of its variances: data with no gap between them
  // (isotropic noise) would otherwise iterate for nothing. With 4 extra directions the leading
  // two converge at (λ7/λ2)^i, a handful of iterations for the decaying spectra of real features.
  const maxIterations = options.maxIterations ?? 15;
  const tolerance = options.tolerance ?? 1e-5;
  const rng = new Rng(options.seed ?? 0);
  const mean = columnMeans(data, count, dims);

  let totalVariance = 0;
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < dims; j++) totalVariance += (data[i * dims + j] - mean[j]) ** 2;
  }
  totalVariance /= Math.max(1, count);

  let basis: Float64Array = Float64Array.from({ length: p * dims }, () => rng.uniform(-1, 1));
  orthonormalise(basis, p, dims, rng);
  let previous: number[] = [];
  let ritz: { values: number[]; vectors: Float64Array } = { values: [], vectors: new Float64Array(0) };
  for (let iteration = 0; iteration < maxIterations; iteration++) {
    const image = applyCovariance(data, count, dims, mean, basis, p);
    // Rayleigh–Ritz on span(basis): H = Vᵀ C V, whose eigenvalues approach C's leading ones.
    const h = new Float64Array(p * p);
    for (let a = 0; a < p; a++) {
      for (let b = 0; b < p; b++) {
        let s = 0;
        for (let j = 0; j < dims; j++) s += basis[a * dims + j] * image[b * dims + j];
        h[a * p + b] = s;
      }
    }
    for (let a = 0; a < p; a++) for (let b = a + 1; b < p; b++) h[a * p + b] = h[b * p + a] = (h[a * p + b] + h[b * p + a]) / 2;
    ritz = symmetricEigen(h, p);
    const leading = ritz.values.slice(0, components);
    const settled = previous.length > 0 && leading.every((value, i) => Math.abs(value - previous[i]) <= tolerance * Math.max(Math.abs(value), 1e-30));
    if (settled || iteration === maxIterations - 1) break;
    previous = leading;
    orthonormalise(image, p, dims, rng);
    basis = image;
  }

  const axes = new Float64Array(components * dims);
  for (let c = 0; c < components; c++) {
    for (let a = 0; a < p; a++) {
      const weight = ritz.vectors[c * p + a];
      for (let j = 0; j < dims; j++) axes[c * dims + j] += weight * basis[a * dims + j];
    }
    let norm = 0;
    let largest = 0;
    for (let j = 0; j < dims; j++) {
      const x = axes[c * dims + j];
      norm += x * x;
      if (Math.abs(x) > Math.abs(largest)) largest = x;
    }
    const scale = (largest < 0 ? -1 : 1) / (Math.sqrt(norm) || 1);
    for (let j = 0; j < dims; j++) axes[c * dims + j] *= scale;
  }

  const coordinates = new Float32Array(count * components);
  for (let i = 0; i < count; i++) {
    for (let c = 0; c < components; c++) {
      let s = 0;
      for (let j = 0; j < dims; j++) s += (data[i * dims + j] - mean[j]) * axes[c * dims + j];
      coordinates[i * components + c] = s;
    }
  }
  return { coordinates, axes, variances: ritz.values.slice(0, components).map((x) => Math.max(0, x)), totalVariance };
}
