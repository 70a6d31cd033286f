// The embedding map's part of what activate() returns (src/host/api.ts): open a run's map or its
// data views as the commands do, and read what the webview reports it drew.
import * as path from 'path';
import type { MapRenderedReport, MapTab, ViewName } from '../../webview/embeddingMapProtocol';
import type { EmbeddingMapPanels } from './embeddingMapPanels';

export interface EmbeddingMapProbe {
  /** Counts of messages the extension posted to the webview, by type. */
  posted: Record<string, number>;
  /** The webview's last report: the tab, the map's points, the selection, the data view's images. */
  rendered: MapRenderedReport | null;
}

export interface EmbeddingMapApi {
  /** Opens (or reveals) the run's embedding map panel on a tab ("Open Embedding Map", "Show Data Views" with the run chosen). */
  openEmbeddingMap(runDir: string, tab?: MapTab, view?: ViewName): Promise<void>;
  /** The open embedding map panel of a run, or undefined. */
  embeddingMap(runDir: string): EmbeddingMapProbe | undefined;
  /** Waits until the panel reports something that satisfies `test`. */
  waitForEmbeddingMap(runDir: string, test: (probe: EmbeddingMapProbe) => boolean, timeoutMs?: number): Promise<EmbeddingMapProbe>;
  /** Delivers `raw` to the panel as if its webview had sent it (validation included). */
  receiveFromEmbeddingMap(runDir: string, raw: unknown): void;
}

export function embeddingMapApi(panels: EmbeddingMapPanels): EmbeddingMapApi {
  const probe = (runDir: string): EmbeddingMapProbe | undefined => {
    const panel = panels.get(runDir);
    return panel && { posted: Object.fromEntries(panel.posted), rendered: panel.lastRendered };
  };
  return {
    async openEmbeddingMap(runDir, tab = 'map', view) {
      await panels.openCommand(path.resolve(runDir), tab, view);
    },
    embeddingMap: probe,
    async waitForEmbeddingMap(runDir, test, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const current = probe(runDir);
        if (current && test(current)) return current;
        if (Date.now() > deadline) {
          throw new Error(`The embedding map of ${runDir} did not reach the expected state in ${timeoutMs} ms: ${JSON.stringify(current)}`);
        }
        await Promise.race([panels.get(runDir)?.nextReport(), new Promise((resolve) => setTimeout(resolve, 250))]);
      }
    },
    receiveFromEmbeddingMap(runDir, raw) {
      const panel = panels.get(runDir);
      if (!panel) throw new Error(`no open embedding map for ${runDir}`);
      panel.receive(raw);
    },
  };
}
