// The runs table's part of what activate() returns (src/host/api.ts): open a table with runs
// selected and an x axis chosen, as a person would, and read what its webview reports it drew.
import * as path from 'path';
import type { RunRow } from '../../training/run/runsReport';
import type { RunsTableRendered, XAxis } from '../../webview/runsTableProtocol';
import type { RunsTablePanels } from './runsTablePanels';

export interface RunsTableProbe {
  /** The rows the host last read (the same as `simsiam runs --json`). */
  rows: RunRow[];
  /** Counts of messages the extension posted to the webview, by type. */
  posted: Record<string, number>;
  /** The webview's last report: rows in table order, the selection, the axis, each chart's series, the diff's fields. */
  rendered: RunsTableRendered | null;
}

export interface RunsTableApi {
  /** Opens (or reveals) the runs table of a dataset folder; `view` selects runs and sets the x axis in its webview. */
  openRunsTable(datasetFolder: string, view?: { selected?: string[]; axis?: XAxis }): Promise<void>;
  /** The open runs table of a dataset folder, or undefined. */
  runsTable(datasetFolder: string): RunsTableProbe | undefined;
  /** Waits until the table reports something that satisfies `test`. */
  waitForRunsTable(datasetFolder: string, test: (probe: RunsTableProbe) => boolean, timeoutMs?: number): Promise<RunsTableProbe>;
  /** Delivers `raw` to the table as if its webview had sent it (validation included). */
  receiveFromRunsTable(datasetFolder: string, raw: unknown): void;
}

export function runsTableApi(tables: RunsTablePanels): RunsTableApi {
  const probe = (folder: string): RunsTableProbe | undefined => {
    const table = tables.get(folder);
    return table && { rows: [...table.rows], posted: Object.fromEntries(table.posted), rendered: table.lastRendered };
  };
  return {
    async openRunsTable(datasetFolder, view) {
      tables.open(path.resolve(datasetFolder), view);
    },
    runsTable: probe,
    async waitForRunsTable(datasetFolder, test, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const current = probe(datasetFolder);
        if (current && test(current)) return current;
        if (Date.now() > deadline) {
          throw new Error(`The runs table of ${datasetFolder} did not reach the expected state in ${timeoutMs} ms: ${JSON.stringify(current)}`);
        }
        await Promise.race([tables.get(datasetFolder)?.nextReport(), new Promise((resolve) => setTimeout(resolve, 250))]);
      }
    },
    receiveFromRunsTable(datasetFolder, raw) {
      const table = tables.get(datasetFolder);
      if (!table) throw new Error(`no open runs table for ${datasetFolder}`);
      table.receive(raw);
    },
  };
}
