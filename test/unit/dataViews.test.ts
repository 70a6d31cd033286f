import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Command } from 'commander';
import { labelIssues, outliers, redundant } from '../../src/training/dataViews/views';
import { computeDataView, computeDuplicates } from '../../src/training/dataViews/service';
import { registerDataViewCommands } from '../../src/training/dataViews/cliCommands';
import type { NeighbourTable } from '../../src/training/retrieval/search';
import { makeViewFolder, type ViewFolder } from './dataViewFolder';
import { parseEngineMessage, parseHostMessage, PROTOCOL_VERSION } from '../../src/training/protocol';
import { imageSrc, MAP_PROTOCOL_VERSION, parseFromMapWebview } from '../../src/webview/embeddingMapProtocol';

/** A table from per-row neighbour lists of [row, score]. */
function table(lists: [number, number][][]): NeighbourTable {
  const k = lists[0].length;
  return {
    count: lists.length, k,
    rows: Int32Array.from(lists.flatMap((list) => list.map(([row]) => row))),
    scores: Float32Array.from(lists.flatMap((list) => list.map(([, score]) => score))),
  };
}

describe('data views on a neighbour table', () => {
  // Rows 0–2 class 0, rows 3–5 class 1; row 2 sits among class 1; row 5 is far from everything.
  const labels = [0, 0, 0, 1, 1, 1];
  const neighbours = table([
    [[1, 0.9], [2, 0.5]],
    [[0, 0.9], [2, 0.5]],
    [[3, 0.95], [4, 0.9]],
    [[4, 0.9], [2, 0.95]],
    [[3, 0.9], [2, 0.9]],
    [[0, 0.1], [3, 0.05]],
  ]);

  it('lists images whose neighbours mostly carry another class, most disagreeing and closest first', () => {
    const issues = labelIssues(neighbours, labels, 2, 10);
    // Rows 4 and 5: one of two neighbours disagrees, not a majority, so they are not listed.
    assert.deepStrictEqual(issues, [{ row: 2, score: 1, suggested: 1 }]);
    // With k = 1 row 5's nearest is of class 0; row 2's disagreeing neighbour is closer, so it ranks first.
    assert.deepStrictEqual(labelIssues(neighbours, labels, 1, 10).map((r) => r.row), [2, 5]);
    assert.deepStrictEqual(labelIssues(neighbours, labels, 1, 1).map((r) => r.row), [2]);
    assert.deepStrictEqual(labelIssues(neighbours, [null, null, null, null, null, null], 2, 10), []);
  });

  it('ranks outliers by 1 − mean cosine and redundancy by mean cosine, limited', () => {
    assert.deepStrictEqual(outliers(neighbours, 2, 2).map((r) => r.row), [5, 0]);
    assert.ok(Math.abs(outliers(neighbours, 2, 1)[0].score - 0.925) < 1e-6);
    assert.deepStrictEqual(redundant(neighbours, 2, 1).map((r) => r.row), [2]);
    assert.deepStrictEqual(redundant(neighbours, 1, 3).map((r) => r.row), [2, 0, 1]);
  });
});

