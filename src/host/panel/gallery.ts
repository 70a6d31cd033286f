// The panel's retrieval gallery, host side: turns a query (a random dataset image, one the user
// picks, or one the panel shows) into the image and its nearest neighbours under the run's latest
// checkpoint, and opens the images the user clicks. Searches are queued, one at a time; the query
// is remembered per run across window reloads, and searched again when a newer checkpoint arrives.
// Every path the webview names goes through ./pathGuard.ts.
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { IMAGE_EXTENSION_NAMES, labelOfRelativePath, listImageFiles } from '../../training/data/dataset';
import { readCheckpointPointer } from '../../training/run/runStore';
import type { DatasetSummary, Neighbour } from '../../training/protocol';
import type { RetrievalClient } from '../retrieval';
import { topK } from '../settings';
import { datasetRelativePath, isPathInside, resolveDatasetImage, UnsafePathError } from './pathGuard';
import { capitalised, phaseText } from '../../webview/runText';
import type { GalleryImage, GalleryMessage, QueryRequest, ToWebviewMessage, WebviewMessageBody } from '../../webview/protocol';

export interface GalleryResult { query: string; neighbours: Neighbour[] }

interface GalleryContext {
  runDir: string;
  dataset: DatasetSummary;
  webview: vscode.Webview;
  retrieval: RetrievalClient;
  /** Workspace state: remembers each run's gallery query across window reloads. */
  state: vscode.Memento;
  post(body: WebviewMessageBody<ToWebviewMessage>): void;
  warn(text: string): void;
}

const RANDOM_QUERY_MAX_FILES = 100_000;
const RANDOM_QUERY_LIST_MS = 60_000;

/** Browsers show every format the engine reads but TIFF, whose thumbnails are left blank. */
const browserShows = (file: string) => !/\.tiff?$/i.test(file);

export class PanelGallery {
  /** Dataset-relative path of the image the gallery shows or is searching for. */
  private queryPath: string | undefined;
  /** Re-sent when the webview reloads (hidden and shown again, or opened while a search ran). */
  private shown: WebviewMessageBody<GalleryMessage> | undefined;
  private shownCheckpointStep: number | null = null;
  private work: Promise<unknown> = Promise.resolve();
  private requests = 0;
  private imageList: { at: number; files: Promise<string[]> } | undefined;

  constructor(private readonly context: GalleryContext) {
    this.queryPath = context.state.get<string>(galleryStateKey(context.runDir));
  }

  /** The query the gallery will show again after the webview (re)loads; null when none. */
  get query(): string | null {
    return this.queryPath ?? null;
  }

  /** The webview (re)loaded: show the last result again, or search again for the remembered query. */
  restore(): void {
    if (this.shown) this.context.post(this.shown);
    else if (this.queryPath && this.requests === 0) void this.showSimilar(this.queryPath).catch(() => undefined);
  }

  /** Search again if what the gallery shows came from an older checkpoint than `step`. */
  refreshIfStale(step: number): void {
    if (this.queryPath && this.shownCheckpointStep !== step) void this.showSimilar(this.queryPath).catch(() => undefined);
  }

  /** Search again if the run's latest checkpoint is newer than what the gallery shows. */
  refreshFromDisk(): void {
    let pointer;
    try {
      pointer = readCheckpointPointer(this.context.runDir);
    } catch (error) {
      this.context.warn((error as Error).message);
      return;
    }
    if (pointer) this.refreshIfStale(pointer.step);
  }

  async onQuery(request: QueryRequest): Promise<void> {
    const { post } = this.context;
    if (!vscode.workspace.isTrusted) {
      post({ type: 'galleryError', message: 'Indexing is disabled in Restricted Mode: trust the workspace to search for similar images.' });
      return;
    }
    let image: string | undefined;
    if (request.source === 'path') image = request.path;
    else image = request.source === 'random' ? await this.randomImage() : await this.pickImage();
    if (!image) {
      if (request.source === 'random') post({ type: 'galleryError', message: 'The dataset has no images left to pick from.' });
      return;
    }
    try {
      await this.showSimilar(image);
    } catch (error) {
      if (error instanceof UnsafePathError) {
        this.refusePath(error, image);
        post({ type: 'galleryError', message: `${image} is not an image of this run's dataset.` });
      }
    }
  }

