// What the panel, the status bar, the progress notification and the Experiments view say about a
// run must be true and mean one thing: the pure parts of each (axes, colours, the words for a run's
// progress and for missing data).
import * as assert from 'assert';
import { tickLabels, WHOLE_INCREMENTS, xRange } from '../../media/src/axes';
import { gridColor, HIGH_CONTRAST_GRID_ALPHA, parseCssColor, solidColor } from '../../media/src/colors';
import { emptyChartNote, runBanner, WAITING_NOTE } from '../../media/src/runNotes';
import {
  epochText, phaseText, progressParts, runProgress, sessionText, stepText, type LiveState, type RunFiles,
} from '../../src/webview/runText';
import type { RunView } from '../../src/webview/protocol';

describe('panel truth: axes', () => {
  it('labels a counting axis in whole numbers and steps it by whole numbers only', () => {
    assert.deepStrictEqual(tickLabels([1, 2, 3, 4, 5, 6], true), ['1', '2', '3', '4', '5', '6']);
    // What uPlot's default spacing gave steps 1–6 on a narrow chart, drawn on a counting axis.
    assert.deepStrictEqual(tickLabels([1, 1.25, 1.5, 1.75], true), ['1', '1', '2', '2']);
    assert.ok(WHOLE_INCREMENTS.every((step) => Number.isInteger(step) && step >= 1), `${WHOLE_INCREMENTS}`);
    assert.deepStrictEqual(WHOLE_INCREMENTS.slice(0, 4), [1, 2, 5, 10]);
    assert.ok(WHOLE_INCREMENTS.at(-1)! >= 1e9, 'a long run needs coarse steps too');
  });

  it('keeps the decimals a measured axis needs', () => {
    assert.deepStrictEqual(tickLabels([0.0201, 0.0202, 0.0203], false), ['0.0201', '0.0202', '0.0203']);
    assert.deepStrictEqual(tickLabels([0.00001, 0.00002], false), ['1.0e-5', '2.0e-5']);
    // Neighbouring ticks never read the same.
    assert.deepStrictEqual(tickLabels([0.02001, 0.02002], false), ['2.0010e-2', '2.0020e-2']);
    assert.deepStrictEqual(tickLabels([0, 50, 100], false), ['0', '50', '100']);
  });

  it('draws a lone point on one unit around it, not 0–100, and leaves other ranges (and zooms) alone', () => {
    assert.deepStrictEqual(xRange([0], 0, 100), [-0.5, 0.5]);
    assert.deepStrictEqual(xRange([3, 3], 2, 4), [2.5, 3.5]);
    assert.deepStrictEqual(xRange([1, 2, 6], 1, 6), [1, 6]);
    assert.deepStrictEqual(xRange([1, 2, 6], 2, 3), [2, 3]);
    assert.deepStrictEqual(xRange([], null, null), [null, null]);
  });
});

describe('panel truth: colours', () => {
  it('reads every colour form a theme or a computed style gives', () => {
    assert.deepStrictEqual(parseCssColor('#d1861655'), { r: 209, g: 134, b: 22, a: 0x55 / 255 });
    assert.deepStrictEqual(parseCssColor('#D18616'), { r: 209, g: 134, b: 22, a: 1 });
    assert.deepStrictEqual(parseCssColor('#abc8'), { r: 0xaa, g: 0xbb, b: 0xcc, a: 0x88 / 255 });
    assert.deepStrictEqual(parseCssColor('rgba(209, 134, 22, 0.333)'), { r: 209, g: 134, b: 22, a: 0.333 });
    assert.deepStrictEqual(parseCssColor('rgb(209 134 22 / 33%)'), { r: 209, g: 134, b: 22, a: 0.33 });
    assert.deepStrictEqual(parseCssColor('rgb(100%, 0%, 50%)'), { r: 255, g: 0, b: 128, a: 1 });
    assert.deepStrictEqual(parseCssColor('color(srgb 1 0.5 0 / 0.25)'), { r: 255, g: 128, b: 0, a: 0.25 });
    for (const bad of ['', 'orange', '#12345', 'rgb(1, 2)', 'rgb(a, b, c)', 'var(--vscode-charts-orange)']) {
      assert.strictEqual(parseCssColor(bad), null, bad);
    }
  });

  it('draws series solid whatever alpha the theme gives them (charts.orange is 33 % in Dark and Light Modern)', () => {
    assert.strictEqual(solidColor(parseCssColor('#d1861655')!), 'rgb(209, 134, 22)');
    assert.strictEqual(solidColor(parseCssColor('rgba(55, 148, 255, 0.1)')!), 'rgb(55, 148, 255)');
  });

  it('subdues grid lines in high-contrast themes, so the curves stay on top', () => {
    const border = parseCssColor('#6fc3df')!;
    assert.strictEqual(gridColor(border, true), `rgba(111, 195, 223, ${HIGH_CONTRAST_GRID_ALPHA})`);
    assert.strictEqual(gridColor(border, false), 'rgb(111, 195, 223)');
    assert.strictEqual(gridColor(parseCssColor('#80808020')!, true), `rgba(128, 128, 128, ${0x20 / 255})`, 'never stronger than the theme');
  });
});

