// The embedding map of a run, for the engine process and the CLI: every indexed image placed in
// 2-D by PCA (at once) or UMAP (seconds; cached per index content in <run>/map/, see
// ./mapCache.ts), with its class folder and split. Computed on the run's up-to-date index under
// its index lock (../retrieval/service.ts withFreshIndex), so a newer checkpoint is indexed first
// and its map computed anew.
import * as path from 'path';
import { scanDataset } from '../data/dataset';
import { message, type Emit, type MapMethod, type MapResultMessage, type MessageBody } from '../protocol';
import { withFreshIndex, type FreshIndex } from '../retrieval/service';
import { pca } from './pca';
import { umapLayout, UMAP_MIN_POINTS } from './umap';
import { readMapCache, writeMapCache, type MapKey } from './mapCache';

/** UMAP's settings; part of the cache key, so changing one here recomputes cached maps. */
export const UMAP_SETTINGS = { neighbours: 15, minDist: 0.1 } as const;

export type EmbeddingMap = MessageBody<MapResultMessage>;

const progress = (emit: Emit, task: string) => (done: number, total: number) => emit(message({ type: 'progress', task, done, total }));

async function layout(index: FreshIndex, method: MapMethod, emit: Emit): Promise<Float32Array> {
  const { search } = index;
  const rows = await search.rows();
  if (method === 'pca' || search.count < UMAP_MIN_POINTS) {
    if (method === 'umap') emit(message({ type: 'warning', message: `UMAP needs at least ${UMAP_MIN_POINTS} images; the map of ${search.count} is laid out by PCA.` }));
    return pca(rows, search.count, search.dims, { components: 2 }).coordinates;
  }
  const init = pca(rows, search.count, search.dims, { components: 2 }).coordinates;
  const table = await search.neighbourTable(UMAP_SETTINGS.neighbours, progress(emit, 'neighbours'));
  return umapLayout(table, { ...UMAP_SETTINGS, init, seed: index.record.config.seed, onProgress: progress(emit, 'umap') });
}

/** Which indexed images are in the test split, by the run's own split rule (its testFraction and seed). */
async function testImages(index: FreshIndex): Promise<Set<string>> {
  const runsDir = path.dirname(index.runDir);
  const scan = await scanDataset(index.manifest.datasetRoot, { excludeDirs: [runsDir], testFraction: index.record.config.testFraction, seed: index.record.config.seed });
  return new Set(scan.test.map((record) => record.relPath));
}

/** The map of the run's latest checkpoint by `method`; UMAP from the cache when it still fits the index. */
export function embeddingMap(runDir: string, method: MapMethod, emit: Emit): Promise<EmbeddingMap> {
  return withFreshIndex(runDir, `laying out its ${method.toUpperCase()} map`, emit, async (index) => {
    const { manifest } = index;
    const key: MapKey = {
      method, checkpoint: manifest.checkpoint, indexContent: index.contentId, count: index.search.count,
      settings: method === 'umap' ? { ...UMAP_SETTINGS, seed: index.record.config.seed } : {},
    };
    const warn = (text: string) => emit(message({ type: 'warning', message: text }));
    let coordinates = readMapCache(index.runDir, key, warn);
    const cached = coordinates !== null;
    if (!coordinates) {
      coordinates = await layout(index, method, emit);
      writeMapCache(index.runDir, key, coordinates);
    }
    const test = await testImages(index);
    const paths = manifest.files.relPath;
    return {
      type: 'mapResult', runDir: index.runDir, method, checkpointStep: manifest.checkpoint.step, cached,
      datasetRoot: manifest.datasetRoot, classes: manifest.classes, paths, labels: manifest.files.label,
      splits: paths.map((relPath) => (test.has(relPath) ? 'test' as const : 'train' as const)),
      x: Array.from({ length: paths.length }, (_, i) => coordinates[2 * i]),
      y: Array.from({ length: paths.length }, (_, i) => coordinates[2 * i + 1]),
    };
  });
}
