import * as assert from 'assert';
import { addEngineLine, addReferenceLine, curveTable, emptyRun, meanSd, parseSeeds, speedTable, steadyRate } from '../../bench/parity/summary';

// The parity harness's bookkeeping (bench/parity/summary.ts); the harness itself needs PyTorch and runs by hand.
describe('parity harness summary', () => {
  it('mean ± sample sd over seeds, ignoring missing values', () => {
    const { mean, sd, n } = meanSd([1, 2, 3, NaN]);
    assert.strictEqual(n, 3);
    assert.strictEqual(mean, 2);
    assert.strictEqual(sd, 1);
    assert.deepStrictEqual(meanSd([5]), { mean: 5, sd: 0, n: 1 });
    assert.strictEqual(meanSd([]).n, 0);
  });

  it('reads the engine protocol: untrained kNN and epoch records, other lines ignored', () => {
    const run = emptyRun(0);
    addEngineLine(run, '{"v":2,"type":"progress","task":"decode","done":0,"total":10}');
    addEngineLine(run, '{"v":2,"type":"metric","record":{"kind":"eval","step":0,"epoch":0,"knnTop1":0.4}}');
    addEngineLine(run, '{"v":2,"type":"metric","record":{"kind":"step","step":1,"epoch":0,"loss":-0.5,"lr":0.015}}');
    addEngineLine(run, '{"v":2,"type":"metric","record":{"kind":"epoch","step":15,"epoch":1,"meanLoss":-0.03,"zStd":0.044,"knnTop1":0.46,"imagesPerSecond":25,"seconds":40,"loaderWaitSeconds":2}}');
    addEngineLine(run, 'Warning: not JSON');
    assert.deepStrictEqual(run, { seed: 0, knnTop1: [0.4, 0.46], meanLoss: [-0.03], zStd: [0.044], imagesPerSecond: [25], loaderWaitShare: [0.05], viewShare: [NaN] });
  });

  it('reads the reference script\'s lines', () => {
    const run = emptyRun(1);
    addReferenceLine(run, '{"type": "eval", "epoch": 0, "knnTop1": 0.3}');
    addReferenceLine(run, '{"type": "epoch", "epoch": 1, "meanLoss": -0.1, "zStd": 0.04, "knnTop1": 0.5, "imagesPerSecond": 150}');
    addReferenceLine(run, '{"type": "epoch", "epoch": 2, "meanLoss": -0.2, "zStd": 0.03, "knnTop1": 0.6, "imagesPerSecond": 170, "seconds": 10, "viewSeconds": 2.5}');
    assert.deepStrictEqual(run.meanLoss, [-0.1, -0.2]);
    assert.deepStrictEqual(run.knnTop1, [0.3, 0.5, 0.6]);
    assert.strictEqual(steadyRate(run), 170, 'the first epoch (warm-up) is left out of the speed when there are later ones');
    assert.deepStrictEqual(run.viewShare, [NaN, 0.25]);
  });

  it('tables per epoch over seeds and the speed ratio per seed', () => {
    const side = (seed: number, loss: number, rate: number, wait = NaN, views = NaN) =>
      ({ seed, knnTop1: [0.4, 0.5], meanLoss: [loss], zStd: [0.044], imagesPerSecond: [rate], loaderWaitShare: [wait], viewShare: [views] });
    const table = curveTable([side(0, -0.1, 50), side(1, -0.3, 50)], [side(0, -0.2, 100), side(1, -0.2, 100)], 1);
    assert.match(table, /\| 1 \| -0\.200 ± 0\.141 \| -0\.200 ± 0\.000 \| 0\.0440 ± 0\.0000 \|/);
    assert.match(table, /\| 0 \(untrained\) \|.*\| 40\.0 ± 0\.0 \| 40\.0 ± 0\.0 \|/);
    const speed = speedTable([side(0, 0, 50, 0.012), side(1, 0, 60)], [side(0, 0, 100, NaN, 0.2), side(1, 0, 100)]);
    // Without its 20 % of view making, PyTorch would do 125 img/s: 50 / 125 = 0.40.
    assert.match(speed, /\| 0 \| 50\.0; 50\.0 \| 100\.0; 100\.0 \| 0\.50 \| 1\.2 % \| 20\.0 % \| 0\.40 \|/);
    assert.match(speed, /\| 1 \| 60\.0; 60\.0 \| 100\.0; 100\.0 \| 0\.60 \| — \| — \| — \|/, 'runs that did not report the shares');
    assert.match(speed, /\| all \| \| \| 0\.55 ± 0\.07 \| \| \| 0\.40 ± 0\.00 \|/);
    const slow = speedTable([side(0, 0, 0.123)], [side(0, 0, 2.71)]);
    assert.match(slow, /\| 0 \| 0\.123; 0\.123 \| 2\.71; 2\.71 \| 0\.05 \|/, 'photo-size rates keep their digits');
  });

  it('seeds as a count or a list', () => {
    assert.deepStrictEqual(parseSeeds('3'), [0, 1, 2]);
    assert.deepStrictEqual(parseSeeds('4,7'), [4, 7]);
    assert.deepStrictEqual(parseSeeds('5,'), [5]);
    assert.throws(() => parseSeeds('0'), /at least one seed/);
    assert.throws(() => parseSeeds('two'), /count \(3\) or a comma-separated list/);
  });
});
