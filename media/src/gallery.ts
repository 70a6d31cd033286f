// The retrieval gallery: the query image(s) and the nearest neighbours as thumbnails, each with
// its rank, its cosine score and a bar placing that score between the lowest and highest shown
// (early in training every score crowds above 0.9, so the raw numbers barely differ), its class
// folder (marked when it is the query's), its split and its dataset-relative path. A line says how
// many neighbours share the query's class. Neighbours can be kept to one class or one split, and
// several selected thumbnails make one query (the mean of their embeddings). Clicking a thumbnail
// opens the image in an editor; "Similar to this" makes it the query.
import {
  NO_FILTER, type GalleryFilter, type GalleryImage, type GalleryMessage, type QueryRequest, type WebviewMessageBody,
} from '../../src/webview/protocol';
import { element } from './dom';

export interface GalleryActions {
  query(request: WebviewMessageBody<QueryRequest>): void;
  open(path: string): void;
  /** Called once every thumbnail has loaded or failed, with the class agreement shown. */
  rendered(query: string, images: number, loaded: number, failed: number, agreement: Agreement | null): void;
}

export interface Agreement {
  /** The query's class: that of every query image. */
  label: string;
  same: number;
  of: number;
}

/**
 * How many neighbours share the query's class; null when the dataset is unlabelled, a query image
 * has no class, or the query images are of different classes.
 */
export function classAgreement(message: Pick<GalleryMessage, 'query' | 'queries' | 'neighbours'>): Agreement | null {
  const queries = message.queries?.length ? message.queries : [message.query];
  const label = queries[0].label;
  if (label === null || queries.some((q) => q.label !== label)) return null;
  return { label, same: message.neighbours.filter((n) => n.label === label).length, of: message.neighbours.length };
}

/**
 * Each score's place between the lowest (0) and highest (1) of `scores`: the per-query scale the
 * bars show. Equal scores all sit at 1.
 */
export function relativeScale(scores: number[]): number[] {
  const low = Math.min(...scores);
  const high = Math.max(...scores);
  return scores.map((score) => (high > low ? (score - low) / (high - low) : 1));
}

export const agreementText = (a: Agreement) => `${a.same} of ${a.of} share the query's class (${a.label})`;

/** The words above the thumbnails (the class agreement has its own line). */
export function galleryStatus(message: GalleryMessage): string {
  const queries = message.queries?.length ? message.queries : [message.query];
  const of = queries.length === 1 ? message.query.path : `the mean of ${queries.length} selected images`;
  const filter = message.filter ?? NO_FILTER;
  const kept = [filter.label !== null ? `class ${filter.label}` : '', filter.split !== null ? `the ${filter.split} split` : ''].filter(Boolean);
  const parts = [`${message.neighbours.length} nearest neighbours of ${of}` +
    (kept.length ? ` in ${kept.join(' and ')}${message.searched !== undefined ? ` (among the ${message.searched} nearest)` : ''}` : '') +
    (message.checkpointStep !== null ? ` (checkpoint of step ${message.checkpointStep})` : '')];
  if (queries.length > 1 && !classAgreement(message) && queries.some((q) => q.label !== null)) parts.push('the selected images are of different classes');
  return parts.join(' · ');
}

export class Gallery {
  private readonly status: HTMLElement;
  private readonly agreementLine: HTMLElement;
  private readonly grid: HTMLElement;
  private readonly classFilter: HTMLSelectElement;
  private readonly splitFilter: HTMLSelectElement;
  private readonly filters: HTMLElement;
  private readonly searchSelected: HTMLButtonElement;
  private readonly selected = new Set<string>();
  private shown: GalleryMessage | null = null;

  constructor(parent: HTMLElement, private readonly actions: GalleryActions) {
    const card = element('section', 'card gallery');
    card.id = 'gallery';
    const header = element('header');
    const random = element('button', undefined, 'Random image');
    random.id = 'query-random';
    random.addEventListener('click', () => actions.query({ type: 'query', source: 'random', filter: this.filter() }));
    const pick = element('button', 'secondary', 'Choose image…');
    pick.id = 'query-pick';
    pick.addEventListener('click', () => actions.query({ type: 'query', source: 'pick', filter: this.filter() }));
    this.searchSelected = element('button', 'secondary', 'Similar to selected');
    this.searchSelected.id = 'query-selected';
    this.searchSelected.disabled = true;
    this.searchSelected.title = 'Search with the mean of the selected images\' embeddings (tick images below)';
    this.searchSelected.addEventListener('click', () => {
      if (this.selected.size) actions.query({ type: 'query', source: 'paths', paths: [...this.selected], filter: this.filter() });
    });
    const buttons = element('div', 'buttons');
    buttons.append(random, pick, this.searchSelected);
    header.append(element('h2', undefined, 'Similar images'), buttons);

    this.classFilter = element('select');
    this.classFilter.id = 'gallery-class';
    this.splitFilter = element('select');
    this.splitFilter.id = 'gallery-split';
    const classLabel = element('label', undefined, 'Class ');
    classLabel.append(this.classFilter);
    const splitLabel = element('label', undefined, 'Split ');
    splitLabel.append(this.splitFilter);
    this.filters = element('div', 'gallery-filters');
    this.filters.append(classLabel, splitLabel);
    this.filters.hidden = true;
    for (const select of [this.classFilter, this.splitFilter]) select.addEventListener('change', () => this.searchAgain());

    this.status = element('p', 'gallery-status', 'Pick a query: a random image of the dataset, or any image you choose.');
    this.agreementLine = element('p', 'gallery-agreement');
    this.agreementLine.hidden = true;
    this.grid = element('div', 'thumbs');
    card.append(header, this.filters, this.status, this.agreementLine, this.grid);
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
    this.shown = message;
    this.selected.clear();
    this.updateSelection();
    this.showFilters(message);
    const agreement = classAgreement(message);
    this.status.classList.remove('busy', 'error');
    this.status.textContent = galleryStatus(message);
    this.agreementLine.hidden = agreement === null;
    this.agreementLine.textContent = agreement ? agreementText(agreement) : '';
    this.grid.dataset.agreement = agreement ? `${agreement.same}/${agreement.of}` : '';
    const queries = message.queries?.length ? message.queries : [message.query];
    const scale = relativeScale(message.neighbours.map((n) => n.score ?? 0));
    const figures = [
      ...queries.map((q) => this.figure(q, { query: true })),
      ...message.neighbours.map((n, i) => this.figure(n, { rank: i + 1, relative: scale[i], sameClass: agreement ? n.label === agreement.label : null })),
    ];
    this.grid.replaceChildren(...figures.map((f) => f.node));
    this.grid.dataset.query = message.query.path;
    let loaded = 0;
    let failed = 0;
    const settle = (ok: boolean) => {
      if (ok) loaded += 1;
      else failed += 1;
      if (loaded + failed === figures.length) {
        this.grid.dataset.loaded = String(loaded);
        this.actions.rendered(message.query.path, figures.length, loaded, failed, agreement);
      }
    };
    for (const f of figures) f.settled.then(settle);
  }

