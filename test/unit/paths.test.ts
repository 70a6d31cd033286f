// One rule for "this path lies inside that folder", shared by the panel's path guard, the search's
// lookup of indexed images and the export target check: a name that starts with two dots, such as
// a folder "..data", is inside; ".." itself, or anything under it, is not.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isInsideFolder } from '../../src/training/paths';
import { isPathInside, resolveDatasetImage } from '../../src/host/panel/pathGuard';
import { checkExportTarget } from '../../src/training/retrieval/exportFormats';

describe('path inside a folder', () => {
  let base: string;

  before(() => {
    base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-paths-')));
  });
  after(() => fs.rmSync(base, { recursive: true, force: true }));

  it('counts names that start with two dots as inside, and the folder itself too', () => {
    const root = path.join(base, 'root');
    for (const inside of [root, path.join(root, '..data'), path.join(root, '..data', 'a.png'), path.join(root, '...'), path.join(root, 'a', '..', 'b')]) {
      assert.ok(isInsideFolder(root, inside), inside);
    }
  });

  it('counts the parent, its other children and other folders that share the prefix as outside', () => {
    const root = path.join(base, 'root');
    for (const outside of [base, path.join(base, 'root-2', 'a.png'), path.join(base, 'root..data'), path.join(root, '..', 'x.png'), path.parse(base).root]) {
      assert.ok(!isInsideFolder(root, outside), outside);
    }
    assert.ok(!isInsideFolder('data', path.join('data', '..', 'other')), 'relative names count from the same place');
    assert.ok(isInsideFolder('data', path.join('data', '..data')), 'relative names count from the same place');
  });

  it('lets the panel open an image in a dataset folder named "..data", and matches it to the dataset', () => {
    const root = path.join(base, 'dataset');
    const image = path.join(root, '..data', 'a.png');
    fs.mkdirSync(path.dirname(image), { recursive: true });
    fs.writeFileSync(image, 'png');
    assert.strictEqual(resolveDatasetImage(root, '..data/a.png'), image);
    assert.strictEqual(resolveDatasetImage(root, image), image);
    assert.ok(isPathInside(root, image));
  });

  it('treats a folder "..data" in the run folder as one of the run\'s folders, and a file "..e.npy" as beside its files', () => {
    const runDir = path.join(base, 'run');
    fs.mkdirSync(path.join(runDir, '..data'), { recursive: true });
    assert.throws(() => checkExportTarget(runDir, path.join(runDir, '..data', 'e.npy')), /inside the \.\.data\/ folder of run/);
    assert.doesNotThrow(() => checkExportTarget(runDir, path.join(runDir, '..e.npy')));
  });
});
