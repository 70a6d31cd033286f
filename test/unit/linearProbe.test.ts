// The linear probe against scikit-learn's LogisticRegression on the same features: same objective,
// so the same classifier and the same accuracy (to one point; in practice to the last image).
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { fitLinearProbe, linearProbeTop1, type LabelledFeatures } from '../../src/training/evaluation/linearProbe';

/** A small deterministic generator (mulberry32) and Box–Muller normals: the data must not depend on the run. */
function normals(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Overlapping Gaussian classes, l2-normalised like the backbone features the probe gets. */
function clusters(count: number, dim: number, classes: number, spread: number, seed: number): LabelledFeatures {
  // The classes' centres are the same for every sample drawn (train and test); the points are not.
  const centre = normals(dim * classes);
  const centres = Array.from({ length: classes }, () => Array.from({ length: dim }, centre));
  const normal = normals(seed);
  const features = new Float32Array(count * dim);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const y = i % classes;
    labels[i] = y;
    let norm = 0;
    const row = centres[y].map((c) => c + spread * normal());
    for (const x of row) norm += x * x;
    row.forEach((x, j) => { features[i * dim + j] = x / Math.sqrt(norm); });
  }
  return { features, labels, count, dim };
}

function sklearnAvailable(): string | null {
  const probe = spawnSync('python3', ['-c', 'import sklearn, numpy'], { encoding: 'utf8' });
  if (probe.error) return `python3 is not installed (${probe.error.message})`;
  return probe.status === 0 ? null : 'scikit-learn is not installed for python3 (npm test installs it where pip or apt can)';
}

const SKLEARN_SCRIPT = `
import json, sys, numpy as np
from sklearn.linear_model import LogisticRegression
d = json.load(open(sys.argv[1]))
def arr(s): return np.array(s['features'], dtype=np.float64).reshape(s['count'], s['dim']), np.array(s['labels'])
(xtr, ytr), (xte, yte) = arr(d['train']), arr(d['test'])
m = LogisticRegression(C=1.0, tol=1e-10, max_iter=100000).fit(xtr, ytr)
print(json.dumps({'top1': float((m.predict(xte) == yte).mean()), 'coef': m.coef_.ravel().tolist(), 'intercept': m.intercept_.tolist()}))
`;

describe('linear probe', function () {
  this.timeout(120_000);

  it('converges and separates classes that are linearly separable', () => {
    const train = clusters(300, 16, 3, 0.05, 1);
    const test = clusters(150, 16, 3, 0.05, 2);
    const { top1, classifier } = linearProbeTop1(train, test, 3);
    assert.ok(classifier.converged, `not converged after ${classifier.iterations} iterations`);
    assert.strictEqual(top1, 1);
  });

  it('agrees with scikit-learn LogisticRegression on the same features', function () {
    const missing = sklearnAvailable();
    if (missing) this.skip();
    const train = clusters(600, 32, 5, 4, 3);
    const test = clusters(300, 32, 5, 4, 4);
    const ours = linearProbeTop1(train, test, 5);
    assert.ok(ours.classifier.converged);
    // A problem with a margin to learn: neither trivial nor hopeless.
    assert.ok(ours.top1 > 0.4 && ours.top1 < 0.95, `top-1 ${ours.top1}`);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-probe-'));
    try {
      const file = path.join(dir, 'features.json');
      const plain = (s: LabelledFeatures) => ({ ...s, features: Array.from(s.features), labels: Array.from(s.labels) });
      fs.writeFileSync(file, JSON.stringify({ train: plain(train), test: plain(test) }));
      const run = spawnSync('python3', ['-c', SKLEARN_SCRIPT, file], { encoding: 'utf8' });
      assert.strictEqual(run.status, 0, run.stderr);
      const theirs = JSON.parse(run.stdout) as { top1: number; coef: number[]; intercept: number[] };
      assert.ok(Math.abs(theirs.top1 - ours.top1) <= 0.01, `scikit-learn ${theirs.top1}, ours ${ours.top1}`);
      // The same optimum, not only the same score.
      const scale = Math.max(...theirs.coef.map(Math.abs));
      const worst = Math.max(...theirs.coef.map((w, i) => Math.abs(w - ours.classifier.weights[i])));
      assert.ok(worst < 1e-3 * scale, `largest weight difference ${worst} (weights up to ${scale})`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives every class the same score when the features carry no information', () => {
    const data: LabelledFeatures = { features: new Float32Array(40 * 4).fill(0.5), labels: Int32Array.from({ length: 40 }, (_, i) => i % 4), count: 40, dim: 4 };
    const classifier = fitLinearProbe(data, 4);
    assert.ok(classifier.converged);
    for (const b of classifier.bias) assert.ok(Math.abs(b - classifier.bias[0]) < 1e-6, `biases ${Array.from(classifier.bias)}`);
  });
});
