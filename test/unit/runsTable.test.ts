// The runs table's webview, its pure parts: the columns (what a cell says, sorting, the status
// filter), the overlays (x axes, smoothing, log scale, one colour per run, the legend's latest
// value, CSV) and the protocol's checks of what the webview sends.
import * as assert from 'assert';
import { BLANK, COLUMNS, filterRows, NO_LABELS, sortRows, statusChoices } from '../../media/src/runsTable/columns';
import { aligned, chartCsv, chartCurves, ema, latestText, runColors, RUN_COLORS, savedName } from '../../media/src/runsTable/series';
import {
  MAX_SELECTED_RUNS, parseFromRunsTable, parseRunsTableState, parseToRunsTable, runsTableMessage, RunsTableProtocolError,
  type RunRowShape, type RunSeries,
} from '../../src/webview/runsTableProtocol';

function row(name: string, patch: Partial<RunRowShape> = {}): RunRowShape {
  return {
    runDir: `/data/.simsiam/runs/${name}`, id: name, name, note: null, status: 'completed', problem: null,
    started: '2026-12-01T10:00:00.000Z', durationSeconds: 65, preset: 'tiny', backbone: 'resnet18', imageSize: 32, batchSize: 64,
    baseLr: 0.06, epochs: 5, colorJitter: 1, backend: 'cpu', imagesPerSecond: 120.25, finalLoss: -0.81234, evaluation: null, ...patch,
  };
}

const cell = (r: RunRowShape, id: string) => COLUMNS.find((c) => c.id === id)!.text(r);

function series(name: string, batchSize: number, steps: number[]): RunSeries {
  return {
    runDir: `/runs/${name}`, name, batchSize, stepsPerEpoch: 3,
    steps: { step: steps, epoch: steps.map((s) => Math.floor((s - 1) / 3)), loss: steps.map((s) => -s / 10), lr: steps.map(() => 0.01) },
    epochs: { step: [3], epoch: [1], meanLoss: [-0.2], zStdRatio: [0.8] },
    knn: { step: [0, 3], epoch: [0, 1], top1: [0.1, 0.4] },
    evaluations: [{ kind: 'evaluation', step: 3, epoch: 1, figures: { knnTop1At20: 0.5, knnTop1At200: 0.5, probeTop1: 0.6, precisionAt10: 0.4 },
      baseline: { knnTop1At20: 0.2, knnTop1At200: 0.2, probeTop1: 0.3, precisionAt10: 0.1 }, trainImages: 10, testImages: 5, seconds: 1 }],
  };
}

describe('runs table: columns', () => {
  it('says "—" for a figure a run lacks and "no labels" for an evaluation without class folders', () => {
    const none = row('none');
    assert.strictEqual(cell(none, 'knn20'), BLANK);
    assert.strictEqual(cell(none, 'probeInit'), BLANK);
    const unlabelled = row('unlabelled', { evaluation: { step: 5, figures: null, baseline: null } });
    assert.strictEqual(cell(unlabelled, 'knn200'), NO_LABELS);
    assert.strictEqual(cell(unlabelled, 'probeInit'), NO_LABELS);
    const scored = row('scored', { evaluation: { step: 5, figures: { knnTop1At20: 0.5, knnTop1At200: 0.45, probeTop1: 0.612 }, baseline: { knnTop1At20: 0.2, knnTop1At200: 0.19, probeTop1: 0.3 } } });
    assert.deepStrictEqual(['knn20', 'knn20Init', 'knn200', 'knn200Init', 'probe', 'probeInit'].map((id) => cell(scored, id)),
      ['50.0%', '20.0%', '45.0%', '19.0%', '61.2%', '30.0%']);
    assert.strictEqual(cell(row('x', { finalLoss: null, imagesPerSecond: null, durationSeconds: null }), 'finalLoss'), BLANK);
    assert.strictEqual(cell(none, 'finalLoss'), '-0.8123');
    assert.strictEqual(cell(none, 'duration'), '1m 05s');
  });

  it('sorts by a column either way, missing values last, and filters by status', () => {
    const rows = [row('a', { baseLr: 0.03 }), row('b', { baseLr: null, status: 'failed' }), row('c', { baseLr: 0.1, status: 'running' })];
    assert.deepStrictEqual(sortRows(rows, { column: 'baseLr', descending: false }).map((r) => r.name), ['a', 'c', 'b']);
    assert.deepStrictEqual(sortRows(rows, { column: 'baseLr', descending: true }).map((r) => r.name), ['c', 'a', 'b']);
    assert.deepStrictEqual(sortRows(rows, { column: 'name', descending: true }).map((r) => r.name), ['c', 'b', 'a']);
    assert.deepStrictEqual(sortRows(rows, undefined).map((r) => r.name), ['a', 'b', 'c']);
    assert.deepStrictEqual(filterRows(rows, 'running').map((r) => r.name), ['c']);
    assert.deepStrictEqual(filterRows(rows, 'all').length, 3);
    assert.deepStrictEqual(statusChoices(rows), ['all', 'running', 'completed', 'failed']);
  });
});