  /** The filter as the selects choose it. */
  private filter(): GalleryFilter {
    const split = this.splitFilter.value;
    return { label: this.classFilter.value || null, split: split === 'train' || split === 'test' ? split : null };
  }

  /** The shown query again, under the filter now chosen. */
  private searchAgain(): void {
    if (!this.shown) return;
    const queries = this.shown.queries?.length ? this.shown.queries : [this.shown.query];
    const filter = this.filter();
    if (queries.length === 1) this.actions.query({ type: 'query', source: 'path', path: queries[0].path, filter });
    else this.actions.query({ type: 'query', source: 'paths', paths: queries.map((q) => q.path), filter });
  }

  /** Filter choices from the dataset: classes only when labelled, splits only when there are two. */
  private showFilters(message: GalleryMessage): void {
    const filter = message.filter ?? NO_FILTER;
    const options = (select: HTMLSelectElement, all: string, values: readonly string[], chosen: string | null) => {
      const none = element('option', undefined, all);
      none.value = '';
      select.replaceChildren(none, ...values.map((value) => {
        const option = element('option', undefined, value);
        option.value = value;
        return option;
      }));
      select.value = chosen !== null && values.includes(chosen) ? chosen : '';
    };
    const classes = message.classes ?? [];
    const splits = message.splits ?? [];
    options(this.classFilter, 'all classes', classes, filter.label);
    options(this.splitFilter, 'all splits', splits, filter.split);
    this.classFilter.parentElement!.hidden = classes.length === 0;
    this.splitFilter.parentElement!.hidden = splits.length < 2 && filter.split === null;
    this.filters.hidden = this.classFilter.parentElement!.hidden && this.splitFilter.parentElement!.hidden;
  }

  private updateSelection(): void {
    this.searchSelected.disabled = this.selected.size === 0;
    this.searchSelected.textContent = this.selected.size ? `Similar to selected (${this.selected.size})` : 'Similar to selected';
  }

  private figure(image: GalleryImage, shown: { query?: boolean; rank?: number; relative?: number; sameClass?: boolean | null }):
    { node: HTMLElement; settled: Promise<boolean> } {
    const isQuery = shown.query === true;
    const figure = element('figure', isQuery ? 'thumb query' : 'thumb');
    if (shown.sameClass === true) figure.classList.add('same-class');
    if (shown.sameClass === false) figure.classList.add('other-class');
    figure.title = `${image.path}\nClick to open`;
    figure.dataset.path = image.path;
    if (shown.rank !== undefined) figure.dataset.rank = String(shown.rank);
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
    const head = element('span', 'score');
    if (isQuery) head.textContent = 'query';
    else {
      head.append(element('span', 'rank', `#${shown.rank}`), ` ${(image.score ?? 0).toFixed(3)}`);
      const bar = element('span', 'relative');
      bar.title = "This score's place between the lowest and highest shown for this query";
      const fill = element('span', 'relative-fill');
      // Through the CSSOM, which the panel's content security policy allows (style attributes it does not).
      fill.style.width = `${Math.round((shown.relative ?? 1) * 100)}%`;
      bar.append(fill);
      caption.append(bar);
    }
    caption.prepend(head);
    if (image.label) {
      const label = element('span', 'label', image.label);
      if (shown.sameClass === true) label.textContent = `✓ ${image.label}`;
      caption.append(label);
    }
    // The whole dataset-relative path: train/cat/0038.jpg and test/frog/0038.jpg share a file name.
    caption.append(element('span', 'path', image.path));
    if (image.split) caption.append(element('span', 'split', `${image.split} split`));
    figure.append(caption);
    const tick = element('label', 'select');
    tick.title = 'Select for a query of several images';
    const box = element('input');
    box.type = 'checkbox';
    box.checked = this.selected.has(image.path);
    box.addEventListener('change', () => {
      if (box.checked) this.selected.add(image.path);
      else this.selected.delete(image.path);
      this.updateSelection();
    });
    tick.addEventListener('click', (event) => event.stopPropagation());
    tick.append(box, ' select');
    figure.append(tick);
    if (!isQuery) {
      const again = element('button', 'secondary again', 'Similar to this');
      again.addEventListener('click', (event) => {
        event.stopPropagation();
        this.actions.query({ type: 'query', source: 'path', path: image.path, filter: this.filter() });
      });
      figure.append(again);
    }
    return { node: figure, settled };
  }
}
