// Extension-host tests: the real extension in a real VS Code (code-server offline, or desktop VS
// Code through @vscode/test-electron), training real runs in forked engine processes on tiny
// generated folders. Run: npm run test:vscode
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { SimSiamApi } from '../../../src/host/api';
import type { StatusRecord } from '../../../src/training/run/runStore';
import type { MetricRecord } from '../../../src/training/protocol';
import { resolveConfig } from '../../../src/training/config';
import { acquireRunLock } from '../../../src/training/run/runLock';
import { makeFolderWithDuplicate, makeLabelledFolder } from './fixtures';

const EXTENSION_ID = 'simsiam-lab.simsiam-lab';
/** Small enough to train in seconds on a CPU with the wasm backend. */
const TINY = { epochs: 1, batchSize: 8, imageSize: 16 };

function workspaceRoot(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the test window must open a workspace folder');
  return folder.uri.fsPath;
}

function readStatusFile(runDir: string): StatusRecord {
  return JSON.parse(fs.readFileSync(path.join(runDir, 'status.json'), 'utf8')) as StatusRecord;
}

function readMetricsFile(runDir: string): MetricRecord[] {
  return fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as MetricRecord);
}

/** Resolves when the Experiments view is next told to redraw. */
function nextExperimentsChange(api: SimSiamApi): Promise<void> {
  return new Promise<void>((resolve) => {
    const subscription = api.onDidChangeExperiments(() => {
      subscription.dispose();
      resolve();
    });
  });
}