describe('panel truth: one meaning per number', () => {
  // Three epochs of ten steps; the engine just sent step 20, the last of the second epoch.
  const live: LiveState = {
    progress: { step: 20, epoch: 1, epochs: 3, batchesPerEpoch: 10, loss: -0.12345, knnTop1: 0.4, etaSeconds: 30 },
    phase: null,
  };
  // The same moment as the run's files tell it: status.json and the last epoch record are from the first epoch's end.
  const files: RunFiles = {
    status: { status: 'running', step: 10, epoch: 1 }, epochs: 3,
    lastEpoch: { step: 10, epoch: 1, meanLoss: -0.2, knnTop1: 0.45 },
  };

  it('counts the epoch in progress while a run trains, from the session or from the files alike', () => {
    assert.strictEqual(epochText(runProgress(live, files)), 'epoch 2/3');
    assert.strictEqual(epochText(runProgress(null, files)), 'epoch 2/3');
    assert.strictEqual(epochText(runProgress(null, { ...files, status: { status: 'completed', step: 30, epoch: 3 } })), '3/3 epochs done');
    assert.strictEqual(epochText(runProgress(null, { ...files, status: { status: 'stopped', step: 15, epoch: 1 } })), '1/3 epochs done');
  });

  it('counts steps from the start of the run, never within the epoch', () => {
    assert.strictEqual(stepText(runProgress({ ...live, progress: { ...live.progress!, step: 25, epoch: 2 } }, files)), 'step 25/30');
    // Steps per epoch follow from an epoch record when no session knows them.
    assert.strictEqual(stepText(runProgress(null, { ...files, status: { status: 'stopped', step: 25, epoch: 2 }, lastEpoch: { ...files.lastEpoch!, step: 20, epoch: 2 } })), 'step 25/30');
    assert.strictEqual(stepText(runProgress(null, { ...files, lastEpoch: null })), 'step 10');
  });

  it('labels the last step’s loss and an epoch’s mean loss apart', () => {
    assert.ok(progressParts(runProgress(live, files)).includes('step loss -0.1235'), progressParts(runProgress(live, files)).join(' · '));
    assert.ok(progressParts(runProgress(null, files)).includes('epoch-mean loss -0.2000'), progressParts(runProgress(null, files)).join(' · '));
  });

  it('shows a phase with its progress instead of a frozen ETA, and the ETA again once the phase is over', () => {
    assert.deepStrictEqual(progressParts(runProgress(live, files)),
      ['epoch 2/3', 'step 20/30', 'step loss -0.1235', 'kNN 40.0%', 'ETA 30s']);
    const evaluating = runProgress({ ...live, phase: { task: 'evaluate', done: 300, total: 1200 } }, files);
    assert.deepStrictEqual(progressParts(evaluating).slice(-1), ['evaluating kNN 300/1200']);
    assert.ok(!progressParts(evaluating).some((part) => part.startsWith('ETA')));
    const evaluated = runProgress({ ...live, phase: { task: 'evaluate', done: 1200, total: 1200 } }, files);
    assert.deepStrictEqual(progressParts(evaluated).slice(-1), ['ETA 30s']);
  });

  it('shows the phase of a session that has not started yet (a resume loading its images) over what the files say', () => {
    const resuming = runProgress({ progress: null, phase: { task: 'decode', done: 12, total: 42 } }, { ...files, status: { status: 'stopped', step: 15, epoch: 1 } });
    assert.deepStrictEqual(progressParts(resuming), ['epoch 2/3', 'step 15/30', 'epoch-mean loss -0.2000', 'kNN 45.0%', 'loading images 12/42']);
  });

  it('names the phases the engine sends, and any other by its task', () => {
    assert.strictEqual(phaseText({ task: 'decode', done: 12, total: 42 }), 'loading images 12/42');
    assert.strictEqual(phaseText({ task: 'evaluate', done: 1, total: 2 }), 'evaluating kNN 1/2');
    assert.strictEqual(phaseText({ task: 'embed', done: 5, total: 100 }), 'indexing images 5/100');
    assert.strictEqual(phaseText({ task: 'duplicates', done: 3, total: 9 }), 'duplicates 3/9');
    assert.strictEqual(phaseText({ task: 'constructor', done: 0, total: 1 }), 'constructor 0/1');
  });

  it('words a session for the status bar and the notification: starting, loading, training, stopping', () => {
    assert.strictEqual(sessionText({ progress: null, phase: null, isStopping: false }), 'starting…');
    assert.strictEqual(sessionText({ progress: null, phase: { task: 'decode', done: 12, total: 42 }, isStopping: false }),
      'starting: loading images 12/42');
    assert.strictEqual(sessionText({ ...live, isStopping: false }), 'epoch 2/3 · step 20/30 · step loss -0.1235 · kNN 40.0% · ETA 30s');
    assert.strictEqual(sessionText({ ...live, isStopping: true }), 'stopping…');
  });
});

