// `npm test`: runs every suite (unit, extension host in real VS Code, UI through Chromium) one after
// another, shows their output as it comes, and ends with one closing line `N passed, N failed`
// summing them, which is what CI reads. A suite that crashes before its own closing line counts
// as one failure, so a broken harness can never look green.
import { spawn } from 'child_process';
import * as path from 'path';

interface Suite { name: string; command: string; args: string[] }

const ROOT = path.join(__dirname, '..', '..');
const mochaBin = path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js');
const reporter = path.join(ROOT, 'out', 'test', 'vscode', 'closingLineReporter.js');

const SUITES: Suite[] = [
  { name: 'unit', command: process.execPath, args: [mochaBin, '--reporter', reporter] },
  { name: 'vscode', command: 'npm', args: ['run', '--silent', 'test:vscode'] },
  { name: 'ui', command: 'npm', args: ['run', '--silent', 'test:ui'] },
];

const CLOSING_LINE = /^(?:\w+: )?(\d+) passed, (\d+) failed/;

function run(suite: Suite): Promise<{ passed: number; failed: number; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(suite.command, suite.args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let last: RegExpMatchArray | null = null;
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) last = line.trim().match(CLOSING_LINE) ?? last;
    });
    child.on('close', (code) => {
      last = pending.trim().match(CLOSING_LINE) ?? last;
      const passed = last ? Number(last[1]) : 0;
      const failed = last ? Number(last[2]) : 0;
      // No closing line, or a non-zero exit with none failed: the suite itself broke.
      const crashed = !last || (code !== 0 && failed === 0);
      resolve({ passed, failed: failed + (crashed ? 1 : 0), code });
    });
  });
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  let passed = 0;
  let failed = 0;
  const summary: string[] = [];
  for (const suite of SUITES.filter((s) => !only.length || only.includes(s.name))) {
    const started = Date.now();
    console.log(`\n=== ${suite.name} tests ===`);
    const result = await run(suite);
    passed += result.passed;
    failed += result.failed;
    summary.push(`${suite.name}: ${result.passed} passed, ${result.failed} failed` +
      `${result.code ? ` (exit ${result.code})` : ''} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  console.log(`\n${summary.join('\n')}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

void main();
