// Entry point that VS Code loads inside the extension host (extensionTestsPath): runs every
// *.test.js compiled next to this file with mocha 11 and fails when any test fails.
import * as fs from 'fs';
import * as path from 'path';
import * as util from 'util';
import Mocha = require('mocha');
import ClosingLineReporter = require('../closingLineReporter');

function findTestFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const fullPath = path.join(dir, entry.name);
      if (entry.isDirectory()) return findTestFiles(fullPath);
      return entry.name.endsWith('.test.js') ? [fullPath] : [];
    })
    .sort();
}

/** Under code-server the extension host's console output reaches the runner mixed with the
 * workbench's own log (both travel through codeAutomationLog), so the runner passes a marker in
 * SIMSIAM_VSCODE_OUTPUT_MARKER for this suite to put in front of every console line it prints.
 * Returns the function that undoes it. */
function markConsoleOutput(marker: string): () => void {
  const methods = ['log', 'info', 'warn', 'error'] as const;
  // The extension host installs its console methods as accessors whose setter ignores
  // assignments, so they are replaced by redefining the property.
  const originalDescriptors = methods.map((method) => Object.getOwnPropertyDescriptor(console, method));
  const originalReporterLog = Mocha.reporters.Base.consoleLog;
  for (const method of methods) {
    const forward = console[method];
    const marked = (...args: unknown[]) => forward.call(console, marker + util.format(...args));
    Object.defineProperty(console, method, { value: marked, configurable: true, writable: true });
  }
  // mocha's reporters captured console.log when they were loaded; point them at the marked one.
  Mocha.reporters.Base.consoleLog = console.log;
  return () => {
    methods.forEach((method, index) => {
      const descriptor = originalDescriptors[index];
      if (descriptor) Object.defineProperty(console, method, descriptor);
    });
    Mocha.reporters.Base.consoleLog = originalReporterLog;
  };
}

/** Runs the mocha files under `testsRoot`. Exported so that a suite kept elsewhere can reuse the
 * same runner from its own index.js. Environment (set on the runner, inherited by the host):
 * SIMSIAM_VSCODE_TEST_GREP filters tests by title, SIMSIAM_VSCODE_TEST_TIMEOUT sets the per-test
 * timeout in ms (default 60000). */
export async function runMochaSuite(testsRoot: string): Promise<void> {
  const testFiles = findTestFiles(testsRoot);
  if (testFiles.length === 0) throw new Error(`no *.test.js files under ${testsRoot}: was the suite compiled?`);
  const grep = process.env.SIMSIAM_VSCODE_TEST_GREP;
  const mocha = new Mocha({
    ui: 'bdd',
    color: false, // the output travels through the workbench's log, not a terminal
    reporter: ClosingLineReporter,
    timeout: Number(process.env.SIMSIAM_VSCODE_TEST_TIMEOUT ?? 60_000),
    ...(grep ? { grep } : {}),
  });
  for (const file of testFiles) mocha.addFile(file);
  const marker = process.env.SIMSIAM_VSCODE_OUTPUT_MARKER;
  const unmarkConsoleOutput = marker ? markConsoleOutput(marker) : () => undefined;
  const failures = await new Promise<number>((resolve) => mocha.run(resolve)).finally(unmarkConsoleOutput);
  if (failures > 0) throw new Error(`${failures} extension-host test(s) failed`);
}

export function run(): Promise<void> {
  return runMochaSuite(__dirname);
}
