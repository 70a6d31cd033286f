// The panel's retrieval gallery, host side: turns a query (a random dataset image, one the user
// picks, one the panel shows, or several it shows, searched by the mean of their embeddings) into
// the query and its nearest neighbours under the run's latest checkpoint, each with its class and
// split, kept to a class or a split when the panel asks; and opens the images the user clicks.
// Searches are queued, one at a time; the query is remembered per run across window reloads, and
// searched again when a newer checkpoint arrives. Every path the webview names goes through
// ./pathGuard.ts.
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { IMAGE_EXTENSION_NAMES, labelOfRelativePath, listImageFiles, scanDataset } from '../../training/data/dataset';
import { readCheckpointPointer } from '../../training/run/runStore';
import type { DatasetSummary, Neighbour } from '../../training/protocol';
import type { RetrievalClient } from '../retrieval';
import { topK } from '../settings';
import { datasetRelativePath, isPathInside, resolveDatasetImage, UnsafePathError } from './pathGuard';
import { capitalised, phaseText } from '../../webview/runText';
import {
  isFiltered, matchesFilter, NO_FILTER,
  type GalleryFilter, type GalleryImage, type GalleryMessage, type QueryRequest, type Split, type ToWebviewMessage, type WebviewMessageBody,
} from '../../webview/protocol';

export interface GalleryResult { query: string; neighbours: Neighbour[] }

/**
 * The searches the gallery needs. similarToMean is the engine's search by the mean of several
 * images' l2-normalised embeddings (re-normalised), the images left out; without it a query of
 * several images is refused with the reason.
 */
export interface GallerySearch {
  similar: RetrievalClient['similar'];
  similarToMean?(runDir: string, images: string[], k: number, onProgress?: Parameters<RetrievalClient['similar']>[3]): Promise<Neighbour[]>;
}

interface GalleryContext {
  runDir: string;
  dataset: DatasetSummary;
  webview: vscode.Webview;
  retrieval: GallerySearch;
  /** The run's split of a folder without train/ test/ folders follows these (TrainConfig's). */
  split: { testFraction: number; seed: number };
  /** Workspace state: remembers each run's gallery query across window reloads. */
  state: vscode.Memento;
  post(body: WebviewMessageBody<ToWebviewMessage>): void;
  warn(text: string): void;
}

const RANDOM_QUERY_MAX_FILES = 100_000;
const RANDOM_QUERY_LIST_MS = 60_000;
/** A filtered query looks through this many times k nearest images for k that pass, at most FILTER_MAX_SEARCHED. */
const FILTER_OVERSAMPLE = 20;
const FILTER_MAX_SEARCHED = 2000;

/** Browsers show every format the engine reads but TIFF, whose thumbnails are left blank. */
const browserShows = (file: string) => !/\.tiff?$/i.test(file);

export class PanelGallery {
  /** Dataset-relative paths of the query image(s) the gallery shows or is searching for. */
  private queryPaths: string[] | undefined;
  private filter: GalleryFilter = NO_FILTER;
  /** Re-sent when the webview reloads (hidden and shown again, or opened while a search ran). */
  private shown: WebviewMessageBody<GalleryMessage> | undefined;
  private shownCheckpointStep: number | null = null;
  private work: Promise<unknown> = Promise.resolve();
  private requests = 0;
  private imageList: { at: number; files: Promise<string[]> } | undefined;
  private splitList: { at: number; splits: Promise<Map<string, Split>> } | undefined;

  constructor(private readonly context: GalleryContext) {
    // One path (older windows stored only that) or several.
    const stored = context.state.get<string | string[]>(galleryStateKey(context.runDir));
    this.queryPaths = typeof stored === 'string' ? [stored] : Array.isArray(stored) && stored.length ? stored : undefined;
  }

  /** The (first) query image the gallery will show again after the webview (re)loads; null when none. */
  get query(): string | null {
    return this.queryPaths?.[0] ?? null;
  }

  /** The webview (re)loaded: show the last result again, or search again for the remembered query. */
  restore(): void {
    if (this.shown) this.context.post(this.shown);
    else if (this.queryPaths && this.requests === 0) this.searchAgain();
  }

  /** Search again if what the gallery shows came from an older checkpoint than `step`. */
  refreshIfStale(step: number): void {
    if (this.queryPaths && this.shownCheckpointStep !== step) this.searchAgain();
  }