describe('runs table: overlays', () => {
  const small = series('small', 8, [1, 2, 3, 4]);
  const large = series('large', 32, [1, 2]);
  const colors = runColors([{ runDir: small.runDir, started: '2026-12-01T10:00:00Z' }, { runDir: large.runDir, started: '2026-12-01T11:00:00Z' }]);
  const plain = { axis: 'images' as const, smoothing: 0, logScale: false };

  it('gives each run one colour, by age, so sorting the table or a newer run does not change it', () => {
    assert.deepStrictEqual([colors.get(small.runDir), colors.get(large.runDir)], [RUN_COLORS[0], RUN_COLORS[1]]);
    const withNewer = runColors([{ runDir: '/runs/newer', started: '2026-12-02T00:00:00Z' }, { runDir: large.runDir, started: '2026-12-01T11:00:00Z' },
      { runDir: small.runDir, started: '2026-12-01T10:00:00Z' }]);
    assert.strictEqual(withNewer.get(small.runDir), colors.get(small.runDir));
    assert.strictEqual(withNewer.get(large.runDir), colors.get(large.runDir));
  });

  it('draws step curves against images seen (step × batch size), each run in its colour', () => {
    const curves = chartCurves('loss', [small, large], colors, plain);
    assert.deepStrictEqual(curves.map((c) => c.xs), [[8, 16, 24, 32], [32, 64]]);
    assert.deepStrictEqual(curves.map((c) => c.color), [RUN_COLORS[0], RUN_COLORS[1]]);
    const [xs, a, b] = aligned(curves);
    assert.deepStrictEqual(xs, [8, 16, 24, 32, 64]);
    assert.deepStrictEqual(a, [-0.1, -0.2, -0.3, -0.4, null]);
    assert.deepStrictEqual(b, [null, null, null, -0.1, -0.2]);
    assert.deepStrictEqual(chartCurves('loss', [small], colors, { ...plain, axis: 'epoch' })[0].xs, [1 / 3, 2 / 3, 1, 4 / 3]);
    assert.deepStrictEqual(chartCurves('zstd', [small], colors, plain)[0], { runDir: small.runDir, label: 'small', color: RUN_COLORS[0], dashed: false, xs: [24], ys: [0.8] });
    assert.deepStrictEqual(chartCurves('knn', [small], colors, plain)[0].ys, [10, 40]);
    const probe = chartCurves('probe', [small], colors, plain);
    assert.deepStrictEqual(probe.map((c) => [c.label, c.dashed, c.xs, c.ys]), [['small', false, [24], [60]], ['small (random init)', true, [24], [30]]]);
  });

  it('smooths with a debiased EMA and, on a log scale, draws the loss as loss + 1', () => {
    assert.deepStrictEqual(ema([1, 1, 1], 0.9).map((y) => Number(y.toFixed(12))), [1, 1, 1], 'debiased: a constant stays constant');
    const smoothed = ema([0, 10], 0.5);
    assert.strictEqual(smoothed[0], 0);
    assert.ok(Math.abs(smoothed[1] - 10 * 0.5 / 0.75) < 1e-12);
    assert.deepStrictEqual(ema([3, 4], 0), [3, 4]);
    const log = chartCurves('loss', [series('r', 8, [1, 2, 10, 11])], colors, { ...plain, logScale: true })[0];
    // loss −1.0 and −1.1 are at or below the optimum: no place on a log scale.
    assert.deepStrictEqual(log.xs, [8, 16]);
    assert.deepStrictEqual(log.ys.map((y) => Number(y.toFixed(12))), [0.9, 0.8]);
  });

  it("shows each curve's latest value and saves the chart's data as CSV", () => {
    const curves = chartCurves('loss', [small, large], colors, plain);
    assert.deepStrictEqual(curves.map((c) => latestText(c, false)), ['-0.4000', '-0.2000']);
    assert.strictEqual(latestText({ ...curves[0], ys: [0.00002] }, false), '2.000e-5');
    assert.strictEqual(latestText({ ...curves[0], ys: [] }, false), null);
    assert.strictEqual(latestText({ ...curves[0], ys: [41.25] }, true), '41.3%');
    assert.strictEqual(chartCsv(curves, 'images'), 'images seen,small,large\n8,-0.1,\n16,-0.2,\n24,-0.3,\n32,-0.4,-0.1\n64,,-0.2\n');
    assert.strictEqual(chartCsv([{ ...curves[0], label: 'a "b", c' }], 'step').split('\n')[0], 'step,"a ""b"", c"');
    assert.strictEqual(savedName('my data/set', 'loss', 'images', 'png'), 'my-data-set-loss-by-images.png');
  });
});

