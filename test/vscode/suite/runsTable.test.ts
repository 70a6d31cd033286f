// Extension-host test of the runs table: two tiny runs of one folder with different batch sizes,
// trained by the real engine; the table lists the second as it appears, overlays both by images
// seen (step × batch size, each run in its table colour) and diffs exactly the differing config.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { SimSiamApi } from '../../../src/host/api';
import type { RunsTableApi } from '../../../src/host/runsTable/runsTableApi';
import type { MetricRecord } from '../../../src/training/protocol';
import { COLUMNS } from '../../../media/src/runsTable/columns';
import { makeLabelledFolder } from './fixtures';

const EXTENSION_ID = 'simsiam-lab.simsiam-lab';
/** As extension.test.ts's TINY, batch size aside. */
const TINY = { epochs: 1, imageSize: 16 };
const BATCH_COLUMN = COLUMNS.findIndex((c) => c.id === 'batchSize');
const STATUS_COLUMN = COLUMNS.findIndex((c) => c.id === 'status');

function workspaceRoot(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the test window must open a workspace folder');
  return folder.uri.fsPath;
}

function stepRecords(runDir: string): MetricRecord[] {
  return fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean)
    .map((line) => JSON.parse(line) as MetricRecord).filter((r) => r.kind === 'step');
}

function storedConfig(runDir: string): Record<string, unknown> {
  return (JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) as { config: Record<string, unknown> }).config;
}

describe('SimSiam runs table', function () {
  this.timeout(240_000);
  let api: SimSiamApi & RunsTableApi;

  before(async () => {
    const extension = vscode.extensions.getExtension<SimSiamApi & RunsTableApi>(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is not installed in the test window`);
    api = await extension.activate();
  });

  it('overlays two runs with different batch sizes by images seen and diffs exactly their differing config', async () => {
    const folder = await makeLabelledFolder(path.join(workspaceRoot(), 'runs-table'), 24, 500);
    const first = await api.trainFolder(folder, { preset: 'tiny', overrides: { ...TINY, batchSize: 4 } });
    assert.strictEqual((await first.finished).status, 'completed');

    // Opened with one run: the second must appear without reopening the table (the catalog's file watching).
    await api.openRunsTable(folder);
    await api.waitForRunsTable(folder, (p) => p.rendered?.rows.length === 1);
    const second = await api.trainFolder(folder, { preset: 'tiny', overrides: { ...TINY, batchSize: 8 } });
    assert.strictEqual((await second.finished).status, 'completed');
    // The new run's experiment panel opened over the table, as it does for a person, who then goes
    // back to the table's tab: VS Code rebuilds a hidden webview when it is shown again.
    await api.openRunsTable(folder);
    const listed = await api.waitForRunsTable(folder, (p) => p.rendered?.rows.length === 2 &&
      p.rendered.rows.every((row) => row.cells[STATUS_COLUMN] === 'completed'));
    const batchOf = new Map(listed.rendered!.rows.map((row) => [row.runDir, row.cells[BATCH_COLUMN]]));
    assert.deepStrictEqual([batchOf.get(first.runDir), batchOf.get(second.runDir)], ['4', '8']);
    assert.deepStrictEqual(listed.rows.map((row) => row.runDir).sort(), [first.runDir, second.runDir].sort(), 'the host read the same runs');

    // Select both and switch the x axis to images seen, as a person would in the webview.
    await api.openRunsTable(folder, { selected: [first.runDir, second.runDir], axis: 'images' });
    const shown = await api.waitForRunsTable(folder, (p) => p.rendered?.axis === 'images' && p.rendered.selected.length === 2 &&
      p.rendered.charts.find((c) => c.id === 'loss')!.series.length === 2 && p.rendered.diffFields.length > 0);
    const rendered = shown.rendered!;
    const loss = rendered.charts.find((c) => c.id === 'loss')!;
    for (const [run, batchSize] of [[first, 4], [second, 8]] as const) {
      const curve = loss.series.find((s) => s.runDir === run.runDir);
      assert.ok(curve, `the loss chart does not overlay ${run.runDir}`);
      const steps = stepRecords(run.runDir);
      assert.ok(steps.length >= 2, `expected at least 2 steps, got ${steps.length}`);
      assert.deepStrictEqual(curve.xs, steps.map((r) => r.step * batchSize), `x of ${path.basename(run.runDir)} is not step × ${batchSize}`);
      assert.ok(curve.latest !== null, 'the legend shows the latest value without hovering');
      // One colour per run: the same in the table and in every chart that draws it.
      const tableColor = rendered.rows.find((row) => row.runDir === run.runDir)!.color;
      for (const chart of rendered.charts) {
        for (const series of chart.series.filter((s) => s.runDir === run.runDir)) assert.strictEqual(series.color, tableColor, chart.id);
      }
    }
    assert.notStrictEqual(rendered.rows[0].color, rendered.rows[1].color);

    // Exactly the fields that differ between the two run.json configs: batchSize, and whatever else does.
    const [a, b] = [storedConfig(first.runDir), storedConfig(second.runDir)];
    const differing = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((field) => JSON.stringify(a[field]) !== JSON.stringify(b[field]));
    assert.ok(differing.includes('batchSize'));
    assert.deepStrictEqual([...rendered.diffFields].sort(), differing.sort());

  });
});
