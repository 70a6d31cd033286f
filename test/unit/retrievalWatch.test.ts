import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DatasetWatch } from '../../src/training/retrieval/datasetWatch';

describe('retrieval dataset watch', () => {
  let root: string;
  let watch: DatasetWatch | undefined;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-watch-'));
    fs.mkdirSync(path.join(root, 'cats', 'nested'), { recursive: true });
    fs.mkdirSync(path.join(root, '.simsiam', 'runs'), { recursive: true });
    fs.mkdirSync(path.join(root, 'runs'));
    fs.writeFileSync(path.join(root, 'cats', 'nested', 'a.png'), 'a');
  });

  afterEach(() => {
    watch?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const changes: [string, () => void][] = [
    ['a file written in place in a nested folder', () => fs.appendFileSync(path.join(root, 'cats', 'nested', 'a.png'), 'b')],
    ['a new file', () => fs.writeFileSync(path.join(root, 'cats', 'b.png'), 'b')],
    ['a deleted file', () => fs.rmSync(path.join(root, 'cats', 'nested', 'a.png'))],
    ['a new folder', () => fs.mkdirSync(path.join(root, 'dogs'))],
  ];
  for (const [what, change] of changes) {
    it(`reports ${what} to the next check`, async () => {
      watch = new DatasetWatch(root, [path.join(root, 'runs')]);
      assert.strictEqual(await watch.quiet(), true);
      change();
      assert.strictEqual(await watch.quiet(), false);
    });
  }

  it('ignores hidden entries and excluded folders, where run folders live', async () => {
    watch = new DatasetWatch(root, [path.join(root, 'runs')]);
    fs.writeFileSync(path.join(root, '.simsiam', 'runs', 'index.json'), '{}');
    fs.writeFileSync(path.join(root, 'runs', 'index.json'), '{}');
    fs.writeFileSync(path.join(root, '.hidden'), '');
    assert.strictEqual(await watch.quiet(), true);
  });

  it('cannot vouch for a folder it failed to watch', async () => {
    watch = new DatasetWatch(path.join(root, 'missing'), []);
    assert.strictEqual(await watch.quiet(), false);
  });
});
