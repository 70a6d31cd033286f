import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { resolveDatasetImage, UnsafePathError, datasetRelativePath, isPathInside } from '../../src/host/panel/pathGuard';

describe('webview path guard', () => {
  let base: string;
  let root: string;
  let outside: string;

  before(() => {
    base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-guard-')));
    root = path.join(base, 'dataset');
    outside = path.join(base, 'secret');
    fs.mkdirSync(path.join(root, 'cats'), { recursive: true });
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(root, 'cats', 'a.png'), 'png');
    fs.writeFileSync(path.join(root, 'cats', '%2e%2e.png'), 'png');
    fs.writeFileSync(path.join(root, 'notes.txt'), 'text');
    fs.writeFileSync(path.join(outside, 'b.png'), 'png');
    fs.symlinkSync(path.join(outside, 'b.png'), path.join(root, 'cats', 'link-out.png'));
    fs.symlinkSync(outside, path.join(root, 'linked-dir'));
    fs.symlinkSync(path.join(root, 'cats', 'a.png'), path.join(root, 'link-in.png'));
  });

  after(() => fs.rmSync(base, { recursive: true, force: true }));

  it('accepts dataset images given relative or absolute, and resolves links that stay inside', () => {
    assert.strictEqual(resolveDatasetImage(root, 'cats/a.png'), path.join(root, 'cats', 'a.png'));
    assert.strictEqual(resolveDatasetImage(root, path.join(root, 'cats', 'a.png')), path.join(root, 'cats', 'a.png'));
    assert.strictEqual(resolveDatasetImage(root, 'link-in.png'), path.join(root, 'cats', 'a.png'));
    // Taken literally, never URL-decoded: this is a file name, not a way up.
    assert.strictEqual(resolveDatasetImage(root, 'cats/%2e%2e.png'), path.join(root, 'cats', '%2e%2e.png'));
  });

  it('refuses paths that leave the dataset, however spelled', () => {
    const refused = [
      '../secret/b.png',
      'cats/../../secret/b.png',
      path.join(outside, 'b.png'),
      'cats/link-out.png',
      'linked-dir/b.png',
      '%2e%2e/secret/b.png',
      'cats/..%2f..%2fsecret%2fb.png',
      'cats/a.png\0.txt',
      '',
      'notes.txt',
      'cats',
      'cats/missing.png',
    ];
    for (const requested of refused) {
      assert.throws(() => resolveDatasetImage(root, requested), UnsafePathError, `accepted ${JSON.stringify(requested)}`);
    }
  });

  it('names images relative to the root with forward slashes and tells inside from outside', () => {
    assert.strictEqual(datasetRelativePath(root, path.join(root, 'cats', 'a.png')), 'cats/a.png');
    assert.ok(isPathInside(root, path.join(root, 'cats', 'a.png')));
    assert.ok(!isPathInside(root, path.join(base, 'dataset-2', 'a.png')));
    assert.ok(!isPathInside(root, path.join(root, '..', 'secret', 'b.png')));
  });
});
