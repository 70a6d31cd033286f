// The retrieval gallery: a query image and its nearest neighbours as thumbnails with scores,
// labels and dataset-relative paths (which name the split folder, where the dataset has one). Clicking a thumbnail opens the image in an editor; "Similar to this" makes it the query.
import type { GalleryImage, GalleryMessage, QueryRequest, WebviewMessageBody } from '../../src/webview/protocol';
import { element } from './dom';

export interface GalleryActions {
  query(request: WebviewMessageBody<QueryRequest>): void;
  open(path: string): void;
  /** Called once every thumbnail has loaded or failed. */
  rendered(query: string, images: number, loaded: number, failed: number): void;
}

export class Gallery {
  private readonly status: HTMLElement;
  private readonly grid: HTMLElement;

  constructor(parent: HTMLElement, private readonly actions: GalleryActions) {
    const card = element('section', 'card gallery');
    card.id = 'gallery';
    const header = element('header');
    const random = element('button', undefined, 'Random image');
    random.id = 'query-random';
    random.addEventListener('click', () => actions.query({ type: 'query', source: 'random' }));
    const pick = element('button', 'secondary', 'Choose image…');
    pick.id = 'query-pick';
    pick.addEventListener('click', () => actions.query({ type: 'query', source: 'pick' }));
    const buttons = element('div', 'buttons');
    buttons.append(random, pick);
    header.append(element('h2', undefined, 'Similar images'), buttons);
    this.status = element('p', 'gallery-status', 'Pick a query: a random image of the dataset, or any image you choose.');
    this.grid = element('div', 'thumbs');
    card.append(header, this.status, this.grid);
    parent.append(card);
  }

  busy(text: string): void {
    this.status.textContent = text;
    this.status.classList.add('busy');
    this.status.classList.remove('error');
  }

  error(text: string): void {
    this.status.textContent = text;
    this.status.classList.remove('busy');
    this.status.classList.add('error');
  }

  show(message: GalleryMessage): void {
    this.status.classList.remove('busy', 'error');
    this.status.textContent = `${message.neighbours.length} nearest neighbours of ${message.query.path}` +
      (message.checkpointStep !== null ? ` (checkpoint of step ${message.checkpointStep})` : '');
    const figures = [this.figure(message.query, true), ...message.neighbours.map((n) => this.figure(n, false))];
    this.grid.replaceChildren(...figures.map((f) => f.node));
    this.grid.dataset.query = message.query.path;
    let loaded = 0;
    let failed = 0;
    const settle = (ok: boolean) => {
      if (ok) loaded += 1;
      else failed += 1;
      if (loaded + failed === figures.length) {
        this.grid.dataset.loaded = String(loaded);
        this.actions.rendered(message.query.path, figures.length, loaded, failed);
      }
    };
    for (const f of figures) f.settled.then(settle);
  }

  private figure(image: GalleryImage, isQuery: boolean): { node: HTMLElement; settled: Promise<boolean> } {
    const figure = element('figure', isQuery ? 'thumb query' : 'thumb');
    figure.title = `${image.path}\nClick to open`;
    figure.dataset.path = image.path;
    let settled: Promise<boolean>;
    if (image.src) {
      const img = element('img');
      img.alt = image.path;
      img.decoding = 'async';
      settled = new Promise((resolve) => {
        img.addEventListener('load', () => resolve(true), { once: true });
        img.addEventListener('error', () => resolve(false), { once: true });
      });
      img.src = image.src;
      figure.append(img);
    } else {
      figure.append(element('div', 'no-preview', 'no preview'));
      settled = Promise.resolve(false);
    }
    figure.addEventListener('click', () => this.actions.open(image.path));
    const caption = element('figcaption');
    caption.append(element('span', 'score', isQuery ? 'query' : (image.score ?? 0).toFixed(3)));
    if (image.label) caption.append(element('span', 'label', image.label));
    // The whole dataset-relative path: train/cat/0038.jpg and test/frog/0038.jpg share a file name.
    caption.append(element('span', 'path', image.path));
    figure.append(caption);
    if (!isQuery) {
      const again = element('button', 'secondary again', 'Similar to this');
      again.addEventListener('click', (event) => {
        event.stopPropagation();
        this.actions.query({ type: 'query', source: 'path', path: image.path });
      });
      figure.append(again);
    }
    return { node: figure, settled };
  }
}
