// The runs of a dataset side by side (src/training/run/runsReport.ts): the rows the runs table and
// `simsiam runs` show, damaged runs as rows that say what is wrong, the config diff, the overlays'
// images-seen axis, and the terminal text.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { resolveConfig, type TrainConfig } from '../../src/training/config';
import type { MetricRecord } from '../../src/training/metrics';
import { defaultRunsDir, METRICS_FILE, RUN_FILE, STATUS_FILE, writeJsonAtomic, writeStatus, type RunRecord } from '../../src/training/run/runStore';
import {
  BLANK, configDiff, formatComparison, formatRunsTable, NO_LABELS, readComparedRuns, readRunsReport, type RunRow,
} from '../../src/training/run/runsReport';
import { axisValue } from '../../src/webview/runsTableProtocol';
import { runSeries, selectionSeries, stepsPerEpoch } from '../../src/host/runsTable/runSeries';

const FIGURES = { knnTop1At20: 0.62, knnTop1At200: 0.6, probeTop1: 0.71, precisionAt10: 0.55 };
const BASELINE = { knnTop1At20: 0.31, knnTop1At200: 0.3, probeTop1: 0.4, precisionAt10: 0.25 };

function epochRecord(epoch: number, step: number, meanLoss: number, seconds = 10): MetricRecord {
  return {
    kind: 'epoch', step, epoch, meanLoss, lr: 0.01, zStd: 0.02, zStdReference: 0.04, knnTop1: 0.5, imagesPerSecond: 100 + epoch,
    skippedFiles: 0, seconds,
  };
}

/** A run folder written by hand: run.json, status.json and metrics.jsonl as a training leaves them. */
function writeRun(runsDir: string, id: string, options: {
  config?: Partial<TrainConfig>; createdAt: string; status?: 'completed' | 'stopped'; records?: MetricRecord[]; note?: string; datasetRoot: string;
}): string {
  const dir = path.join(runsDir, id);
  fs.mkdirSync(dir, { recursive: true });
  const config = resolveConfig('tiny', { epochs: 2, ...options.config });
  const record: RunRecord & { note?: string } = {
    id, name: id, createdAt: options.createdAt, config, backend: 'cpu',
    dataset: { root: options.datasetRoot, trainImages: 24, testImages: 8, classes: ['a', 'b'] },
    ...(options.note ? { note: options.note } : {}),
  };
  writeJsonAtomic(path.join(dir, RUN_FILE), record);
  writeStatus(dir, { status: options.status ?? 'completed', step: 6, epoch: 2 });
  fs.writeFileSync(path.join(dir, METRICS_FILE), (options.records ?? []).map((r) => JSON.stringify(r) + '\n').join(''));
  return dir;
}

