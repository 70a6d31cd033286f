// Run folders made by hand for the retrieval tests: what a finished training leaves behind,
// without training.
import * as path from 'path';
import type { TrainConfig } from '../../src/training/config';
import type { DatasetSummary } from '../../src/training/protocol';
import { createRunDir, writeJsonAtomic, writeStatus, RUN_FILE, type RunRecord } from '../../src/training/run/runStore';

/** A completed run of `config` on `dataset` under `runsDir` (run.json, status.json; the caller adds its checkpoint). */
export function writeFinishedRun(runsDir: string, name: string, config: TrainConfig, dataset: DatasetSummary): string {
  const { dir, id } = createRunDir(runsDir, name);
  const record: RunRecord = { id, name, createdAt: new Date().toISOString(), config, dataset, backend: config.backend };
  writeJsonAtomic(path.join(dir, RUN_FILE), record);
  writeStatus(dir, { status: 'completed', step: 10, epoch: 1 });
  return dir;
}