  /** Opens a dataset image (a thumbnail the user clicked) in an editor beside the panel. */
  open(requested: string): void {
    try {
      const file = resolveDatasetImage(this.context.dataset.root, requested);
      void vscode.commands.executeCommand('vscode.open', vscode.Uri.file(file), { viewColumn: vscode.ViewColumn.Beside, preview: true });
    } catch (error) {
      this.refusePath(error, requested);
    }
  }

  /** Logs why a path the webview named was refused; rethrows anything else. */
  private refusePath(error: unknown, requested: string): void {
    if (!(error instanceof UnsafePathError)) throw error;
    this.context.warn(`refused path ${JSON.stringify(requested)}: ${error.message}`);
  }

  /**
   * Indexes the dataset with the run's latest checkpoint if needed, then shows `image` and its
   * nearest neighbours. `image` is dataset-relative or absolute and must lie inside the dataset.
   * Queued: a newer request runs after the one in progress.
   */
  showSimilar(image: string, onProgress?: (text: string) => void): Promise<GalleryResult> {
    this.requests += 1;
    const work = this.work.then(() => this.search(image, onProgress)).finally(() => (this.requests -= 1));
    this.work = work.catch(() => undefined);
    return work;
  }

  private async search(image: string, onProgress?: (text: string) => void): Promise<GalleryResult> {
    const { runDir, dataset, post } = this.context;
    const file = resolveDatasetImage(dataset.root, image);
    const relative = this.relativeToDataset(file);
    this.queryPath = relative;
    const busy = (text: string) => {
      post({ type: 'galleryBusy', text });
      onProgress?.(text);
    };
    try {
      const step = readCheckpointPointer(runDir)?.step;
      if (step === undefined) throw new Error('This run has no checkpoint yet: the gallery fills in after its first epoch.');
      busy(`Searching with the checkpoint of step ${step}…`);
      const k = topK();
      const found = await this.context.retrieval.similar(runDir, file, k + 1,
        (p) => busy(`${capitalised(phaseText(p))}…`));
      const neighbours = found.filter((n) => !samePath(dataset.root, n.path, file)).slice(0, k);
      this.shownCheckpointStep = step;
      this.shown = {
        type: 'gallery',
        query: this.galleryImage(file, null, labelOfRelativePath(relative, dataset.classes)),
        neighbours: neighbours.map((n) => this.galleryImage(absoluteIn(dataset.root, n.path), n.score, n.label)),
        checkpointStep: step,
      };
      post(this.shown);
      void this.context.state.update(galleryStateKey(runDir), relative);
      return { query: file, neighbours };
    } catch (error) {
      post({ type: 'galleryError', message: (error as Error).message });
      throw error;
    }
  }

  private async pickImage(): Promise<string | undefined> {
    const root = this.context.dataset.root;
    const picked = await vscode.window.showOpenDialog({
      defaultUri: vscode.Uri.file(root), canSelectMany: false, openLabel: 'Find Similar',
      title: `Query image from ${path.basename(root)}`,
      filters: { Images: [...IMAGE_EXTENSION_NAMES] },
    });
    return picked?.[0]?.fsPath;
  }

  private async randomImage(): Promise<string | undefined> {
    const root = this.context.dataset.root;
    if (!this.imageList || Date.now() - this.imageList.at > RANDOM_QUERY_LIST_MS) {
      this.imageList = { at: Date.now(), files: listImageFiles(root, RANDOM_QUERY_MAX_FILES) };
    }
    const files = await this.imageList.files;
    return files.length ? datasetRelativePath(root, files[Math.floor(Math.random() * files.length)]) : undefined;
  }

  private galleryImage(file: string, score: number | null, label: string | null): GalleryImage {
    return {
      path: this.relativeToDataset(file),
      src: browserShows(file) ? this.context.webview.asWebviewUri(vscode.Uri.file(file)).toString() : '',
      label, score,
    };
  }

  /** Dataset-relative form of an image path, whether it came through the root's real path or not. */
  private relativeToDataset(file: string): string {
    const root = this.context.dataset.root;
    if (isPathInside(root, file)) return datasetRelativePath(root, file);
    return datasetRelativePath(fs.realpathSync(root), file);
  }
}

function galleryStateKey(runDir: string): string {
  return `simsiam.galleryQuery:${runDir}`;
}

function absoluteIn(root: string, file: string): string {
  return path.isAbsolute(file) ? file : path.join(root, file);
}

function samePath(root: string, candidate: string, file: string): boolean {
  const absolute = absoluteIn(root, candidate);
  if (path.resolve(absolute) === path.resolve(file)) return true;
  try {
    return fs.realpathSync(absolute) === file;
  } catch {
    return false;
  }
}
