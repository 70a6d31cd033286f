// Bundles the extension for VS Code with esbuild:
//   dist/extension.js         the extension host side (never loads tfjs or sharp)
//   dist/engineProcess.js     the engine, forked per training run and for search
//   dist/<name>Worker.js      the engine's worker threads: every src/training/**/*Worker.ts, which the
//                             engine starts from path.join(__dirname, '<name>Worker.js')
//   dist/*.wasm               tfjs' wasm binaries that Node loads (the engine is told where via
//                             SIMSIAM_WASM_DIR), and our own SIMD kernels for augmentation and training (scripts/buildKernels.mjs)
//   media/dist/panel.js       the experiment panel's script, with uPlot inside; uPlot.min.css beside it
//   media/dist/runsTable.js   the runs table's script (media/src/runsTable/), uPlot inside too
//   media/dist/embeddingMap.js  the embedding map and data views panel's script (media/src/embeddingMap/), no library
// sharp and webgpu (native) stay external and ship in node_modules inside each platform's .vsix
// (see scripts/package.mjs); @tensorflow/tfjs-backend-webgpu is plain JavaScript and is bundled.
//
// node scripts/build.mjs [--production]   (--production minifies and drops source maps)
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as path from 'path';
import { fileURLToPath } from 'url';
import { buildKernels, buildTrainingKernels, KERNELS_FILE, TRAINING_KERNELS_FILE } from './buildKernels.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const production = process.argv.includes('--production');
const dist = path.join(root, 'dist');
const mediaDist = path.join(root, 'media', 'dist');

/** Optional or native packages resolved at run time from node_modules, never bundled. */
const ENGINE_EXTERNALS = ['sharp', 'webgpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'];

/**
 * The tfjs wasm binaries the engine can load. tfjs never starts wasm threads in Node, so
 * tfjs-backend-wasm-threaded-simd.wasm would only be dead weight in the package.
 */
export const WASM_BINARIES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm'];

const common = {
  bundle: true,
  minify: production,
  sourcemap: production ? false : 'linked',
  logLevel: 'warning',
  metafile: true,
  absWorkingDir: root,
};

const node = { ...common, platform: 'node', format: 'cjs', target: 'node20' };

/** Worker-thread entries of the engine, by bundle name. */
export function engineWorkerEntries() {
  return Object.fromEntries(fs.readdirSync(path.join(root, 'src', 'training'), { recursive: true })
    .filter((file) => /Worker\.ts$/.test(file))
    .map((file) => [path.basename(file, '.ts'), `src/training/${file.split(path.sep).join('/')}`]));
}

async function build() {
  fs.rmSync(dist, { recursive: true, force: true });
  fs.rmSync(mediaDist, { recursive: true, force: true });
  const started = Date.now();
  const [extension, engine] = await Promise.all([
    esbuild.build({ ...node, entryPoints: { extension: 'src/extension.ts' }, outdir: dist, external: ['vscode'] }),
    esbuild.build({
      ...node,
      entryPoints: { engineProcess: 'src/training/engineProcess.ts', ...engineWorkerEntries() },
      outdir: dist,
      external: ENGINE_EXTERNALS,
    }),
    esbuild.build({
      ...common, platform: 'browser', format: 'iife', target: 'es2022',
      entryPoints: { panel: 'media/src/panel.ts', runsTable: 'media/src/runsTable/main.ts', embeddingMap: 'media/src/embeddingMap/main.ts' },
      outdir: mediaDist,
    }),
  ]);
  checkExtensionStaysLight(extension.metafile);
  checkOneTfjsCore(engine.metafile);
  for (const file of WASM_BINARIES) {
    fs.copyFileSync(path.join(root, 'node_modules/@tensorflow/tfjs-backend-wasm/dist', file), path.join(dist, file));
  }
  await buildKernels(path.join(dist, KERNELS_FILE));
  await buildTrainingKernels(path.join(dist, TRAINING_KERNELS_FILE));
  fs.copyFileSync(path.join(root, 'node_modules/uplot/dist/uPlot.min.css'), path.join(mediaDist, 'uPlot.min.css'));
  // Into media/dist, which the package already takes whole (*.css), next to its script.
  fs.copyFileSync(path.join(root, 'media/src/embeddingMap/embeddingMap.css'), path.join(mediaDist, 'embeddingMap.css'));
  const size = (file) => `${(fs.statSync(file).size / 1024).toFixed(0)} KiB`;
  console.log(`built in ${Date.now() - started} ms${production ? ' (production)' : ''}: ` +
    ['dist/extension.js', 'dist/engineProcess.js', ...Object.keys(engineWorkerEntries()).map((name) => `dist/${name}.js`), 'media/dist/panel.js',
      'media/dist/runsTable.js', 'media/dist/embeddingMap.js']
      .map((f) => `${f} ${size(path.join(root, f))}`).join(', '));
}

/**
 * The extension host must stay quick to activate and must not load native code: its bundle may
 * take from the engine only the tfjs-free protocol, run store, config, dataset-layout and path modules.
 */
function checkExtensionStaysLight(metafile) {
  const allowedEngineModules = new Set([
    'src/training/protocol.ts', 'src/training/metrics.ts', 'src/training/versioned.ts', 'src/training/run/runStore.ts', 'src/training/run/runLock.ts', 'src/training/config.ts', 'src/training/printable.ts',
    'src/training/data/dataset.ts', 'src/training/data/rng.ts', 'src/training/paths.ts', 'src/training/run/runsReport.ts',
    // Run names and sweep planning (src/host/commands.ts, sweepQueue.ts): plain config arithmetic and run.json reads.
    'src/training/run/runNames.ts', 'src/training/sweep.ts',
  ]);
  const offending = Object.keys(metafile.inputs).filter((input) =>
    /node_modules\/(@tensorflow|sharp|@img|webgpu)\//.test(input) ||
    (input.startsWith('src/training/') && !allowedEngineModules.has(input)));
  if (offending.length) {
    throw new Error(`dist/extension.js must not include the engine or its native dependencies, but it bundles:\n  ${offending.join('\n  ')}`);
  }
}

/**
 * Every tfjs package in the engine must register its kernels with the same tfjs-core: a backend
 * bundled with a second copy (a mismatched @tensorflow/tfjs-backend-webgpu, say) would register
 * where the engine never looks. In the package the bundle is all there is, so this is checked here.
 */
function checkOneTfjsCore(metafile) {
  const copies = new Set(Object.keys(metafile.inputs)
    .map((input) => input.match(/^(.*node_modules\/@tensorflow\/tfjs-core)\//)?.[1]).filter(Boolean));
  if (copies.size > 1) {
    throw new Error(`the engine bundles ${copies.size} copies of @tensorflow/tfjs-core (${[...copies].join(', ')}): ` +
      'give every @tensorflow/tfjs-* dependency in package.json the same version and run npm install');
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  build().catch((error) => {
    console.error(error.message ?? error);
    process.exit(1);
  });
}
