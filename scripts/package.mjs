// `npm run package`: one .vsix per VS Code platform target, from one production build.
//
// Everything JavaScript is in the esbuild bundles (scripts/build.mjs); native code cannot be
// bundled, so each package carries its platform's sharp with libvips (image decoding) and Dawn's
// WebGPU bindings (webgpu) in node_modules. npm installs another platform's optional packages when
// told that platform (--os/--cpu/--libc), so each target gets its own staging folder,
// .package/<target>/, holding the production build and a node_modules that npm installed for that
// target; vsce packages from there. The npm install is kept between runs (the versions it was made
// for are stamped beside it) and repeats only when sharp or webgpu change, from npm's cache.
// Afterwards every archive is checked: bundles, wasm binaries, panel assets and the native closure
// must be inside; sources, declarations, source maps, other platforms' binaries and the threaded
// wasm binary (Node never loads it) must not be. test/package/ checks the binaries' headers.
//
//   npm run package                          every target
//   npm run package -- --target linux-x64    one (or a comma-separated list); so does
//   SIMSIAM_PACKAGE_TARGETS=linux-x64 npm run package
import { execFile, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { fileURLToPath } from 'url';
import { createRequire } from 'module';
import { engineWorkerEntries, WASM_BINARIES } from './build.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const stagingRoot = path.join(root, '.package');

/**
 * VS Code's targets this extension is built for: npm's platform flags, sharp's name for the
 * platform (@img/sharp-<sharp>, @img/sharp-libvips-<sharp>) and webgpu's dist/ folder (Dawn has
 * one universal macOS build and no musl build, so Alpine goes without WebGPU).
 */
export const TARGETS = {
  'linux-x64': { npm: ['--os=linux', '--cpu=x64', '--libc=glibc'], sharp: 'linux-x64', dawn: 'linux-x64' },
  'linux-arm64': { npm: ['--os=linux', '--cpu=arm64', '--libc=glibc'], sharp: 'linux-arm64', dawn: 'linux-arm64' },
  'darwin-x64': { npm: ['--os=darwin', '--cpu=x64'], sharp: 'darwin-x64', dawn: 'darwin-universal' },
  'darwin-arm64': { npm: ['--os=darwin', '--cpu=arm64'], sharp: 'darwin-arm64', dawn: 'darwin-universal' },
  'win32-x64': { npm: ['--os=win32', '--cpu=x64'], sharp: 'win32-x64', dawn: 'win32-x64' },
  'alpine-x64': { npm: ['--os=linux', '--cpu=x64', '--libc=musl'], sharp: 'linuxmusl-x64', dawn: null },
};

/** What the repository ships besides node_modules; .vscodeignore picks the files inside. */
/** The bundled sample (1,200 Fashion-MNIST PNGs, ~0.7 MB): the walkthrough's first run trains on it. */
const SAMPLE = 'sample/fashion-mnist';
const SHIPPED_PATHS = ['LICENSE', 'CHANGELOG.md', 'docs/EXTENSION.md', 'dist', 'media', SAMPLE];

export const vsixPath = (target) => path.join(root, `${pkg.name}-${pkg.version}-${target}.vsix`);

function requestedTargets(argv, env) {
  const flag = argv.findIndex((arg) => arg === '--target' || arg.startsWith('--target='));
  const value = flag < 0 ? env.SIMSIAM_PACKAGE_TARGETS : argv[flag].includes('=') ? argv[flag].split('=')[1] : argv[flag + 1];
  const targets = value ? value.split(',').map((t) => t.trim()).filter(Boolean) : Object.keys(TARGETS);
  const unknown = targets.filter((t) => !(t in TARGETS));
  if (unknown.length || !targets.length) {
    throw new Error(`unknown package target ${unknown.join(', ') || '(none)'}: use one or more of ${Object.keys(TARGETS).join(', ')}`);
  }
  return targets;
}

const run = (command, args, cwd = root) => execFileSync(command, args, { cwd, stdio: 'inherit' });

/** Runs a step of one target's packaging quietly (targets run side by side): its warnings show, and all its output if it fails. */
async function runQuietly(target, command, args, cwd) {
  try {
    const { stdout } = await promisify(execFile)(command, args, { cwd, maxBuffer: 64 * 1024 * 1024 });
    for (const warning of stdout.split('\n').filter((line) => /WARNING/.test(line))) console.warn(`${target}: ${warning.trim()}`);
  } catch (error) {
    throw new Error(`${target}: ${[command, ...args].join(' ')} failed in ${path.relative(root, cwd)}:\n${error.stdout ?? ''}${error.stderr ?? error.message}`);
  }
}
const installedVersion = (name) => JSON.parse(fs.readFileSync(require.resolve(`${name}/package.json`), 'utf8')).version;

/**
 * The native packages `target` needs, at exactly the versions this checkout builds and tests with.
 */
function nativeDependencies(target) {
  return { sharp: installedVersion('sharp'), ...(TARGETS[target].dawn ? { webgpu: installedVersion('webgpu') } : {}) };
}

/**
 * Installs the target's native packages into its staging folder, unless the folder already holds
 * exactly these (the stamp). Only the target's Dawn build is kept: the webgpu tarball has them all.
 */
async function installNativePackages(target, staging) {
  const wanted = JSON.stringify({ dependencies: nativeDependencies(target), npm: TARGETS[target].npm });
  const stamp = path.join(staging, 'node_modules', '.simsiam-target.json');
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === wanted) return false;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  fs.writeFileSync(path.join(staging, 'package.json'), JSON.stringify({
    name: `${pkg.name}-${target}`, private: true, dependencies: nativeDependencies(target),
  }));
  await runQuietly(target, 'npm', ['install', '--no-audit', '--no-fund', '--no-save', '--ignore-scripts', '--prefer-offline',
    '--loglevel=error', ...TARGETS[target].npm], staging);
  const dawnBuilds = path.join(staging, 'node_modules', 'webgpu', 'dist');
  if (fs.existsSync(dawnBuilds)) {
    for (const build of fs.readdirSync(dawnBuilds).filter((name) => name !== TARGETS[target].dawn)) {
      fs.rmSync(path.join(dawnBuilds, build), { recursive: true, force: true });
    }
  }
  fs.writeFileSync(stamp, wanted);
  return true;
}

