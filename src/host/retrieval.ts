// Nearest-neighbour search (with the indexing it needs), answered by one engine process kept for the purpose
// (training runs have their own). The engine handles one request at a time and its replies carry
// no request id, so requests are queued here and each waits for its own result message.
import * as vscode from 'vscode';
import type {
  DataViewName, DataViewResultMessage, DuplicatesResultMessage, EngineMessage, MapMethod, MapResultMessage, Neighbour,
  PreviewResultMessage, SimilarResultMessage, ExportRequest, ExportResultMessage,
} from '../training/protocol';
import type { PreviewRequestFields } from './panel/augmentationPreview';
import type { EngineProcess } from './engineProcess';
import type { EngineLauncher } from './training';

export interface ProgressReport { task: string; done: number; total: number }

/** An idle search engine is closed after this long: it holds a model and the index in memory. */
const IDLE_CLOSE_MS = 5 * 60_000;

type Pending = {
  settle: (m: EngineMessage) => boolean;
  fail: (error: Error) => void;
  onProgress?: (p: ProgressReport) => void;
};

export class RetrievalClient implements vscode.Disposable {
  private engine: EngineProcess | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private pending: Pending | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly launch: EngineLauncher, private readonly log: vscode.LogOutputChannel) {}

  /**
   * The k nearest images of the run's dataset to `image`, best first, the image itself left out.
   * The engine first brings the run's index up to date with its latest checkpoint (only new or
   * changed images are embedded), reporting progress.
   */
  async similar(runDir: string, image: string, k: number, onProgress?: (p: ProgressReport) => void): Promise<Neighbour[]> {
    const result = await this.request((engine) => engine.send({ type: 'similar', runDir, image, k }),
      (m): m is SimilarResultMessage => m.type === 'similarResult', onProgress);
    return result.neighbours;
  }

  /** Writes the run's embeddings (indexing what is new first); resolves to the files written. */
  async export(runDir: string, format: ExportRequest['format'], out: string, onProgress?: (p: ProgressReport) => void): Promise<string[]> {
    const result = await this.request((engine) => engine.send({ type: 'export', runDir, format, out }),
      (m): m is ExportResultMessage => m.type === 'exportResult', onProgress);
    return result.files;
  }

  /** The run's embedding map by `method` (UMAP cached per checkpoint in the run folder), after indexing what is new. */
  map(runDir: string, method: MapMethod, onProgress?: (p: ProgressReport) => void): Promise<MapResultMessage> {
    return this.request((engine) => engine.send({ type: 'map', runDir, method }),
      (m): m is MapResultMessage => m.type === 'mapResult', onProgress);
  }

  /** One of the ranked data views (label issues, outliers, redundant) of the run's images. */
  dataView(runDir: string, view: DataViewName, k: number, limit: number, onProgress?: (p: ProgressReport) => void): Promise<DataViewResultMessage> {
    return this.request((engine) => engine.send({ type: 'dataView', runDir, view, k, limit }),
      (m): m is DataViewResultMessage => m.type === 'dataViewResult', onProgress);
  }

  /** Groups of near-duplicate images above `threshold` (cosine), largest first. */
  duplicates(runDir: string, threshold: number, onProgress?: (p: ProgressReport) => void): Promise<DuplicatesResultMessage> {
    return this.request((engine) => engine.send({ type: 'duplicates', runDir, threshold }),
      (m): m is DuplicatesResultMessage => m.type === 'duplicatesResult', onProgress);
  }

  /** The neighbours of the mean of several images' l2-normalised embeddings (re-normalised), the images left out. */
  async similarToMean(runDir: string, images: string[], k: number, onProgress?: (p: ProgressReport) => void): Promise<Neighbour[]> {
    const result = await this.request((engine) => engine.send({ type: 'similarToMean', runDir, images, k }),
      (m): m is SimilarResultMessage => m.type === 'similarResult', onProgress);
    return result.neighbours;
  }

  /** Pairs of views of a few images of a folder exactly as the trainer renders them (src/training/data/preview.ts). */
  preview(request: PreviewRequestFields, onProgress?: (p: ProgressReport) => void): Promise<PreviewResultMessage> {
    return this.request((engine) => engine.send({ type: 'preview', ...request }),
      (m): m is PreviewResultMessage => m.type === 'previewResult', onProgress);
  }

  private request<T extends EngineMessage>(send: (engine: EngineProcess) => void, isResult: (m: EngineMessage) => m is T,
    onProgress?: (p: ProgressReport) => void): Promise<T> {
    const run = () => new Promise<T>((resolve, reject) => {
      clearTimeout(this.idleTimer);
      const engine = this.ensureEngine();
      this.pending = {
        settle: (m) => {
          if (!isResult(m)) return false;
          resolve(m);
          return true;
        },
        fail: reject,
        onProgress,
      };
      try {
        send(engine);
      } catch (error) {
        reject(error as Error);
      }
    }).finally(() => {
      this.pending = undefined;
      this.idleTimer = setTimeout(() => this.closeEngine(), IDLE_CLOSE_MS);
    });
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private ensureEngine(): EngineProcess {
    if (this.engine && !this.engine.exited) return this.engine;
    const engine = this.launch('search');
    engine.onMessage((m) => this.onEngineMessage(m));
    engine.onExit(({ code, signal }) => {
      if (this.engine === engine) this.engine = undefined;
      this.pending?.fail(new Error(`The SimSiam search process exited (${signal ?? `exit code ${code}`}); see the SimSiam log.`));
    });
    this.engine = engine;
    return engine;
  }

  private onEngineMessage(m: EngineMessage): void {
    const pending = this.pending;
    if (m.type === 'warning') this.log.warn(`[search] ${m.message}`);
    if (!pending) return;
    if (m.type === 'progress') pending.onProgress?.({ task: m.task, done: m.done, total: m.total });
    else if (m.type === 'error') {
      this.log.error(`[search] ${m.message}`);
      if (m.detail) this.log.debug(m.detail);
      pending.fail(new Error(m.message));
    } else pending.settle(m);
  }

  private closeEngine(): void {
    this.engine?.dispose();
    this.engine = undefined;
  }

  dispose(): void {
    clearTimeout(this.idleTimer);
    this.closeEngine();
  }
}