  private searchAgain(): void {
    if (this.queryPaths) void this.showSimilarTo(this.queryPaths, this.filter).catch(() => undefined);
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
    let images: string[];
    if (request.source === 'path') images = [request.path];
    else if (request.source === 'paths') images = request.paths;
    else {
      const image = request.source === 'random' ? await this.randomImage() : await this.pickImage();
      if (!image) {
        if (request.source === 'random') post({ type: 'galleryError', message: 'The dataset has no images left to pick from.' });
        return;
      }
      images = [image];
    }
    try {
      await this.showSimilarTo(images, request.filter ?? NO_FILTER);
    } catch (error) {
      if (error instanceof UnsafePathError) {
        this.refusePath(error, images.join(', '));
        post({ type: 'galleryError', message: `${images.length === 1 ? images[0] : 'One of the selected images'} is not an image of this run's dataset.` });
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
    return this.showSimilarTo([image], NO_FILTER, onProgress);
  }

  /**
   * Like showSimilar for the mean of several images' embeddings (one image: that image), keeping
   * only neighbours that pass `filter`. Resolves with the first query image and the neighbours shown.
   */
  showSimilarTo(images: string[], filter: GalleryFilter, onProgress?: (text: string) => void): Promise<GalleryResult> {
    this.requests += 1;
    const work = this.work.then(() => this.search(images, filter, onProgress)).finally(() => (this.requests -= 1));
    this.work = work.catch(() => undefined);
    return work;
  }

  private async search(images: string[], filter: GalleryFilter, onProgress?: (text: string) => void): Promise<GalleryResult> {
    const { runDir, dataset, post, retrieval } = this.context;
    const files = [...new Set(images.map((image) => resolveDatasetImage(dataset.root, image)))];
    const relatives = files.map((file) => this.relativeToDataset(file));
    this.queryPaths = relatives;
    this.filter = filter;
    const busy = (text: string) => {
      post({ type: 'galleryBusy', text });
      onProgress?.(text);
    };
    try {
      const step = readCheckpointPointer(runDir)?.step;
      if (step === undefined) throw new Error('This run has no checkpoint yet: the gallery fills in after its first epoch.');
      if (files.length > 1 && !retrieval.similarToMean) {
        throw new Error('This version of the SimSiam engine searches for one image at a time: choose one of the selected images.');
      }
      busy(`Searching with the checkpoint of step ${step}…`);
      const k = topK();
      const searched = isFiltered(filter) ? Math.min(FILTER_MAX_SEARCHED, k * FILTER_OVERSAMPLE) : k + files.length;
      const onPhase = (p: Parameters<typeof phaseText>[0]) => busy(`${capitalised(phaseText(p))}…`);
      const [found, splits] = await Promise.all([
        files.length === 1 ? retrieval.similar(runDir, files[0], searched, onPhase) : retrieval.similarToMean!(runDir, files, searched, onPhase),
        this.splits(),
      ]);
      const kept = found.filter((n) => !files.some((file) => samePath(dataset.root, n.path, file)))
        .map((n) => ({ found: n, image: this.galleryImage(absoluteIn(dataset.root, n.path), n.score, n.label, splits) }))
        .filter(({ image }) => matchesFilter(image, filter)).slice(0, k);
      const neighbours = kept.map(({ image }) => image);
      const queries = files.map((file, i) => this.galleryImage(file, null, labelOfRelativePath(relatives[i], dataset.classes), splits));
      this.shownCheckpointStep = step;
      this.shown = {
        type: 'gallery', query: queries[0], neighbours, checkpointStep: step,
        ...(queries.length > 1 ? { queries } : {}),
        filter, searched: found.length, classes: dataset.classes, splits: [...new Set(splits.values())].sort(),
      };
      post(this.shown);
      void this.context.state.update(galleryStateKey(runDir), relatives.length === 1 ? relatives[0] : relatives);
      return { query: files[0], neighbours: kept.map(({ found: n }) => n) };
    } catch (error) {
      post({ type: 'galleryError', message: (error as Error).message });
      throw error;
    }
  }

  /**
   * Each dataset image's split as the run's scan assigns it (train/ and test/ folders, else the
   * held-out share of each class), listed again at most once a minute; empty when the folder cannot be scanned.
   */
  private splits(): Promise<Map<string, Split>> {
    if (!this.splitList || Date.now() - this.splitList.at > RANDOM_QUERY_LIST_MS) {
      const { dataset, runDir, split } = this.context;
      const splits = scanDataset(dataset.root, { excludeDirs: [path.dirname(runDir)], ...split })
        .then((scan) => new Map([...scan.train, ...scan.test].map((record) => [record.relPath, record.split] as [string, Split])))
        .catch((error: Error) => {
          this.context.warn(`cannot tell the splits of ${dataset.root}: ${error.message}`);
          return new Map<string, Split>();
        });
      this.splitList = { at: Date.now(), splits };
    }
    return this.splitList.splits;
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

  private galleryImage(file: string, score: number | null, label: string | null, splits: Map<string, Split>): GalleryImage {
    const relative = this.relativeToDataset(file);
    return {
      path: relative,
      src: browserShows(file) ? this.context.webview.asWebviewUri(vscode.Uri.file(file)).toString() : '',
      label, score, split: splits.get(relative) ?? null,
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
