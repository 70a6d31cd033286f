/**
 * Embedding map benchmarks (issue 13 targets), printed, not asserted:
 *   1. PCA of N random 128-d unit vectors (goal ≤ 2 s for 10 000 on 2 cores);
 *   2. UMAP of the same: the exact neighbour table on the active tfjs backend, then the layout
 *      (goal ≤ 30 s for 10 000, both together);
 *   3. the map panel's script in headless Chromium (playwright-core, /usr/bin/chromium or
 *      SIMSIAM_CHROMIUM): frame time while panning 50 000 points, as the draw takes and as the
 *      animation frames come. Skipped with the reason when Chromium or esbuild is not there.
 *
 * benchMap(context) is what bench/index.ts calls; `node out/bench/map.js [--quick]` runs it alone.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as os from 'os';
import { performance } from 'perf_hooks';
import { Rng } from '../src/training/data/rng';
import { pca } from '../src/training/projection/pca';
import { umapLayout } from '../src/training/projection/umap';
import { UMAP_SETTINGS } from '../src/training/projection/mapService';
import { VectorIndex } from '../src/training/retrieval/search';
import { selectBackend } from '../src/training/tfjs/backend';
import { mapMessage } from '../src/webview/embeddingMapProtocol';
import type { BenchContext } from './context';
import type { UserBackendName } from '../src/training/config';
import { consoleOutput } from './context';

const DIMS = 128;
const FRAME_POINTS = 50_000;

export interface MapFigures {
  sizes: { images: number; pcaMs: number; neighboursMs: number | null; umapMs: number | null }[];
  frame: { points: number; drawMs: number; frameIntervalMs: number; p95IntervalMs: number } | { skipped: string };
}

function randomUnitVectors(rng: Rng, count: number, dims: number): Float32Array {
  const vectors = new Float32Array(count * dims);
  for (let i = 0; i < count; i++) {
    let norm = 0;
    for (let j = 0; j < dims; j++) {
      const v = Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
      vectors[i * dims + j] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    for (let j = 0; j < dims; j++) vectors[i * dims + j] /= norm;
  }
  return vectors;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function timeLayouts(context: Pick<BenchContext, 'print'>, images: number, withUmap: boolean): Promise<MapFigures['sizes'][number]> {
  const vectors = randomUnitVectors(new Rng(images), images, DIMS);
  let started = performance.now();
  const projected = pca(vectors, images, DIMS, { components: 2 });
  const pcaMs = performance.now() - started;
  if (!withUmap) {
    context.print(`${images} × ${DIMS}: PCA ${seconds(pcaMs)}; UMAP not run (--quick)`);
    return { images, pcaMs, neighboursMs: null, umapMs: null };
  }
  const index = new VectorIndex(vectors, images, DIMS);
  started = performance.now();
  const table = await index.neighbourTable(UMAP_SETTINGS.neighbours);
  const neighboursMs = performance.now() - started;
  index.dispose();
  started = performance.now();
  await umapLayout(table, { ...UMAP_SETTINGS, init: projected.coordinates, seed: 0 });
  const umapMs = performance.now() - started;
  context.print(`${images} × ${DIMS}: PCA ${seconds(pcaMs)}; UMAP ${seconds(neighboursMs + umapMs)} ` +
    `(neighbours ${seconds(neighboursMs)}, layout ${seconds(umapMs)})`);
  return { images, pcaMs, neighboursMs, umapMs };
}

/** The map page as the panel serves it, with a stand-in for VS Code's webview API, in headless Chromium. */
async function timePanning(workDir: string, points: number): Promise<MapFigures['frame']> {
  let esbuild: typeof import('esbuild');
  let playwright: typeof import('playwright-core');
  try {
    esbuild = await import('esbuild');
    playwright = await import('playwright-core');
  } catch (error) {
    return { skipped: `esbuild or playwright-core is not installed (${(error as Error).message})` };
  }
  const executablePath = process.env.SIMSIAM_CHROMIUM ?? '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) return { skipped: `no Chromium at ${executablePath} (set SIMSIAM_CHROMIUM)` };
  const repoRoot = path.resolve(__dirname, '..', '..');
  const script = path.join(workDir, 'embeddingMap.js');
  await esbuild.build({ entryPoints: [path.join(repoRoot, 'media/src/embeddingMap/main.ts')], bundle: true, minify: true, format: 'iife', target: 'es2022', outfile: script, logLevel: 'warning' });
  fs.copyFileSync(path.join(repoRoot, 'media/src/embeddingMap/embeddingMap.css'), path.join(workDir, 'embeddingMap.css'));
  const page = path.join(workDir, 'map.html');
  fs.writeFileSync(page, `<!DOCTYPE html><html><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src file:; style-src file:; script-src 'nonce-bench'">
<link rel="stylesheet" href="embeddingMap.css"></head><body>
<main id="app" data-state='{"runDir":"/bench","tab":"map"}'></main>
<script nonce="bench">window.acquireVsCodeApi = () => ({ postMessage() {}, getState() { return undefined; }, setState() {} });</script>
<script nonce="bench" src="embeddingMap.js"></script></body></html>`);

  const rng = new Rng(1);
  const map = mapMessage({
    type: 'map', method: 'umap', checkpointStep: 1, cached: true, classes: Array.from({ length: 10 }, (_, i) => `class${i}`),
    paths: Array.from({ length: points }, (_, i) => `class${i % 10}/${i}.png`),
    labels: Array.from({ length: points }, (_, i) => i % 10), splits: Array.from({ length: points }, (_, i) => (i % 10 === 0 ? 'test' : 'train')),
    x: Array.from({ length: points }, (_, i) => (i % 10) * 3 + rng.uniform(-2, 2)), y: Array.from({ length: points }, () => rng.uniform(-10, 10)),
  });
  const browser = await playwright.chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const tab = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await tab.goto(`file://${page}`);
    await tab.evaluate((message) => window.postMessage(message, '*'), map);
    await tab.waitForFunction((n) => document.getElementById('map-canvas')?.dataset.points === String(n), points);
    const box = (await tab.locator('#map-canvas').boundingBox())!;
    const [cx, cy] = [box.x + box.width / 2, box.y + box.height / 2];
    await tab.evaluate(() => {
      const w = window as unknown as { frames_: number[]; draws_: number[] };
      w.frames_ = [];
      w.draws_ = [];
      const canvas = document.getElementById('map-canvas')!;
      new MutationObserver(() => w.draws_.push(Number(canvas.dataset.frameMs))).observe(canvas, { attributes: true, attributeFilter: ['data-frame-ms'] });
      const tick = (t: number) => {
        w.frames_.push(t);
        if (w.frames_.length < 100_000) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    await tab.mouse.move(cx, cy);
    await tab.mouse.down();
    for (let i = 0; i < 120; i++) await tab.mouse.move(cx + 200 * Math.sin(i / 10), cy + 100 * Math.cos(i / 10));
    await tab.mouse.up();
    for (let i = 0; i < 20; i++) await tab.mouse.wheel(0, i % 2 ? 120 : -120);
    const { frames, draws } = await tab.evaluate(() => {
      const w = window as unknown as { frames_: number[]; draws_: number[] };
      return { frames: w.frames_, draws: w.draws_ };
    });
    const intervals = frames.slice(1).map((t, i) => t - frames[i]).sort((a, b) => a - b);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    return {
      points, drawMs: mean(draws.filter(Number.isFinite)), frameIntervalMs: mean(intervals),
      p95IntervalMs: intervals[Math.floor(intervals.length * 0.95)] ?? NaN,
    };
  } finally {
    await browser.close();
  }
}

/** `backend` runs the neighbour search (default wasm, as the search engine picks it where nothing faster loads). */
export async function benchMap(context: Pick<BenchContext, 'quick' | 'workDir' | 'heading' | 'print'>, backend: UserBackendName = 'wasm'): Promise<MapFigures> {
  context.heading('Embedding map: PCA and UMAP of random 128-d embeddings, the panel\'s frame time');
  const info = await selectBackend(backend);
  context.print(`neighbour search on ${info.detail}`);
  const sizes: MapFigures['sizes'] = [];
  for (const images of context.quick ? [2_000, 5_000] : [10_000, 50_000]) sizes.push(await timeLayouts(context, images, true));
  const frame = await timePanning(context.workDir, context.quick ? 10_000 : FRAME_POINTS).catch((error: Error) => ({ skipped: error.message }));
  if ('skipped' in frame) context.print(`panel frame time: skipped (${frame.skipped})`);
  else {
    context.print(`panel, ${frame.points} points, panning and zooming: draw ${frame.drawMs.toFixed(1)} ms per frame; ` +
      `frames every ${frame.frameIntervalMs.toFixed(1)} ms on average (p95 ${frame.p95IntervalMs.toFixed(1)} ms)`);
  }
  return { sizes, frame };
}

if (require.main === module) {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'simsiam-bench-map-'));
  benchMap({ quick: process.argv.includes('--quick'), workDir, ...consoleOutput() })
    .finally(() => fs.rmSync(workDir, { recursive: true, force: true }))
    .catch((error) => {
      console.error(error);
      process.exitCode = 1;
    });
}
