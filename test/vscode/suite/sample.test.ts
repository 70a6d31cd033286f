// The walkthrough's first step, "Train the Sample": the sample shipped in the extension is copied
// into its storage (never trained inside the extension's own folder) and trained with the tiny preset.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { TrainingSession } from '../../../src/host/training';

const EXTENSION_ID = 'simsiam-lab.simsiam-lab';

describe('SimSiam: Train the Sample', function () {
  this.timeout(180_000);

  it('trains the bundled sample from a copy in the extension storage, with the tiny preset', async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID)!;
    await extension.activate();
    const session = await vscode.commands.executeCommand<TrainingSession | undefined>('simsiam.trainSample');
    assert.ok(session, 'Train the Sample started no run (see the SimSiam log)');
    try {
      const started = await session.started;
      const bundled = path.join(extension.extensionPath, 'sample', 'fashion-mnist');
      assert.ok(!started.runDir.startsWith(extension.extensionPath), `the run is inside the extension: ${started.runDir}`);
      assert.strictEqual(path.basename(started.dataset.root), 'fashion-mnist');
      assert.strictEqual(started.config.preset, 'tiny');
      // The copy holds every image of the bundled sample, split and classes included.
      const count = (dir: string) => fs.readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('.png')).length;
      assert.strictEqual(started.dataset.trainImages + started.dataset.testImages, count(bundled));
      assert.strictEqual(started.dataset.classes.length, 10);
    } finally {
      session.stop();
      const outcome = await session.finished;
      assert.ok(['stopped', 'completed'].includes(outcome.status), JSON.stringify(outcome));
    }
  });
});