/**
 * The build and a manifest whose `dependencies` name what the package's node_modules holds: the
 * rest of them are inside the bundles, and vsce collects node_modules from `npm list`, which
 * fails on a declared dependency that is not installed.
 */
function stageBuild(target, staging) {
  for (const entry of fs.readdirSync(staging).filter((name) => name !== 'node_modules')) {
    fs.rmSync(path.join(staging, entry), { recursive: true, force: true });
  }
  for (const shipped of SHIPPED_PATHS) {
    // Runs trained on the sample in this checkout (sample/fashion-mnist/.simsiam) stay out.
    fs.cpSync(path.join(root, shipped), path.join(staging, shipped), { recursive: true, filter: (source) => !source.includes(`${path.sep}.simsiam`) });
  }
  const dependencies = Object.fromEntries(Object.keys(nativeDependencies(target)).map((name) => [name, pkg.dependencies[name]]));
  fs.writeFileSync(path.join(staging, 'package.json'), JSON.stringify({ ...pkg, dependencies }, null, 2) + '\n');
}

async function packageTarget(target) {
  const staging = path.join(stagingRoot, target);
  const started = Date.now();
  const installed = await installNativePackages(target, staging);
  stageBuild(target, staging);
  const out = vsixPath(target);
  fs.rmSync(out, { force: true });
  await runQuietly(target, process.execPath, [
    require.resolve('@vscode/vsce/vsce'), 'package',
    '--dependencies', '--no-yarn', '--target', target, '--out', out,
    '--ignoreFile', path.join(root, '.vscodeignore'),
    '--readme-path', 'docs/EXTENSION.md', '--no-rewrite-relative-links',
  ], staging);
  const listing = execFileSync('unzip', ['-Z1', out], { encoding: 'utf8' }).split('\n').filter(Boolean);
  return { target, out, listing, seconds: (Date.now() - started) / 1000, installed };
}