describe('panel truth: where the charts are', () => {
  const progress = runProgress(null, { status: { status: 'failed', step: 6, epoch: 0 }, epochs: 3, lastEpoch: null });
  const failed: RunView = {
    runDir: '/d/.simsiam/runs/r', id: 'r', name: 'r', datasetRoot: '/d', status: 'failed', progress,
    backend: 'wasm', preset: 'tiny', message: 'Loss became NaN at step 7 (epoch 1): training stopped.',
  };
  const knnNote = 'Measured after each epoch when the folder has class subfolders.';

  it('shows why a failed run failed above its charts, and no chart waits for data', () => {
    assert.deepStrictEqual(runBanner(failed), { text: `Training failed: ${failed.message}`, error: true });
    assert.match(runBanner({ ...failed, message: null })!.text, /^Training failed: .*SimSiam log/);
    for (const note of [emptyChartNote(failed), emptyChartNote(failed, knnNote)]) {
      assert.notStrictEqual(note, WAITING_NOTE);
      assert.match(note, /the run failed/);
    }
  });

  it('says why an ended run has no data, and what a running one is doing', () => {
    const running: RunView = { ...failed, status: 'running', message: null, progress: { ...progress, running: true } };
    assert.strictEqual(runBanner(running), null);
    assert.strictEqual(emptyChartNote(running), WAITING_NOTE);
    assert.strictEqual(emptyChartNote({ ...running, progress: { ...running.progress, phase: { task: 'evaluate', done: 3, total: 9 } } }),
      'Evaluating kNN 3/9…');
    assert.strictEqual(emptyChartNote(running, knnNote), knnNote);
    assert.strictEqual(emptyChartNote({ ...running, status: 'stopped' }), 'No data: the run was stopped before this chart got any.');
    assert.strictEqual(emptyChartNote({ ...running, status: 'completed' }, knnNote), knnNote);
    assert.deepStrictEqual(runBanner({ ...running, status: 'stopped', message: 'Stopped by the user.' }), { text: 'Stopped by the user.', error: false });
  });
});
