// Extension-host test of the embedding map and the data views: a tiny run trained by the real
// engine on a folder with a planted duplicate; "Open Embedding Map" lays out every image (PCA,
// then UMAP), a point's gallery request opens the experiment panel's gallery for that image, and
// "Show Data Views" lists the duplicate pair, then the outliers. Paths the webview names that lie
// outside the dataset are refused.
import * as assert from 'assert';
import * as path from 'path';
import * as vscode from 'vscode';
import type { SimSiamApi } from '../../../src/host/api';
import type { EmbeddingMapApi } from '../../../src/host/embeddingMap/embeddingMapApi';
import { MAP_PROTOCOL_VERSION } from '../../../src/webview/embeddingMapProtocol';
import { makeFolderWithDuplicate } from './fixtures';

const EXTENSION_ID = 'simsiam-lab.simsiam-lab';
const TINY = { epochs: 1, imageSize: 16, batchSize: 4 };
const IMAGES = 20;

function workspaceRoot(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the test window must open a workspace folder');
  return folder.uri.fsPath;
}

describe('SimSiam embedding map and data views', function () {
  this.timeout(300_000);
  let api: SimSiamApi & EmbeddingMapApi;

  before(async () => {
    const extension = vscode.extensions.getExtension<SimSiamApi & EmbeddingMapApi>(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is not installed in the test window`);
    api = await extension.activate();
  });

  it('maps every image, opens the gallery of a clicked point, and lists duplicates and outliers', async () => {
    const folder = path.join(workspaceRoot(), 'data-views');
    const { query, duplicate } = await makeFolderWithDuplicate(folder, IMAGES, 900);
    const run = await api.trainFolder(folder, { preset: 'tiny', overrides: TINY });
    assert.strictEqual((await run.finished).status, 'completed');
    const images = IMAGES + 2;

    await api.openEmbeddingMap(run.runDir, 'map');
    const pcaMap = await api.waitForEmbeddingMap(run.runDir, (p) => p.rendered?.method === 'pca' && p.rendered.points === images);
    assert.strictEqual(pcaMap.rendered!.tab, 'map');
    const umap = { v: MAP_PROTOCOL_VERSION, type: 'requestMap', method: 'umap' };
    api.receiveFromEmbeddingMap(run.runDir, umap);
    await api.waitForEmbeddingMap(run.runDir, (p) => (p.posted.map ?? 0) >= 2);

    // A click on a point asks for its gallery: the experiment panel opens and shows that image's neighbours.
    const relative = path.relative(folder, query).split(path.sep).join('/');
    api.receiveFromEmbeddingMap(run.runDir, { v: MAP_PROTOCOL_VERSION, type: 'image', action: 'gallery', path: relative });
    const gallery = await api.waitForPanel(run.runDir, (p) => p.gallery?.query === relative && p.gallery.images > 0, 120_000);
    assert.ok(gallery.gallery!.images > 0);

    await api.openEmbeddingMap(run.runDir, 'views', 'duplicates');
    api.receiveFromEmbeddingMap(run.runDir, { v: MAP_PROTOCOL_VERSION, type: 'requestView', view: 'duplicates', k: 10, threshold: 0.9999 });
    const duplicates = await api.waitForEmbeddingMap(run.runDir, (p) => p.rendered?.view === 'duplicates' && p.rendered.viewPaths.length > 0);
    const pair = [query, duplicate].map((file) => path.relative(folder, file).split(path.sep).join('/'));
    for (const file of pair) assert.ok(duplicates.rendered!.viewPaths.includes(file), `${file} is listed: ${duplicates.rendered!.viewPaths.join(', ')}`);

    api.receiveFromEmbeddingMap(run.runDir, { v: MAP_PROTOCOL_VERSION, type: 'requestView', view: 'outliers', k: 5, threshold: 0.95 });
    const outliers = await api.waitForEmbeddingMap(run.runDir, (p) => p.rendered?.view === 'outliers');
    assert.strictEqual(outliers.rendered!.viewPaths.length, images, 'every image is ranked (the list holds up to 100)');

    // A path outside the dataset is refused: nothing opens, and the panel keeps working.
    const before = vscode.window.tabGroups.all.flatMap((g) => g.tabs).length;
    api.receiveFromEmbeddingMap(run.runDir, { v: MAP_PROTOCOL_VERSION, type: 'image', action: 'open', path: '../../../etc/passwd' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.strictEqual(vscode.window.tabGroups.all.flatMap((g) => g.tabs).length, before);
  });
});