describe('runs report', () => {
  let root: string;
  let dataset: string;
  let runsDir: string;

  beforeEach(() => {
    root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-runs-report-')));
    dataset = path.join(root, 'cifar');
    fs.mkdirSync(dataset);
    runsDir = defaultRunsDir(dataset);
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  function twoRuns(): { small: string; large: string } {
    const small = writeRun(runsDir, '20261201-100000-small', {
      datasetRoot: dataset, createdAt: '2026-12-01T10:00:00.000Z', config: { batchSize: 8 }, note: 'batch 8 as a baseline',
      records: [
        { kind: 'eval', step: 0, epoch: 0, knnTop1: 0.2 },
        { kind: 'step', step: 1, epoch: 0, loss: -0.1, lr: 0.01 },
        { kind: 'step', step: 2, epoch: 0, loss: -0.2, lr: 0.01 },
        { kind: 'step', step: 3, epoch: 0, loss: -0.3, lr: 0.01 },
        epochRecord(1, 3, -0.2),
        { kind: 'step', step: 4, epoch: 1, loss: -0.4, lr: 0.01 },
        { kind: 'step', step: 5, epoch: 1, loss: -0.5, lr: 0.01 },
        { kind: 'step', step: 6, epoch: 1, loss: -0.6, lr: 0.01 },
        epochRecord(2, 6, -0.5, 12),
        { kind: 'evaluation', step: 6, epoch: 2, figures: FIGURES, baseline: BASELINE, trainImages: 24, testImages: 8, seconds: 1 },
      ],
    });
    const large = writeRun(runsDir, '20261201-110000-large', {
      datasetRoot: dataset, createdAt: '2026-12-01T11:00:00.000Z', config: { batchSize: 16, colorJitter: 0.5 }, status: 'stopped',
      records: [
        { kind: 'step', step: 1, epoch: 0, loss: -0.15, lr: 0.02 },
        { kind: 'step', step: 2, epoch: 0, loss: -0.25, lr: 0.02 },
        epochRecord(1, 2, -0.2),
      ],
    });
    return { small, large };
  }

  it('lists one row per run, newest first, with its settings and final figures', () => {
    const { small, large } = twoRuns();
    const report = readRunsReport(dataset);
    assert.deepStrictEqual(report.rows.map((r) => r.runDir), [large, small]);
    assert.deepStrictEqual(report.runsFolders, [runsDir]);
    const row = report.rows[1];
    assert.strictEqual(row.name, '20261201-100000-small');
    assert.strictEqual(row.note, 'batch 8 as a baseline');
    assert.strictEqual(row.status, 'completed');
    assert.strictEqual(row.problem, null);
    assert.strictEqual(row.started, '2026-12-01T10:00:00.000Z');
    assert.strictEqual(row.durationSeconds, 22, 'the sum of the epochs\' times');
    assert.deepStrictEqual([row.preset, row.backbone, row.imageSize, row.batchSize, row.baseLr, row.epochs, row.colorJitter, row.backend],
      ['tiny', 'resnet18', 32, 8, 0.06, 2, 1, 'cpu']);
    assert.strictEqual(row.imagesPerSecond, 102, 'of the last epoch record');
    assert.strictEqual(row.finalLoss, -0.5, 'the last epoch\'s mean loss');
    assert.deepStrictEqual(row.evaluation, {
      step: 6,
      figures: { knnTop1At20: 0.62, knnTop1At200: 0.6, probeTop1: 0.71 },
      baseline: { knnTop1At20: 0.31, knnTop1At200: 0.3, probeTop1: 0.4 },
    });
    assert.strictEqual(report.rows[0].status, 'stopped');
    assert.strictEqual(report.rows[0].evaluation, null);
  });

  it('makes a damaged run a row that says what is wrong, and keeps listing the others', () => {
    twoRuns();
    const broken = path.join(runsDir, '20261201-120000-broken');
    fs.mkdirSync(broken);
    fs.writeFileSync(path.join(broken, RUN_FILE), '{"id": "x", "name": ');
    const badMetrics = writeRun(runsDir, '20261201-130000-bad-metrics', { datasetRoot: dataset, createdAt: '2026-12-01T13:00:00.000Z' });
    fs.writeFileSync(path.join(badMetrics, METRICS_FILE), 'not json\n{"kind":"step","step":1,"epoch":0,"loss":0,"lr":0}\n');
    const noStatus = writeRun(runsDir, '20261201-140000-no-status', { datasetRoot: dataset, createdAt: '2026-12-01T14:00:00.000Z' });
    fs.writeFileSync(path.join(noStatus, STATUS_FILE), '{"status": "sideways"}');

    const rows = readRunsReport(dataset).rows;
    assert.strictEqual(rows.length, 5);
    assert.strictEqual(rows[0].runDir, broken, 'damaged runs come first');
    assert.strictEqual(rows[0].status, 'damaged');
    assert.match(rows[0].problem ?? '', /run\.json/);
    const metricsRow = rows.find((r) => r.runDir === badMetrics)!;
    assert.strictEqual(metricsRow.status, 'completed', 'its run.json and status still read');
    assert.match(metricsRow.problem ?? '', /metrics\.jsonl, line 1, is not a metric record/);
    const statusRow = rows.find((r) => r.runDir === noStatus)!;
    assert.strictEqual(statusRow.status, 'interrupted');
    assert.match(statusRow.problem ?? '', /status\.json/);
    const text = formatRunsTable(readRunsReport(dataset)).join('\n');
    assert.match(text, /20261201-120000-broken: .*run\.json/);
  });

  it('adds the runs of this dataset from extra runs folders, and only those', () => {
    const { small } = twoRuns();
    const shared = path.join(root, 'shared-runs');
    const here = writeRun(shared, '20261201-150000-elsewhere', { datasetRoot: dataset, createdAt: '2026-12-01T15:00:00.000Z' });
    writeRun(shared, '20261201-160000-other-dataset', { datasetRoot: path.join(root, 'other'), createdAt: '2026-12-01T16:00:00.000Z' });
    const report = readRunsReport(dataset, [shared, path.join(root, 'missing')]);
    assert.deepStrictEqual(report.runsFolders, [runsDir, shared]);
    assert.strictEqual(report.rows[0].runDir, here);
    assert.strictEqual(report.rows.length, 3);
    assert.ok(report.rows.some((r) => r.runDir === small));
  });

  it('diffs exactly the config fields that differ, side by side', () => {
    const a = resolveConfig('tiny', { batchSize: 8 });
    const b = resolveConfig('tiny', { batchSize: 16, baseLr: 0.03 });
    const c = resolveConfig('tiny', { batchSize: 8 });
    assert.deepStrictEqual(configDiff([{ ...a }, { ...b }, { ...c }]), [
      { field: 'batchSize', values: [8, 16, 8] },
      { field: 'baseLr', values: [0.06, 0.03, 0.06] },
    ]);
    assert.deepStrictEqual(configDiff([{ ...a }, { ...c }]), []);
    // A field an older run's config lacks differs too.
    const older: Record<string, unknown> = { ...a };
    delete older.flipP;
    assert.deepStrictEqual(configDiff([older, { ...a }]), [{ field: 'flipP', values: [undefined, 0.5] }]);
  });

  it('compares runs in the terminal: the diff, then the final figures with the baseline beside them', () => {
    const { small, large } = twoRuns();
    const lines = formatComparison(readComparedRuns([small, large]));
    const text = lines.join('\n');
    assert.match(text, /^batchSize\s+8\s+16$/m);
    assert.match(text, /^colorJitter\s+1\s+0\.5$/m);
    assert.ok(!/^seed/m.test(text), 'fields that are the same are not listed');
    assert.match(text, /^probe top-1\s+71\.0%\s+—$/m);
    assert.match(text, /^ {2}random init\s+40\.0%\s+—$/m);
    assert.throws(() => readComparedRuns([path.join(root, 'nowhere')]), /is not a run folder/);
  });

  it('prints aligned columns, "—" for missing figures and "no labels" without class folders', () => {
    const { large } = twoRuns();
    writeRun(runsDir, '20261201-170000-unlabelled', {
      datasetRoot: dataset, createdAt: '2026-12-01T17:00:00.000Z',
      records: [{ kind: 'evaluation', step: 6, epoch: 2, figures: null, baseline: null, trainImages: 24, testImages: 0, seconds: 1 }],
    });
    const lines = formatRunsTable(readRunsReport(dataset));
    const header = lines[0];
    const probeAt = header.indexOf('probe');
    assert.ok(probeAt > 0);
    const unlabelled = lines.find((l) => l.startsWith('20261201-170000-unlabelled'))!;
    assert.ok(unlabelled.includes(NO_LABELS), unlabelled);
    const stopped = lines.find((l) => l.startsWith(path.basename(large)))!;
    assert.ok(stopped.trimEnd().endsWith(BLANK), stopped);
    // Aligned: every table line is as wide as the widest up to its trimmed end, columns at the same offsets.
    const tableLines = lines.slice(0, 4);
    const statusAt = header.indexOf('status');
    for (const line of tableLines.slice(1)) assert.match(line.slice(statusAt), /^(completed|stopped)/, line);
    assert.deepStrictEqual(formatRunsTable(readRunsReport(path.join(root, 'empty'))).length, 1);
  });

  it('places runs with different batch sizes on the images-seen axis at step × batch size', () => {
    const { small, large } = twoRuns();
    const rows = readRunsReport(dataset).rows;
    const { message, problems } = selectionSeries(rows, [small, large, path.join(root, 'not-listed')]);
    assert.deepStrictEqual(problems, [`${path.join(root, 'not-listed')} is not a run of this table`]);
    const [a, b] = message.runs;
    assert.deepStrictEqual([a.batchSize, b.batchSize], [8, 16]);
    assert.deepStrictEqual(a.steps.step.map((step, i) => axisValue('images', { step, epoch: a.steps.epoch[i] }, a)), [8, 16, 24, 32, 40, 48]);
    assert.deepStrictEqual(b.steps.step.map((step, i) => axisValue('images', { step, epoch: b.steps.epoch[i] }, b)), [16, 32]);
    assert.deepStrictEqual(a.steps.step.map((step, i) => axisValue('epoch', { step, epoch: a.steps.epoch[i] }, a)), [1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2]);
    assert.strictEqual(axisValue('step', { step: 5, epoch: 1 }, a), 5);
    assert.deepStrictEqual(message.diff.map((d) => d.field).sort(), ['batchSize', 'colorJitter']);
    assert.deepStrictEqual(a.epochs.zStdRatio, [0.5, 0.5], 'z-std as a ratio to 1/√d');
    assert.deepStrictEqual(a.knn.step, [0, 3, 6], 'the kNN monitor: the eval record and the epochs\' figures');
    assert.strictEqual(a.evaluations.length, 1);
  });

  it('thins long step curves evenly, keeping the last point', () => {
    const records: MetricRecord[] = Array.from({ length: 1001 }, (_, i) => ({ kind: 'step', step: i + 1, epoch: 0, loss: -i / 1000, lr: 0.01 }));
    const series = runSeries('/run', 'run', 8, records, 100);
    assert.ok(series.steps.step.length <= 102, `${series.steps.step.length}`);
    assert.strictEqual(series.steps.step.at(-1), 1001);
    assert.strictEqual(series.steps.step[0], 1);
    assert.strictEqual(stepsPerEpoch(records), null, 'unknown before an epoch ends');
    assert.strictEqual(stepsPerEpoch([...records, epochRecord(2, 10, 0)]), 5);
  });

  it('reads a row without throwing when the run has no metrics file', () => {
    const dir = writeRun(runsDir, '20261201-180000-fresh', { datasetRoot: dataset, createdAt: '2026-12-01T18:00:00.000Z' });
    fs.rmSync(path.join(dir, METRICS_FILE));
    const row: RunRow = readRunsReport(dataset).rows[0];
    assert.deepStrictEqual([row.finalLoss, row.durationSeconds, row.evaluation, row.problem], [null, null, null, null]);
  });
});
