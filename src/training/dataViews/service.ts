// The data views of a run, for the engine process and the CLI, computed on the run's up-to-date
// index under its index lock (../retrieval/service.ts withFreshIndex): near-duplicate groups
// (the duplicates search of ../retrieval/search.ts), possible label issues, outliers and the most
// redundant images (./views.ts).
import * as path from 'path';
import { message, type DataViewName, type DataViewResultMessage, type DuplicatesResultMessage, type Emit, type MessageBody } from '../protocol';
import { withFreshIndex } from '../retrieval/service';
import type { IndexManifest } from '../retrieval/embeddingIndex';
import { dataView } from './views';

export const DEFAULT_VIEW_K = 10;
export const DEFAULT_VIEW_LIMIT = 50;
export const DEFAULT_DUPLICATE_THRESHOLD = 0.95;

const VIEW_ACTIVITY: Record<DataViewName, string> = {
  labelIssues: 'looking for possible label issues',
  outliers: 'ranking its most unique images',
  redundant: 'ranking its most redundant images',
};

const absolutePath = (manifest: IndexManifest, relPath: string) => path.join(manifest.datasetRoot, ...relPath.split('/'));
const className = (manifest: IndexManifest, label: number | null) => (label === null ? null : manifest.classes[label] ?? null);

export async function computeDataView(runDir: string, view: DataViewName, k: number, limit: number, emit: Emit): Promise<MessageBody<DataViewResultMessage>> {
  if (!(Number.isInteger(k) && k > 0)) throw new Error(`k must be a positive whole number (got ${k}).`);
  if (!(Number.isInteger(limit) && limit > 0)) throw new Error(`the limit must be a positive whole number (got ${limit}).`);
  return withFreshIndex(runDir, VIEW_ACTIVITY[view], emit, async (index) => {
    const { manifest } = index;
    const table = await index.search.neighbourTable(k, (done, total) => emit(message({ type: 'progress', task: 'neighbours', done, total })));
    const ranked = dataView(view, table, manifest.files.label, k, limit);
    return {
      type: 'dataViewResult', runDir: index.runDir, view, k: table.k, checkpointStep: manifest.checkpoint.step,
      items: ranked.map((r) => ({
        path: absolutePath(manifest, manifest.files.relPath[r.row]),
        label: className(manifest, manifest.files.label[r.row]),
        score: r.score,
        suggested: className(manifest, r.suggested),
      })),
    };
  });
}

export async function computeDuplicates(runDir: string, threshold: number, emit: Emit): Promise<MessageBody<DuplicatesResultMessage>> {
  if (!(typeof threshold === 'number' && threshold >= -1 && threshold <= 1)) {
    throw new Error(`The duplicate threshold is a cosine similarity between -1 and 1 (got ${threshold}).`);
  }
  return withFreshIndex(runDir, 'finding near-duplicates', emit, async (index) => {
    const { manifest } = index;
    const groups = await index.search.duplicateGroups(threshold, (done, total) => emit(message({ type: 'progress', task: 'duplicates', done, total })));
    return {
      type: 'duplicatesResult', runDir: index.runDir, threshold, checkpointStep: manifest.checkpoint.step,
      groups: groups.map((g) => ({ paths: g.rows.map((row) => absolutePath(manifest, manifest.files.relPath[row])), minScore: g.minScore })),
    };
  });
}
