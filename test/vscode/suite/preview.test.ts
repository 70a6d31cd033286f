// The run panel's judged gallery and augmentation preview in a real window: the gallery says how
// many neighbours share the query's class, keeps to a class when asked, and searches by several
// images; the preview draws pairs of views for the current settings and draws them again when an
// augmentation setting changes.
import * as assert from 'assert';
import * as path from 'path';
import * as vscode from 'vscode';
import type { PanelProbe, SimSiamApi } from '../../../src/host/api';
import { makeLabelledFolder } from './fixtures';

const EXTENSION_ID = 'simsiam-lab.simsiam-lab';
const TINY = { epochs: 1, batchSize: 8, imageSize: 16 };

/** The preview's report, once api.ts's PanelProbe carries it. */
type PreviewReport = { images: number; views: number; settings: string };
const previewOf = (probe: PanelProbe) => (probe as PanelProbe & { preview?: PreviewReport | null }).preview ?? null;

describe('SimSiam panel: judged gallery and augmentation preview', function () {
  this.timeout(180_000);
  let api: SimSiamApi;
  let runDir: string;

  before(async () => {
    api = (await vscode.extensions.getExtension<SimSiamApi>(EXTENSION_ID)!.activate());
    const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    assert.ok(root, 'the test window must open a workspace folder');
    const folder = await makeLabelledFolder(path.join(root, 'judged-gallery'), 24, 900);
    const run = await api.trainFolder(folder, { preset: 'tiny', overrides: TINY });
    assert.strictEqual((await run.finished).status, 'completed');
    runDir = run.runDir;
  });

  after(async () => {
    const settings = vscode.workspace.getConfiguration('simsiam');
    for (const key of ['colorJitter', 'batchSize', 'imageSize']) await settings.update(key, undefined, vscode.ConfigurationTarget.Global);
  });

  it("says how many neighbours share the query's class, and keeps to a class when asked", async () => {
    const query = 'warm/warm-000.png';
    api.receiveFromWebview(runDir, { v: 1, type: 'query', source: 'path', path: query });
    const judged = await api.waitForPanel(runDir, (p) => p.gallery?.query === query && !!p.gallery.agreement);
    const agreement = judged.gallery!.agreement!;
    assert.strictEqual(agreement.label, 'warm');
    assert.strictEqual(agreement.of, judged.gallery!.images - 1);
    assert.ok(agreement.same <= agreement.of);

    api.receiveFromWebview(runDir, { v: 1, type: 'query', source: 'path', path: query, filter: { label: 'cool', split: null } });
    const filtered = await api.waitForPanel(runDir, (p) => p.gallery?.query === query && p.gallery.agreement?.same === 0 && p.gallery.agreement.of > 0);
    assert.strictEqual(filtered.gallery!.images, filtered.gallery!.agreement!.of + 1);
  });

  it('searches by the mean of several selected images', async () => {
    const before = api.panel(runDir)!.posted.gallery ?? 0;
    const paths = ['cool/cool-001.png', 'cool/cool-003.png'];
    api.receiveFromWebview(runDir, { v: 1, type: 'query', source: 'paths', paths });
    const shown = await api.waitForPanel(runDir, (p) => (p.posted.gallery ?? 0) > before && p.gallery?.query === paths[0] && p.gallery.loaded === p.gallery.images);
    // Both query images are shown, then the neighbours; neither query is its own neighbour.
    assert.strictEqual(shown.gallery!.agreement?.label, 'cool');
    assert.strictEqual(shown.gallery!.images, shown.gallery!.agreement!.of + paths.length);
  });

  it('shows pairs of views for the current settings, and again when an augmentation setting changes', async () => {
    // The tiny preset's batch of 64 is more than this folder holds: the settings the run trained with.
    const settings = vscode.workspace.getConfiguration('simsiam');
    await settings.update('batchSize', TINY.batchSize, vscode.ConfigurationTarget.Global);
    await settings.update('imageSize', TINY.imageSize, vscode.ConfigurationTarget.Global);
    api.receiveFromWebview(runDir, { v: 1, type: 'augmentationPreviewRequest', epoch: 0 });
    const first = previewOf(await api.waitForPanel(runDir, (p) => (previewOf(p)?.views ?? 0) > 0 && /16 px.*batch 8/.test(previewOf(p)!.settings)));
    assert.strictEqual(first!.views, first!.images * 3 * 2, 'each image shows three pairs of two views');
    assert.match(first!.settings, /colour jitter 1 /);

    await settings.update('colorJitter', 0.5, vscode.ConfigurationTarget.Global);
    const changed = previewOf(await api.waitForPanel(runDir, (p) => /colour jitter 0\.5 /.test(previewOf(p)?.settings ?? '')));
    assert.strictEqual(changed!.views, first!.views);
    assert.match(changed!.settings, /This run trained with other values: colorJitter 0\.5 \(this run: 1\)/);
  });
});