/** Maps `items` through `task`, at most `limit` at a time, in order. */
async function inParallel(items, limit, task) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** What `listing` (unzip -Z1 of the target's .vsix) lacks and what it should not hold. */
export function checkListing(target, listing) {
  const { sharp, dawn } = TARGETS[target];
  const has = (file) => listing.includes(`extension/${file}`);
  const required = [
    'package.json', 'LICENSE.txt', 'changelog.md', 'readme.md',
    'dist/extension.js', 'dist/engineProcess.js', ...Object.keys(engineWorkerEntries()).map((name) => `dist/${name}.js`),
    ...WASM_BINARIES.map((file) => `dist/${file}`), 'dist/augmentKernels.wasm', 'dist/trainingKernels.wasm',
    'media/dist/panel.js', 'media/dist/uPlot.min.css', 'media/panel.css', 'media/dist/runsTable.js', 'media/runsTable.css', 'media/simsiam.svg', 'media/icon.png',
    ...walkthroughMedia(), `${SAMPLE}/README.md`, ...sampleImages(),
    'node_modules/sharp/package.json', 'node_modules/sharp/lib/index.js', 'node_modules/sharp/lib/libvips.js',
    'node_modules/@img/colour/package.json', 'node_modules/@img/colour/index.cjs',
    'node_modules/detect-libc/package.json', 'node_modules/detect-libc/lib/detect-libc.js',
    'node_modules/semver/package.json', 'node_modules/semver/functions/coerce.js', 'node_modules/semver/functions/satisfies.js',
    `node_modules/@img/sharp-${sharp}/package.json`, `node_modules/@img/sharp-${sharp}/lib/sharp-${sharp}.node`,
    ...(target.startsWith('win32') ? [] : [`node_modules/@img/sharp-libvips-${sharp}/package.json`, `node_modules/@img/sharp-libvips-${sharp}/versions.json`]),
    ...(dawn ? ['node_modules/webgpu/package.json', 'node_modules/webgpu/index.js', `node_modules/webgpu/dist/${dawn}/dawn.node`] : []),
  ];
  const missing = required.filter((file) => !has(file));
  if (!target.startsWith('win32') && !listing.some((e) => e.startsWith(`extension/node_modules/@img/sharp-libvips-${sharp}/lib/libvips-cpp.`))) {
    missing.push(`node_modules/@img/sharp-libvips-${sharp}/lib/libvips-cpp.*`);
  }
  const forbidden = listing.filter((entry) => {
    const file = entry.replace(/^extension\//, '');
    const img = file.match(/^node_modules\/@img\/sharp-(?:libvips-)?([^/]+)\//);
    const dawnBuild = file.match(/^node_modules\/webgpu\/dist\/([^/]+)\//);
    return /^(src|test|out|scripts|bench|docs|\.package)\//.test(file) ||
      (file.startsWith('sample/') && !file.startsWith(`${SAMPLE}/`)) || file.includes('/.simsiam/') ||
      /^media\/src\//.test(file) ||
      /\.(ts|mts|cts|map|cc|cpp|c|h|hpp|gyp)$/.test(file) ||
      /(^|\/)tfjs-backend-wasm-threaded-simd\.wasm$/.test(file) ||
      /^node_modules\/(@tensorflow|@webgpu|debug|ms)\//.test(file) ||
      /^node_modules\/(sharp\/(src|install)|webgpu\/build)\//.test(file) ||
      (img && img[1] !== sharp) ||
      (dawnBuild && dawnBuild[1] !== dawn) ||
      (!dawn && file.startsWith('node_modules/webgpu/'));
  });
  return { missing, forbidden };
}

/** Every image of the bundled sample, which "Train the Sample" trains on. */
function sampleImages() {
  return fs.readdirSync(path.join(root, SAMPLE), { recursive: true })
    .filter((file) => file.endsWith('.png') && !file.includes('.simsiam')).map((file) => `${SAMPLE}/${file.split(path.sep).join('/')}`);
}

/** The markdown files the walkthrough's steps show (package.json contributes.walkthroughs). */
function walkthroughMedia() {
  return (pkg.contributes.walkthroughs ?? []).flatMap((walkthrough) => walkthrough.steps)
    .map((step) => step.media?.markdown).filter(Boolean);
}

async function main() {
  const targets = requestedTargets(process.argv.slice(2), process.env);
  run(process.execPath, [path.join(root, 'scripts', 'build.mjs'), '--production']);
  const started = Date.now();
  // vsce spends its time compressing, on one core per package.
  const packaged = await inParallel(targets, os.availableParallelism(), packageTarget);
  const problems = [];
  for (const { target, out, listing, seconds, installed } of packaged) {
    const { missing, forbidden } = checkListing(target, listing);
    if (missing.length || forbidden.length) {
      problems.push(`${path.relative(root, out)} is not right:\n  missing: ${missing.join(', ') || 'none'}\n` +
        `  should not be there (${forbidden.length}): ${forbidden.slice(0, 30).join(', ') || 'none'}`);
    }
    const megabytes = (fs.statSync(out).size / 1024 / 1024).toFixed(1);
    console.log(`${path.relative(root, out)}: ${megabytes} MiB, ${listing.length} files, ${seconds.toFixed(1)} s` +
      `${installed ? ' (native packages installed)' : ''}`);
  }
  console.log(`${packaged.length} package(s) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (problems.length) throw new Error(problems.join('\n'));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(error.message ?? error);
    process.exit(1);
  });
}
