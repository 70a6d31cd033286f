// `npm run package`: a production build (scripts/build.mjs --production), then a .vsix made by
// @vscode/vsce. vsce collects the production dependencies (npm list) and .vscodeignore keeps only
// sharp and its runtime packages: everything JavaScript is in the esbuild bundles, but native code
// cannot be bundled. The .vsix is marked for this platform because sharp's prebuilt binary
// (@img/sharp-<platform>) is. Afterwards the archive is checked: bundles, wasm binaries, panel
// assets and sharp's whole dependency closure must be inside, and no sources or tests.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { fileURLToPath } from 'url';
import { createRequire } from 'module';
import { engineWorkerEntries } from './build.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const target = `${process.platform === 'win32' ? 'win32' : process.platform}-${process.arch}`;
const out = path.join(root, `${pkg.name}-${pkg.version}-${target}.vsix`);

const run = (command, args) => execFileSync(command, args, { cwd: root, stdio: 'inherit' });

run(process.execPath, [path.join(root, 'scripts', 'build.mjs'), '--production']);
run(process.execPath, [
  require.resolve('@vscode/vsce/vsce'), 'package',
  '--dependencies', '--no-yarn', '--target', target, '--out', out,
  '--readme-path', 'docs/EXTENSION.md', '--no-rewrite-relative-links',
  '--allow-missing-repository', '--skip-license',
]);

/** sharp and every package it needs at run time (optional platform packages only where installed). */
function runtimeClosure(name, seen = new Set()) {
  if (seen.has(name)) return seen;
  let manifestPath;
  try {
    manifestPath = require.resolve(`${name}/package.json`);
  } catch {
    return seen; // an optional dependency for another platform
  }
  seen.add(name);
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  for (const dependency of [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.optionalDependencies ?? {})]) {
    runtimeClosure(dependency, seen);
  }
  return seen;
}

const listing = execFileSync('unzip', ['-Z1', out], { encoding: 'utf8' }).split('\n').filter(Boolean);
const has = (prefix) => listing.some((entry) => entry.startsWith(`extension/${prefix}`));
const required = [
  'dist/extension.js', 'dist/engineProcess.js', ...Object.keys(engineWorkerEntries()).map((name) => `dist/${name}.js`),
  'dist/tfjs-backend-wasm-simd.wasm',
  'dist/tfjs-backend-wasm.wasm', 'media/dist/panel.js', 'media/dist/uPlot.min.css', 'media/panel.css', 'media/simsiam.svg',
  'media/icon.png', 'node_modules/sharp/lib/index.js', `node_modules/@img/sharp-${target}/lib/sharp-${target}.node`,
  ...[...runtimeClosure('sharp')].map((name) => `node_modules/${name}/package.json`),
];
const missing = required.filter((file) => !has(file));
const forbidden = listing.filter((entry) => /^extension\/(src|test|out|sample|scripts|bench)\//.test(entry) ||
  entry.startsWith('extension/node_modules/@tensorflow/'));
if (missing.length || forbidden.length) {
  console.error(`The .vsix is not right:\n  missing: ${missing.join(', ') || 'none'}\n  should not be there: ${forbidden.slice(0, 20).join(', ') || 'none'}`);
  process.exit(1);
}
const megabytes = (fs.statSync(out).size / 1024 / 1024).toFixed(1);
console.log(`${path.relative(root, out)}: ${megabytes} MiB, ${listing.length} files (sharp closure: ${[...runtimeClosure('sharp')].join(', ')})`);
