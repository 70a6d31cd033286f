// What the Experiments view and the pickers know of a run folder (src/host/runEntry.ts, the
// vscode-free part of the run catalog): a run whose files cannot be read is listed as damaged,
// saying which file and why, never silently dropped; a folder still being created is no run yet.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { resolveConfig } from '../../src/training/config';
import type { MetricRecord } from '../../src/training/metrics';
import { METRICS_FILE, RUN_FILE } from '../../src/training/run/runStore';
import { RUN_LOCK_FILES } from '../../src/training/run/runLock';
import { isDamaged, readLastEpochRecord, readRunEntry, readRunSummary } from '../../src/host/runEntry';

describe('run catalog: one run folder', () => {
  let runDir: string;
  const runFile = () => path.join(runDir, RUN_FILE);
  const record = () => ({
    id: 'r', name: 'cats', createdAt: new Date().toISOString(), config: resolveConfig('tiny'),
    dataset: { root: runDir, trainImages: 10, testImages: 0, classes: [] }, backend: 'cpu',
  });

  beforeEach(() => {
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-catalog-'));
  });
  afterEach(() => fs.rmSync(runDir, { recursive: true, force: true }));

  it('reads a whole run', () => {
    fs.writeFileSync(runFile(), JSON.stringify(record()));
    const entry = readRunEntry(runDir);
    assert.ok(entry && !isDamaged(entry), JSON.stringify(entry));
    assert.strictEqual(entry.record.name, 'cats');
    assert.strictEqual(entry.status.status, 'interrupted', 'no status.json: it never said how it ended');
    assert.strictEqual(readRunSummary(runDir)?.record.name, 'cats');
  });

  const broken: [string, () => string][] = [
    ['garbled', () => '{"id": "r", "name": "ca'],
    ['without its dataset', () => JSON.stringify({ ...record(), dataset: undefined })],
    ['with an invalid config', () => JSON.stringify({ ...record(), config: { ...resolveConfig('tiny'), batchSize: -3 } })],
  ];
  for (const [what, content] of broken) {
    it(`lists a run whose run.json is ${what} as damaged, naming the file`, () => {
      fs.writeFileSync(runFile(), content());
      const entry = readRunEntry(runDir);
      assert.ok(entry && isDamaged(entry), `listed as damaged: ${JSON.stringify(entry)}`);
      assert.strictEqual(entry.runDir, runDir);
      assert.ok(entry.problem.includes(runFile()), `names ${runFile()}: ${entry.problem}`);
      assert.strictEqual(readRunSummary(runDir), null, 'nothing opens or resumes it as a run');
    });
  }

  it('lists a run whose lock file cannot be read as damaged, naming the lock file', () => {
    fs.writeFileSync(runFile(), JSON.stringify(record()));
    const lockFile = path.join(runDir, RUN_LOCK_FILES.training);
    fs.mkdirSync(lockFile); // reads fail (EISDIR), for root too
    const entry = readRunEntry(runDir);
    assert.ok(entry && isDamaged(entry) && entry.problem.includes(lockFile), JSON.stringify(entry));
  });

  it('skips a folder whose run.json is not written yet, or is gone', () => {
    assert.strictEqual(readRunEntry(runDir), null);
    fs.writeFileSync(`${runFile()}.tmp-123-abc`, '{"id": "r", "na'); // run.json being written (moved into place when whole)
    assert.strictEqual(readRunEntry(runDir), null);
    assert.strictEqual(readRunEntry(path.join(runDir, 'deleted')), null);
  });

  it('finds the last epoch record at the end of metrics.jsonl, parsing no step record on the way', () => {
    const lines = (records: MetricRecord[]) => records.map((r) => JSON.stringify(r) + '\n').join('');
    const epoch = (n: number): MetricRecord => ({
      kind: 'epoch', step: n * 10, epoch: n, meanLoss: -0.5, lr: 0.1, zStd: 0.1, zStdReference: 0.1, knnTop1: null,
      imagesPerSecond: 50, seconds: 1, skippedFiles: 0,
    });
    const steps = Array.from({ length: 300 }, (_, i): MetricRecord => ({ kind: 'step', step: 21 + i, epoch: 2, loss: -0.5, lr: 0.1 }));
    // Steps after the last epoch (a run stopped mid-epoch) and a line a crash cut short.
    fs.writeFileSync(path.join(runDir, METRICS_FILE), lines([epoch(1), epoch(2), ...steps]) + '{"kind":"epoch","step":3');
    const { parse } = JSON;
    let parsed = 0;
    JSON.parse = ((...args: Parameters<typeof JSON.parse>) => {
      parsed++;
      return parse(...args);
    }) as typeof JSON.parse;
    let last;
    try {
      last = readLastEpochRecord(runDir);
    } finally {
      JSON.parse = parse;
    }
    assert.deepStrictEqual(last, epoch(2));
    assert.strictEqual(parsed, 2, 'the torn line and the last epoch record, and no step record');
    fs.writeFileSync(path.join(runDir, METRICS_FILE), lines(steps));
    assert.strictEqual(readLastEpochRecord(runDir), null);
  });
});