describe('SimSiam extension', function () {
  this.timeout(180_000);
  let api: SimSiamApi;

  before(async () => {
    const extension = vscode.extensions.getExtension<SimSiamApi>(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is not installed in the test window`);
    api = await extension.activate();
  });

  it('registers every command it contributes', async () => {
    const contributed = (vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON.contributes.commands as { command: string }[])
      .map((c) => c.command);
    for (const required of ['simsiam.trainFolder', 'simsiam.stopTraining', 'simsiam.resumeTraining', 'simsiam.openExperiment',
      'simsiam.findSimilar', 'simsiam.deleteExperiment']) {
      assert.ok(contributed.includes(required), `${required} is not contributed`);
    }
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = contributed.filter((command) => !registered.has(command));
    assert.deepStrictEqual(missing, [], `contributed but not registered: ${missing.join(', ')}`);
  });

  it('trains a folder for one epoch: the view shows it done and the panel drew its metrics', async () => {
    const folder = await makeLabelledFolder(path.join(workspaceRoot(), 'train-once'), 24, 1);
    const lastStepSent = new Map<string | undefined, MetricRecord>();
    let trainedOn = '';
    // What the status bar said while a phase ran (the status bar hears of a phase before this listener does).
    const duringPhases: string[] = [];
    const sent = api.onTrainingMessage((runDir, message) => {
      if (message.type === 'metric' && message.record.kind === 'step') lastStepSent.set(runDir, message.record);
      if (message.type === 'started') trainedOn = message.backend;
      if (message.type === 'progress' && message.done < message.total) duringPhases.push(`${message.task}: ${api.statusBarText()}`);
    });
    const started = Date.now();
    const run = await api.trainFolder(folder, { preset: 'tiny', overrides: TINY });
    assert.strictEqual(path.dirname(run.runDir), path.join(fs.realpathSync(folder), '.simsiam', 'runs'));
    const outcome = await run.finished;
    sent.dispose();
    assert.strictEqual(outcome.status, 'completed', JSON.stringify(outcome));
    console.log(`      one-epoch run trained in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const status = readStatusFile(run.runDir);
    assert.strictEqual(status.status, 'completed');
    assert.strictEqual(status.epoch, 1);
    const steps = readMetricsFile(run.runDir).filter((r) => r.kind === 'step');
    assert.ok(steps.length >= 2, `expected at least 2 steps, got ${steps.length}`);

    const row = api.experiments().find((r) => r.runDir === run.runDir);
    assert.ok(row, 'the Experiments view does not list the run');
    assert.strictEqual(row.status, 'completed');
    // One meaning per number: epochs done (not the one in progress), the global step out of the run's, the loss labelled.
    assert.match(row.description, new RegExp(`1/1 epochs done · step ${steps.length}/${steps.length} · epoch-mean loss -?\\d`));

    // The panel opened when the run started; what it reports back is what its charts show.
    const panel = await api.waitForPanel(run.runDir, (p) => p.rendered?.stepPoints === steps.length && p.rendered.epochPoints === 1 &&
      p.rendered.summary.includes('epochs done'));
    assert.ok((panel.posted.init ?? 0) >= 1, 'the panel never received its initial history');
    // The last step the engine sent reached the real webview's store unchanged.
    assert.ok(lastStepSent.has(run.runDir), 'the engine sent no step record for the run');
    assert.deepStrictEqual(panel.rendered!.latest.find((r) => r.kind === 'step'), lastStepSent.get(run.runDir));
    // The header and the view say the same of the same run; the header names the training threads the engine used.
    const progress = row.description.match(/1\/1 epochs done · step \d+\/\d+ · epoch-mean loss -?[\d.]+(?: · kNN [\d.]+%)?/)![0];
    assert.ok(panel.rendered!.summary.startsWith(progress), `header "${panel.rendered!.summary}" vs view "${row.description}"`);
    assert.ok(panel.rendered!.summary.endsWith(trainedOn), `header "${panel.rendered!.summary}" vs backend "${trainedOn}"`);
    assert.strictEqual(panel.rendered!.banner, null);

    // Phases (loading the images, the kNN evaluations) showed in the status bar with their progress, never a frozen ETA.
    assert.ok(duringPhases.some((text) => /^decode: .*loading images \d+\/\d+/.test(text)), duringPhases.join('\n'));
    assert.ok(duringPhases.some((text) => /^evaluate: .*evaluating kNN \d+\/\d+/.test(text)), duringPhases.join('\n'));
    assert.ok(!duringPhases.some((text) => text.includes('ETA')), duringPhases.join('\n'));
  });

  it('refuses a second training of a folder that is training, stops mid-run with a checkpoint, and resumes to the end', async () => {
    const folder = await makeLabelledFolder(path.join(workspaceRoot(), 'stop-resume'), 64, 100);
    // Far more epochs than it will train: the stop, sent on the first step message, must land
    // mid-run however slow the host is; the resume then asks for one epoch past the stop.
    const overrides = { ...TINY, epochs: 50 };
    let batchesPerEpoch = 0;
    const firstStep = new Promise<void>((resolve) => {
      const subscription = api.onTrainingMessage((_, message) => {
        if (message.type === 'started') batchesPerEpoch = message.batchesPerEpoch;
        if (message.type === 'metric' && message.record.kind === 'step') {
          subscription.dispose();
          resolve();
        }
      });
    });
    const run = await api.trainFolder(folder, { preset: 'tiny', overrides });
    await assert.rejects(api.trainFolder(folder, { preset: 'tiny', overrides }), /did not start/);
    await firstStep;
    await api.stopRun(run.runDir);
    const stopped = await run.finished;
    assert.strictEqual(stopped.status, 'stopped', JSON.stringify(stopped));

    const pointer = JSON.parse(fs.readFileSync(path.join(run.runDir, 'checkpoint.json'), 'utf8')) as { step: number; dir: string };
    assert.ok(fs.existsSync(path.join(run.runDir, pointer.dir, 'model.json')), 'the checkpoint has no model');
    const stoppedStatus = readStatusFile(run.runDir);
    assert.strictEqual(stoppedStatus.status, 'stopped');
    assert.strictEqual(stoppedStatus.step, pointer.step);
    assert.ok(pointer.step < overrides.epochs * batchesPerEpoch, `stopped at step ${pointer.step}: the run had already finished`);
    const row = api.experiments().find((r) => r.runDir === run.runDir);
    assert.strictEqual(row?.status, 'stopped');
    assert.match(row.contextValue, /resumable/);

    // One epoch past the one it stopped in, wherever the stop landed.
    const resumedEpochs = Math.floor(pointer.step / batchesPerEpoch) + 1;
    const resumed = await api.resumeRun(run.runDir, resumedEpochs);
    assert.strictEqual(resumed.runDir, run.runDir);
    const outcome = await resumed.finished;
    assert.strictEqual(outcome.status, 'completed', JSON.stringify(outcome));
    const final = readStatusFile(run.runDir);
    assert.strictEqual(final.status, 'completed');
    assert.strictEqual(final.epoch, resumedEpochs);
    const steps = readMetricsFile(run.runDir).filter((r) => r.kind === 'step').map((r) => r.step);
    assert.deepStrictEqual(steps, Array.from({ length: final.step }, (_, i) => i + 1), 'the resumed history has gaps or repeats');
    assert.strictEqual(api.experiments().find((r) => r.runDir === run.runDir)?.status, 'completed');
  });

  it('finds the planted duplicate first and shows it in the gallery', async () => {
    const folder = path.join(workspaceRoot(), 'duplicates');
    const { query, duplicate } = await makeFolderWithDuplicate(folder, 30, 500);
    const run = await api.trainFolder(folder, { preset: 'tiny', overrides: TINY });
    assert.strictEqual((await run.finished).status, 'completed');

    const result = await api.findSimilar(query);
    assert.ok(result, 'Find Similar returned nothing');
    assert.strictEqual(result.runDir, run.runDir);
    assert.ok(result.neighbours.length > 1);
    assert.strictEqual(fs.realpathSync(result.neighbours[0].path), fs.realpathSync(duplicate),
      `nearest: ${result.neighbours.slice(0, 3).map((n) => `${path.basename(n.path)} ${n.score.toFixed(4)}`).join(', ')}`);
    assert.ok(result.neighbours[0].score > 0.999, `a byte-identical copy should score 1, got ${result.neighbours[0].score}`);
    assert.ok(result.neighbours.every((n) => path.resolve(n.path) !== path.resolve(query)), 'the query is its own neighbour');

    const panel = await api.waitForPanel(run.runDir, (p) => p.gallery?.query === 'query.png' && p.gallery.loaded === p.gallery.images);
    assert.strictEqual(panel.gallery!.images, result.neighbours.length + 1);
  });

  it("overlays another run's loss curve, and drops malformed or escaping webview requests", async () => {
    const runs = api.experiments();
    const withSteps = runs.map((r) => ({ ...r, steps: readMetricsFile(r.runDir).filter((m) => m.kind === 'step').length }));
    const [shown, other] = [withSteps[0], withSteps.find((r) => r.steps !== withSteps[0].steps)];
    assert.ok(other, 'the tests above should have left runs of different lengths');
    await api.openExperiment(shown.runDir);
    await api.waitForPanel(shown.runDir, (p) => p.rendered?.stepPoints === shown.steps);

    api.receiveFromWebview(shown.runDir, { v: 1, type: 'compare', runDir: other.runDir });
    const compared = await api.waitForPanel(shown.runDir, (p) => p.rendered?.comparePoints === other.steps);
    const seriesPosted = compared.posted.compareSeries;

    // Not a listed run, a malformed request, another protocol version: nothing is read or sent.
    api.receiveFromWebview(shown.runDir, { v: 1, type: 'compare', runDir: path.dirname(shown.runDir) });
    api.receiveFromWebview(shown.runDir, { v: 1, type: 'compare' });
    api.receiveFromWebview(shown.runDir, { v: 2, type: 'compare', runDir: other.runDir });
    // Images outside the dataset are not opened; one inside is.
    const datasetRoot = fs.realpathSync(path.dirname(path.dirname(path.dirname(shown.runDir))));
    const openTabs = () => vscode.window.tabGroups.all.flatMap((g) => g.tabs)
      .map((t) => (t.input as { uri?: vscode.Uri } | undefined)?.uri?.fsPath).filter((p): p is string => Boolean(p));
    const tabsBefore = openTabs();
    for (const escape of ['../../etc/passwd', '/etc/passwd', '.simsiam/../../outside.png', '%2e%2e/%2e%2e/etc/passwd']) {
      api.receiveFromWebview(shown.runDir, { v: 1, type: 'openImage', path: escape });
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.strictEqual(api.panel(shown.runDir)!.posted.compareSeries, seriesPosted, 'a refused compare request was answered');
    assert.deepStrictEqual(openTabs(), tabsBefore, 'a path outside the dataset was opened');

    const wanted = path.join(datasetRoot, 'query.png');
    assert.ok(fs.existsSync(wanted), 'the newest run should be the planted-duplicate one');
    api.receiveFromWebview(shown.runDir, { v: 1, type: 'openImage', path: 'query.png' });
    const deadline = Date.now() + 10_000;
    while (!openTabs().includes(wanted) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(openTabs().includes(wanted), `query.png was not opened: ${openTabs().join(', ')}`);
  });

  it('lists a run that another process trains in the workspace, and follows it to the end', async () => {
    // What the CLI (or another window) leaves on disk: a run folder with its run.json and status.json,
    // owned by a live process (here the extension host itself, so that it reads as running).
    const datasetRoot = path.join(workspaceRoot(), 'from-the-cli');
    const runDir = path.join(datasetRoot, '.simsiam', 'runs', '20260101-000000-cli');
    const record = {
      id: '20260101-000000-cli', name: 'cli', createdAt: new Date().toISOString(), config: resolveConfig('tiny'),
      dataset: { root: datasetRoot, trainImages: 10, testImages: 0, classes: [] }, backend: 'cpu',
    };
    const writeStatus = (status: string) => fs.writeFileSync(path.join(runDir, 'status.json'),
      JSON.stringify({ status, step: 3, epoch: 1, updatedAt: new Date().toISOString(), pid: process.pid }));
    const changed = () => nextExperimentsChange(api);
    api.experiments();
    const listed = changed();
    fs.mkdirSync(runDir, { recursive: true });
    // A run trains while its trainer holds the run's lock (status.json alone does not say so).
    const lock = acquireRunLock(runDir, 'training', 'training (test: another process)');
    fs.writeFileSync(path.join(runDir, 'run.json'), JSON.stringify(record));
    writeStatus('running');
    await listed;
    const row = api.experiments().find((r) => r.runDir === runDir);
    assert.strictEqual(row?.status, 'running');
    assert.match(row.contextValue, /running/);

    const finished = changed();
    writeStatus('completed');
    lock.release();
    await finished;
    assert.strictEqual(api.experiments().find((r) => r.runDir === runDir)?.status, 'completed');
    fs.rmSync(datasetRoot, { recursive: true, force: true });
  });

  it('refuses to train with an invalid setting, before starting any process, and names the setting', async () => {
    const folder = await makeLabelledFolder(path.join(workspaceRoot(), 'bad-settings'), 16, 7);
    const settings = vscode.workspace.getConfiguration('simsiam');
    await settings.update('batchSize', 1, vscode.ConfigurationTarget.Global);
    try {
      await assert.rejects(api.trainFolder(folder, { preset: 'tiny', overrides: { epochs: 1, imageSize: 16 } }), /did not start/);
      assert.ok(!fs.existsSync(path.join(folder, '.simsiam')), 'a run folder was created');
    } finally {
      await settings.update('batchSize', undefined, vscode.ConfigurationTarget.Global);
    }
    const { resolveTrainingConfig } = await import('../../../src/host/settings');
    assert.throws(() => resolveTrainingConfig('tiny', { batchSize: 1 }), /batchSize must be at least 2 .*Fix simsiam\.batchSize in Settings/);
    assert.throws(() => resolveTrainingConfig('tiny', { flipP: 2 }), /flipP must be a probability .*Fix simsiam\.flipP in Settings/);
    assert.strictEqual(resolveTrainingConfig('tiny', { batchSize: 16 }).batchSize, 16);
  });

  it('deletes an experiment and drops it from the view', async () => {
    const runs = api.experiments();
    assert.ok(runs.length >= 3, `expected the runs of the tests above, found ${runs.length}`);
    const victim = runs[runs.length - 1].runDir;
    assert.strictEqual(await api.deleteExperiment(victim), true);
    assert.ok(!fs.existsSync(victim), 'the run folder is still there');
    assert.ok(!api.experiments().some((r) => r.runDir === victim), 'the view still lists the deleted run');
    assert.strictEqual(api.panel(victim), undefined, 'the panel of the deleted run is still open');
  });

  it('shows a run whose run.json is garbled as a damaged row naming the file, and deletes it only while no process holds its locks', async () => {
    const datasetRoot = path.join(workspaceRoot(), 'damaged-run');
    const runDir = path.join(datasetRoot, '.simsiam', 'runs', '20260101-000000-garbled');
    const find = () => api.experiments().find((r) => r.runDir === runDir);
    const changed = () => nextExperimentsChange(api);
    api.experiments();
    const listed = changed();
    fs.mkdirSync(runDir, { recursive: true });
    fs.writeFileSync(path.join(runDir, 'run.json'), '{"id": "20260101-000000-garbled", "na');
    await listed;
    while (!find()) await changed();
    const row = find()!;
    assert.strictEqual(row.status, 'damaged');
    assert.strictEqual(row.contextValue, 'simsiamRun.damaged', 'offers Reveal and Delete, not Open or Resume');
    assert.strictEqual(row.label, '20260101-000000-garbled');
    assert.match(row.description, /run\.json/);

    // Another process (here the extension host itself) indexes the run: the deletion waits for it.
    const lock = acquireRunLock(runDir, 'index', 'building the index (test: another process)');
    try {
      assert.strictEqual(await api.deleteExperiment(runDir), false);
      assert.ok(fs.existsSync(path.join(runDir, 'run.json')), 'a run was deleted while a process indexed it');
    } finally {
      lock.release();
    }
    assert.strictEqual(await api.deleteExperiment(runDir), true);
    assert.ok(!fs.existsSync(runDir), 'the run folder is still there');
    assert.strictEqual(find(), undefined);
    fs.rmSync(datasetRoot, { recursive: true, force: true });
  });

  it("shows why a run failed where its charts are, in the panel, the view and the notification's outcome", async () => {
    const folder = await makeLabelledFolder(path.join(workspaceRoot(), 'diverges'), 24, 900);
    // A learning rate that turns the weights non-finite within a few steps: the engine stops the run, failed.
    const run = await api.trainFolder(folder, { preset: 'tiny', overrides: { ...TINY, epochs: 30, baseLr: 1e30 } });
    const outcome = await run.finished;
    assert.strictEqual(outcome.status, 'failed', JSON.stringify(outcome));
    assert.match(outcome.message, /Loss became NaN/);
    const panel = await api.waitForPanel(run.runDir, (p) => p.rendered?.banner !== null && p.rendered?.banner !== undefined);
    const shown = panel.rendered!;
    assert.ok(shown.banner!.includes(outcome.message), `above the charts: ${shown.banner}`);
    assert.ok(shown.emptyNotes.length >= 2, `charts with no epoch yet: ${shown.emptyNotes.join(' | ')}`);
    assert.ok(shown.emptyNotes.every((note) => /the run failed/.test(note)), shown.emptyNotes.join(' | '));
    assert.ok(!shown.summary.includes('ETA'), shown.summary);
    const row = api.experiments().find((r) => r.runDir === run.runDir);
    assert.strictEqual(row?.status, 'failed');
    assert.match(row.description, /0\/30 epochs done/);
  });
});
