// The embedding map's layouts, cached in <run>/map/<method>.json: a UMAP of 10 000 images takes
// seconds, and the panel asks for it each time it opens. A cached layout belongs to one index
// content (the index's vectors checksum, which changes with every re-embedded row and with every
// new checkpoint) and to the settings it was computed with; a layout for anything else is stale
// and recomputed. The cache is derived data: a file that fails a check when read is reported and
// replaced, never trusted.
import * as fs from 'fs';
import * as path from 'path';
import * as v from 'valibot';
import { CheckpointPointerSchema, writeFileAtomic, type CheckpointPointer } from '../run/runStore';
import { count, describeIssue, finite } from '../versioned';
import { MAP_METHODS, type MapMethod } from '../protocol';

export const MAP_DIR = 'map';
const FORMAT = 'simsiam-embedding-map';
const FORMAT_VERSION = 1;

const MapCacheSchema = v.pipe(
  v.object({
    format: v.literal(FORMAT),
    version: v.literal(FORMAT_VERSION),
    method: v.picklist(MAP_METHODS),
    checkpoint: CheckpointPointerSchema,
    /** The index content the layout was computed from (see FreshIndex.contentId). */
    indexContent: v.string(),
    /** The settings of the computation, compared as a whole. */
    settings: v.record(v.string(), v.union([finite, v.string()])),
    count,
    x: v.array(finite),
    y: v.array(finite),
  }),
  v.check((m) => m.x.length === m.count && m.y.length === m.count, 'does not hold one x and one y per image'),
);
export type MapCache = v.InferOutput<typeof MapCacheSchema>;

/** What a layout must have been computed from to be used. */
export interface MapKey {
  method: MapMethod;
  checkpoint: CheckpointPointer;
  indexContent: string;
  settings: Record<string, number | string>;
  count: number;
}

export function mapCacheFile(runDir: string, method: MapMethod): string {
  return path.join(runDir, MAP_DIR, `${method}.json`);
}

const sameSettings = (a: Record<string, number | string>, b: Record<string, number | string>) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([key, value]) => b[key] === value);

function matches(cache: MapCache, key: MapKey): boolean {
  return cache.method === key.method && cache.checkpoint.step === key.checkpoint.step && cache.checkpoint.dir === key.checkpoint.dir &&
    cache.indexContent === key.indexContent && cache.count === key.count && sameSettings(cache.settings, key.settings);
}

/**
 * The cached layout for `key` as row-major count × 2 coordinates, or null when there is none, it
 * is stale, or it fails a check (`onDamaged` hears why; the caller computes and writes a new one).
 */
export function readMapCache(runDir: string, key: MapKey, onDamaged?: (warning: string) => void): Float32Array | null {
  const file = mapCacheFile(runDir, key.method);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    onDamaged?.(`The embedding map cache ${file} cannot be read (${(error as Error).message}); the map is computed again.`);
    return null;
  }
  let problem: string;
  try {
    const result = v.safeParse(MapCacheSchema, JSON.parse(text));
    if (result.success) {
      if (!matches(result.output, key)) return null;
      const coordinates = new Float32Array(key.count * 2);
      result.output.x.forEach((x, i) => (coordinates[2 * i] = x));
      result.output.y.forEach((y, i) => (coordinates[2 * i + 1] = y));
      return coordinates;
    }
    problem = `is not a valid map cache: ${describeIssue(result.issues)}`;
  } catch (error) {
    problem = `is not JSON (${(error as Error).message})`;
  }
  onDamaged?.(`The embedding map cache ${file} is damaged: it ${problem}. The map is computed again and the file replaced.`);
  return null;
}

/** Writes the layout for `key` (atomically: a crash leaves the old file or the new one). */
export function writeMapCache(runDir: string, key: MapKey, coordinates: Float32Array): void {
  const file = mapCacheFile(runDir, key.method);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const x = Array.from({ length: key.count }, (_, i) => coordinates[2 * i]);
  const y = Array.from({ length: key.count }, (_, i) => coordinates[2 * i + 1]);
  const cache: MapCache = { format: FORMAT, version: FORMAT_VERSION, ...key, checkpoint: { ...key.checkpoint }, x, y };
  writeFileAtomic(file, JSON.stringify(cache));
}
