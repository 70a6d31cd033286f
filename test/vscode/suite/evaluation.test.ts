// Evaluation in a real VS Code: a run that completes carries its full evaluation (kNN at k = 20
// and 200, linear probe, precision@10, beside the untrained network's), and "Evaluate Checkpoint"
// computes the same figures again on demand and records them.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { SimSiamApi } from '../../../src/host/api';
import type { EvaluationRecord, MetricRecord } from '../../../src/training/protocol';
import { makeLabelledFolder } from './fixtures';

const EXTENSION_ID = 'simsiam-lab.simsiam-lab';
const TINY = { epochs: 1, batchSize: 8, imageSize: 16 };

const evaluationsOf = (runDir: string) => fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((line) => JSON.parse(line) as MetricRecord).filter((r): r is EvaluationRecord => r.kind === 'evaluation');

describe('SimSiam: Evaluate Checkpoint and Export Embeddings', function () {
  this.timeout(240_000);

  it('records the evaluation at the end of a run, and again on demand with the same figures', async () => {
    const api = await vscode.extensions.getExtension<SimSiamApi>(EXTENSION_ID)!.activate();
    const root = vscode.workspace.workspaceFolders![0].uri.fsPath;
    const folder = await makeLabelledFolder(path.join(root, 'evaluate-me'), 24, 300);
    const run = await api.trainFolder(folder, { preset: 'tiny', overrides: TINY });
    assert.strictEqual((await run.finished).status, 'completed');
    const [atEnd] = evaluationsOf(run.runDir);
    assert.ok(atEnd?.figures && atEnd.baseline, `no evaluation with figures at the end: ${JSON.stringify(atEnd)}`);

    const onDemand = await vscode.commands.executeCommand<EvaluationRecord | undefined>('simsiam.evaluateCheckpoint', run.runDir);
    assert.ok(onDemand, 'Evaluate Checkpoint returned nothing (see the SimSiam log)');
    assert.strictEqual(onDemand.step, atEnd.step);
    assert.deepStrictEqual([onDemand.figures, onDemand.baseline], [atEnd.figures, atEnd.baseline]);
    assert.strictEqual(evaluationsOf(run.runDir).length, 2);

    // The same run's embeddings as a TensorBoard projector folder, from the command the row's menu runs.
    const out = path.join(root, 'evaluate-me-projector');
    const files = await vscode.commands.executeCommand<string[] | undefined>('simsiam.exportEmbeddings', run.runDir, 'projector', out);
    assert.ok(files, 'Export Embeddings wrote nothing (see the SimSiam log)');
    for (const name of ['tensors.tsv', 'metadata.tsv', 'sprite.png', 'projector_config.pbtxt']) {
      assert.ok(fs.existsSync(path.join(out, name)), `${name} is missing from ${out}`);
    }
    const rows = fs.readFileSync(path.join(out, 'tensors.tsv'), 'utf8').trim().split('\n');
    assert.strictEqual(rows.length, 24);
  });
});
