// "SimSiam: Show Environment" in a real VS Code: the engine's doctor report, run from the palette
// command, opened as a document and written to the log, with wasm (shipped in the .vsix) loaded.
import * as assert from 'assert';
import * as vscode from 'vscode';
import type { EnvironmentMessage } from '../../../src/training/protocol';

describe('SimSiam: Show Environment', function () {
  this.timeout(360_000);

  it('checks every backend in the engine and opens the report', async () => {
    const report = await vscode.commands.executeCommand<EnvironmentMessage | undefined>('simsiam.showEnvironment');
    assert.ok(report, 'the command returned no report (see the SimSiam log)');
    assert.deepStrictEqual(report.backends.map((b) => b.name), ['node-gpu', 'node', 'webgpu', 'wasm', 'cpu']);
    const wasm = report.backends.find((b) => b.name === 'wasm')!;
    assert.ok(wasm.loaded && /^wasm \((no )?simd\)$/.test(wasm.detail ?? ''), JSON.stringify(wasm));
    assert.ok((wasm.imagesPerSecond ?? 0) > 0, JSON.stringify(wasm));
    for (const b of report.backends.filter((x) => !x.loaded)) {
      assert.ok((b.reason ?? '').length > 0, `${b.name} is not loaded and says not why`);
    }
    // The engine runs on the Node that VS Code (or code-server) ships, and the report says which.
    assert.match(report.lines[0], /^Node v\d+\.\d+\.\d+ \(N-API \d+\)/);
    const shown = vscode.window.activeTextEditor?.document.getText();
    assert.strictEqual(shown, report.lines.join('\n') + '\n');
  });
});
