// Extension-host tests of "Train Folder with Variations" and of run names and notes: a 2×2 sweep
// queued through the command's own path (prompts answered), trained one run at a time, each run
// in the Experiments view as it starts; Cancel stopping the current run and dropping the rest.
// Run: npm run test:vscode
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { ExperimentRow, SimSiamApi } from '../../../src/host/api';
import { readRun } from '../../../src/training/run/runStore';
import { makeLabelledFolder } from './fixtures';
import { listRuns } from '../../../src/training/run/runStore';

const EXTENSION_ID = 'simsiam-lab.simsiam-lab';
/** Small enough to train in seconds on a CPU with the wasm backend. */
const TINY = { epochs: 1, imageSize: 16 };

function workspaceRoot(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the test window must open a workspace folder');
  return folder.uri.fsPath;
}

/** The Experiments view's rows once `test` holds for them (they are read from disk as the view redraws). */
async function rowsWhen(api: SimSiamApi, test: (rows: ExperimentRow[]) => boolean, what: string, timeoutMs = 30_000): Promise<ExperimentRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = api.experiments();
    if (test(rows)) return rows;
    if (Date.now() > deadline) throw new Error(`The Experiments view did not show ${what} in ${timeoutMs} ms: ${JSON.stringify(rows)}`);
    await new Promise<void>((resolve) => {
      const subscription = api.onDidChangeExperiments(() => {
        subscription.dispose();
        resolve();
      });
      setTimeout(() => {
        subscription.dispose();
        resolve();
      }, 500);
    });
  }
}

describe('Train Folder with Variations', function () {
  this.timeout(300_000);
  let api: SimSiamApi;

  before(async () => {
    const extension = vscode.extensions.getExtension<SimSiamApi>(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is not installed in the test window`);
    api = await extension.activate();
  });

  it('queues a 2×2 sweep: four runs, one at a time, each in the view as it starts, all completed with distinct names', async () => {
    const folder = await makeLabelledFolder(path.join(workspaceRoot(), 'sweep-grid'), 24, 700);
    // Engine messages in order: a run may start only after the one before it is done.
    const events: string[] = [];
    const listening = api.onTrainingMessage((runDir, message) => {
      if (message.type === 'started' || message.type === 'done' || message.type === 'error') events.push(`${message.type} ${runDir}`);
    });
    const seenAtStart: boolean[] = [];
    const queue = await api.trainWithVariations(folder, {
      preset: 'tiny', overrides: TINY,
      parameters: [{ field: 'baseLr', values: [0.03, 0.06] }, { field: 'batchSize', values: [8, 12] }],
    });
    assert.strictEqual(queue.total, 4);
    queue.onDidStartRun(({ index, total, session }) => {
      assert.strictEqual(total, 4);
      // Read as the engine reports the start: the row is there, running, before the run can end.
      session.started.then((started) => {
        seenAtStart[index] = api.experiments().some((row) => row.runDir === started.runDir && row.status === 'running');
      }, () => undefined);
    });
    const outcomes = await queue.finished;
    listening.dispose();

    const expected = ['sweep-grid-tiny-lr0.03-b8', 'sweep-grid-tiny-lr0.03-b12', 'sweep-grid-tiny-lr0.06-b8', 'sweep-grid-tiny-lr0.06-b12'];
    assert.deepStrictEqual(outcomes.map((o) => [o.name, o.status]), expected.map((name) => [name, 'completed']), JSON.stringify(outcomes));
    assert.deepStrictEqual(seenAtStart, [true, true, true, true], 'each run is in the view while it trains');
    assert.deepStrictEqual(events.map((e) => e.split(' ')[0]), ['started', 'done', 'started', 'done', 'started', 'done', 'started', 'done'],
      events.join('\n'));
    for (const outcome of outcomes) {
      assert.ok(outcome.runDir, JSON.stringify(outcome));
      const { name, config } = readRun(outcome.runDir);
      assert.strictEqual(name, outcome.name);
      assert.strictEqual(name, `sweep-grid-tiny-lr${config.baseLr}-b${config.batchSize}`);
      assert.strictEqual(config.imageSize, 16);
    }
    const rows = await rowsWhen(api, (r) => outcomes.every((o) => r.some((row) => row.runDir === o.runDir && row.status === 'completed')),
      'the four runs completed');
    assert.deepStrictEqual(outcomes.map((o) => rows.find((row) => row.runDir === o.runDir)?.label), expected);
  });

  it('gives a folder trained twice two names, renames a run and shows its note in the tooltip', async () => {
    const folder = await makeLabelledFolder(path.join(workspaceRoot(), 'named-twice'), 16, 800);
    const first = await api.trainFolder(folder, { preset: 'tiny', overrides: { ...TINY, batchSize: 8 } });
    assert.strictEqual((await first.finished).status, 'completed');
    const second = await api.trainFolder(folder, { preset: 'tiny', overrides: { ...TINY, batchSize: 8 } });
    assert.strictEqual((await second.finished).status, 'completed');
    assert.strictEqual(readRun(first.runDir).name, 'named-twice-tiny-16px-b8-1ep');
    assert.strictEqual(readRun(second.runDir).name, 'named-twice-tiny-16px-b8-1ep-2');

    assert.ok(await api.renameExperiment(second.runDir, 'baseline again'));
    assert.ok(await api.editExperimentNote(second.runDir, 'same config: how much do two runs differ?'));
    assert.strictEqual(readRun(second.runDir).name, 'baseline again');
    const rows = await rowsWhen(api, (r) => r.some((row) => row.runDir === second.runDir && row.label === 'baseline again'), 'the new name');
    assert.match(rows.find((row) => row.runDir === second.runDir)!.tooltip, /same config: how much do two runs differ\?/);

    // A damaged run.json is refused by name and left as it is.
    const runFile = path.join(first.runDir, 'run.json');
    fs.writeFileSync(runFile, '{ "id": "cut');
    assert.strictEqual(await api.renameExperiment(first.runDir, 'never written'), false);
    assert.strictEqual(fs.readFileSync(runFile, 'utf8'), '{ "id": "cut');
    await api.deleteExperiment(first.runDir);
  });

  it('Cancel stops the current run with a checkpoint and drops the rest', async () => {
    const folder = await makeLabelledFolder(path.join(workspaceRoot(), 'sweep-cancelled'), 24, 900);
    const queue = await api.trainWithVariations(folder, {
      preset: 'tiny', overrides: { ...TINY, epochs: 40, batchSize: 8 }, parameters: [{ field: 'seed', values: [1, 2, 3] }],
    });
    const firstStep = new Promise<void>((resolve) => {
      const subscription = api.onTrainingMessage((_, message) => {
        if (message.type === 'metric' && message.record.kind === 'step') {
          subscription.dispose();
          resolve();
        }
      });
    });
    await firstStep;
    queue.cancel();
    const outcomes = await queue.finished;
    assert.deepStrictEqual(outcomes.map((o) => o.status), ['stopped', 'skipped', 'skipped'], JSON.stringify(outcomes));
    const runsDir = path.join(fs.realpathSync(folder), '.simsiam', 'runs');
    assert.deepStrictEqual(listRuns(runsDir).length, 1, 'only the first run was started');
    assert.ok(fs.existsSync(path.join(outcomes[0].runDir!, 'checkpoint.json')), 'the stopped run has a checkpoint to resume from');
  });
});