describe('data views of a run', function () {
  this.timeout(180_000);
  let folder: ViewFolder;
  const quiet = () => undefined;

  before(async () => {
    folder = await makeViewFolder();
  });
  after(() => fs.rmSync(folder.root, { recursive: true, force: true }));

  it('near-duplicates: the copied image and its original, and larger groups as the threshold is lowered', async () => {
    const strict = await computeDuplicates(folder.runDir, 0.99999, quiet);
    assert.deepStrictEqual(strict.groups.map((g) => g.paths), [[...folder.duplicate].sort()]);
    assert.ok(strict.groups[0].minScore > 0.99999);
    const loose = await computeDuplicates(folder.runDir, 0.5, quiet);
    assert.ok(loose.groups[0].paths.length > 2, 'a lower threshold joins more images');
  });

  it('possible label issues: the red image filed under blue comes first, with red suggested', async () => {
    const result = await computeDataView(folder.runDir, 'labelIssues', 5, 10, quiet);
    assert.strictEqual(result.items[0].path, folder.mislabelled);
    assert.strictEqual(result.items[0].label, 'blue');
    assert.strictEqual(result.items[0].suggested, 'red');
    assert.strictEqual(result.items[0].score, 1);
    assert.ok(!result.items.some((item) => path.basename(item.path).startsWith('b') || path.basename(item.path).startsWith('r')),
      `only the odd images are listed: ${result.items.map((i) => i.path).join(', ')}`);
  });

  it('outliers: the noise image is the most unique; redundant: the duplicate pair tops the list', async () => {
    const unique = await computeDataView(folder.runDir, 'outliers', 5, 3, quiet);
    assert.strictEqual(unique.items.length, 3);
    assert.strictEqual(unique.items[0].path, folder.outlier);
    assert.ok(unique.items[0].score > unique.items[1].score);
    const closest = await computeDataView(folder.runDir, 'redundant', 1, 2, quiet);
    assert.deepStrictEqual(closest.items.map((i) => i.path).sort(), [...folder.duplicate].sort());
  });

  it('CLI: label-issues, outliers, redundant and map print JSON with --json', async () => {
    const run = async (...args: string[]) => {
      const lines: string[] = [];
      const program = new Command('simsiam').exitOverride().configureOutput({ writeErr: () => undefined });
      registerDataViewCommands(program, { out: { line: (text) => lines.push(text) }, err: { stream: process.stderr } });
      await program.parseAsync(args, { from: 'user' });
      return lines;
    };
    const [issues] = await run('label-issues', folder.runDir, '-k', '5', '--limit', '1', '--json');
    assert.deepStrictEqual(JSON.parse(issues), {
      view: 'labelIssues', k: 5, checkpointStep: 10,
      items: [{ path: folder.mislabelled, label: 'blue', score: 1, suggested: 'red' }],
    });
    const [unique] = await run('outliers', folder.runDir, '--limit', '1', '--json');
    assert.strictEqual(JSON.parse(unique).items[0].path, folder.outlier);
    const [closest] = await run('redundant', folder.runDir, '-k', '1', '--limit', '2', '--json');
    assert.deepStrictEqual(JSON.parse(closest).items.map((i: { path: string }) => i.path).sort(), [...folder.duplicate].sort());
    const [map] = await run('map', folder.runDir, '--method', 'pca', '--json');
    const parsed = JSON.parse(map);
    assert.strictEqual(parsed.method, 'pca');
    assert.strictEqual(parsed.points.length, 19);
    assert.ok(parsed.points.some((p: { path: string; label: string }) => p.path === 'blue/oops.png' && p.label === 'blue'));
    const text = await run('outliers', folder.runDir, '--limit', '2');
    assert.match(text[0], /^1\. .*noise\.png {2}\[red\] {2}uniqueness /);
    const written = await run('map', folder.runDir, '--method', 'pca', '--out', path.join(folder.root, 'map.csv'));
    assert.match(written[0], /wrote .*map\.csv: 19 images, PCA/);
    const csv = fs.readFileSync(path.join(folder.root, 'map.csv'), 'utf8').trim().split('\n');
    assert.strictEqual(csv[0], 'path,label,split,x,y');
    assert.strictEqual(csv.length, 20);
    await assert.rejects(run('outliers', folder.runDir, '-k', '0'), /-k must be a whole number from 1 to 100/);
  });
});

describe('map and data view messages', () => {
  it('accepts the new requests and results and refuses malformed ones, naming the field', () => {
    assert.strictEqual(parseHostMessage({ v: PROTOCOL_VERSION, type: 'map', runDir: '/r', method: 'umap' }).type, 'map');
    assert.throws(() => parseHostMessage({ v: PROTOCOL_VERSION, type: 'map', runDir: '/r', method: 'tsne' }), /field "method"/);
    assert.throws(() => parseHostMessage({ v: PROTOCOL_VERSION, type: 'dataView', runDir: '/r', view: 'outliers', k: 0, limit: 5 }), /field "k"/);
    assert.throws(() => parseHostMessage({ v: PROTOCOL_VERSION, type: 'duplicates', runDir: '/r', threshold: 1.5 }), /field "threshold"/);
    const map = {
      v: PROTOCOL_VERSION, type: 'mapResult', runDir: '/r', method: 'pca', checkpointStep: 3, cached: false, datasetRoot: '/d',
      classes: ['a'], paths: ['a/1.png', 'b.png'], labels: [0, null], splits: ['train', 'test'], x: [0, 1], y: [1, 0],
    };
    assert.strictEqual(parseEngineMessage(map).type, 'mapResult');
    assert.throws(() => parseEngineMessage({ ...map, x: [0] }), /columns of different lengths/);
    assert.throws(() => parseEngineMessage({ ...map, labels: [1, null] }), /label beyond its classes/);
    const fromWebview = { v: MAP_PROTOCOL_VERSION, type: 'image', action: 'reveal', path: 'a/1.png' };
    assert.deepStrictEqual(parseFromMapWebview(fromWebview), fromWebview);
    assert.throws(() => parseFromMapWebview({ ...fromWebview, action: 'delete' }), /field "action"/);
    assert.strictEqual(imageSrc('https://file+.vscode-resource.vscode-cdn.net/data/', 'a b/c#1.png'),
      'https://file+.vscode-resource.vscode-cdn.net/data/a%20b/c%231.png');
  });
});
