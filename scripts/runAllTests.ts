// `npm test`: runs every suite (unit, extension host in real VS Code, UI through Chromium) one after
// another, shows their output as it comes, and ends with one closing line `N passed, N failed`
// summing them, which is what CI reads. A suite that crashes before its own closing line counts
// as one failure, so a broken harness can never look green.
//
// Before the suites, every script in scripts/prepare/ runs (sorted by name): each readies one
// optional piece of the environment that some tests exercise (a native backend, a GPU driver).
// A script exits 0 both when it prepared its piece and when this machine cannot have it (it says
// why, and the tests that need the piece skip); any other exit counts as a failed suite.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

interface Suite { name: string; command: string; args: string[] }

const ROOT = path.join(__dirname, '..', '..');
const mochaBin = path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js');
const reporter = path.join(ROOT, 'out', 'test', 'vscode', 'closingLineReporter.js');

const SUITES: Suite[] = [
  { name: 'unit', command: process.execPath, args: [mochaBin, '--reporter', reporter] },
  { name: 'vscode', command: 'npm', args: ['run', '--silent', 'test:vscode'] },
  { name: 'ui', command: 'npm', args: ['run', '--silent', 'test:ui'] },
  // After ui: test:ui's `npm run package` builds every target's .vsix, which this unpacks and checks.
  { name: 'package', command: 'npm', args: ['run', '--silent', 'test:package'] },
];

const PREPARE_DIR = path.join(ROOT, 'scripts', 'prepare');

function prepareSteps(): Suite[] {
  if (!fs.existsSync(PREPARE_DIR)) return [];
  return fs.readdirSync(PREPARE_DIR).filter((name) => name.endsWith('.sh')).sort()
    .map((name) => ({ name: `prepare ${name}`, command: 'bash', args: [path.join(PREPARE_DIR, name)] }));
}

/** Runs a preparation step; it has no closing line, so only its exit status counts. */
function prepare(step: Suite): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(step.command, step.args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
}

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
  for (const step of prepareSteps()) {
    const started = Date.now();
    console.log(`\n=== ${step.name} ===`);
    const ok = await prepare(step);
    if (!ok) failed += 1;
    summary.push(`${step.name}: ${ok ? 'ready' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
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
