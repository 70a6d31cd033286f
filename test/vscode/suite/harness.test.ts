// Checks the harness itself: the suite really runs inside a VS Code extension host, with this
// repository loaded as the extension under development and a folder open.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';

// Compiled to out/test/vscode/suite/, four levels below the repository root.
const repoRoot = path.resolve(__dirname, '..', '..', '..', '..');

describe('VS Code test harness', () => {
  it('loads this repository as the extension under development', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { publisher: string; name: string };
    const extension = vscode.extensions.getExtension(`${manifest.publisher}.${manifest.name}`);
    assert.ok(extension, `extension ${manifest.publisher}.${manifest.name} is not loaded`);
    assert.strictEqual(fs.realpathSync(extension.extensionPath), fs.realpathSync(repoRoot));
  });

  it('opens exactly one workspace folder', () => {
    assert.strictEqual(vscode.workspace.workspaceFolders?.length, 1);
  });
});