describe('runs table: protocol', () => {
  const from = (body: Record<string, unknown>) => parseFromRunsTable(runsTableMessage(body as never));

  it('accepts what the webview sends and refuses anything malformed, naming the field', () => {
    assert.deepStrictEqual(from({ type: 'select', runDirs: ['/a', '/b'] }), { v: 1, type: 'select', runDirs: ['/a', '/b'] });
    assert.throws(() => from({ type: 'select', runDirs: Array.from({ length: MAX_SELECTED_RUNS + 1 }, (_, i) => `/r${i}`) }), RunsTableProtocolError);
    assert.throws(() => from({ type: 'select', runDirs: [''] }), /runDirs/);
    assert.ok(from({ type: 'save', format: 'png', name: 'x-loss.png', data: 'data:image/png;base64,iVBORw0KGgo=' }));
    assert.throws(() => from({ type: 'save', format: 'png', name: 'x.png', data: 'data:text/html;base64,PGI+' }), /data/);
    assert.throws(() => from({ type: 'save', format: 'csv', name: '../../escape.csv', data: 'a,b' }), /name/);
    assert.throws(() => from({ type: 'save', format: 'exe', name: 'x', data: '' }), RunsTableProtocolError);
    assert.throws(() => from({ type: 'launch' }), /unknown runs table webview message type/);
    assert.throws(() => parseFromRunsTable({ v: 2, type: 'ready' }), /protocol version 2/);
    assert.ok(parseToRunsTable(runsTableMessage({ type: 'view', axis: 'images', selected: ['/a'] })));
    assert.throws(() => parseToRunsTable(runsTableMessage({ type: 'view', axis: 'time' } as never)), /axis/);
  });

  it('checks the state a reload hands back', () => {
    assert.deepStrictEqual(parseRunsTableState({ datasetRoot: '/data', axis: 'epoch' }), { datasetRoot: '/data', axis: 'epoch' });
    assert.strictEqual(parseRunsTableState({ datasetRoot: '' }), null);
    assert.strictEqual(parseRunsTableState({ datasetRoot: '/data', smoothing: 2 }), null);
    assert.strictEqual(parseRunsTableState(null), null);
  });
});
