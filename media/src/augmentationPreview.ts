// The augmentation preview: a row per image of the folder, with pairs of views exactly as the
// trainer renders them for the current settings (the extension sends their pixels), each pair
// captioned with the epoch, batch and slot it is trained in. Views are drawn on canvases: the
// panel's content security policy admits images only from the extension's folders.
import type { AugmentationPreviewMessage } from '../../src/webview/protocol';
import { element } from './dom';

export interface AugmentationPreviewActions {
  /** Views from another epoch on. */
  request(epoch: number): void;
  rendered(images: number, views: number, settings: string): void;
}

/** base64 of RGB bytes → the RGBA pixels of an ImageData of side `size`; null when the length is wrong. */
export function rgbaOf(base64: string, size: number): Uint8ClampedArray<ArrayBuffer> | null {
  const binary = atob(base64);
  if (binary.length !== size * size * 3) return null;
  const rgba = new Uint8ClampedArray(size * size * 4);
  for (let p = 0, q = 0; p < binary.length; p += 3, q += 4) {
    rgba[q] = binary.charCodeAt(p);
    rgba[q + 1] = binary.charCodeAt(p + 1);
    rgba[q + 2] = binary.charCodeAt(p + 2);
    rgba[q + 3] = 255;
  }
  return rgba;
}

export class AugmentationPreviewView {
  private readonly status: HTMLElement;
  private readonly settings: HTMLElement;
  private readonly notes: HTMLElement;
  private readonly rows: HTMLElement;
  private epoch = 0;
  private pairsShown = 0;

  constructor(parent: HTMLElement, private readonly actions: AugmentationPreviewActions) {
    const card = element('section', 'card augmentation-preview');
    card.id = 'augmentation-preview';
    const header = element('header');
    const later = element('button', 'secondary', 'Later epochs');
    later.id = 'preview-later';
    later.title = "The same images' views in the epochs after these";
    later.addEventListener('click', () => actions.request(this.epoch + Math.max(1, this.pairsShown)));
    const first = element('button', 'secondary', 'First epochs');
    first.id = 'preview-first';
    first.addEventListener('click', () => actions.request(0));
    const buttons = element('div', 'buttons');
    buttons.append(first, later);
    header.append(element('h2', undefined, 'Augmentation preview'), buttons);
    this.status = element('p', 'gallery-status', 'Rendering the views training will see…');
    this.settings = element('p', 'preview-settings');
    this.notes = element('ul', 'preview-notes');
    this.rows = element('div', 'preview-rows');
    card.append(header, this.status, this.settings, this.notes, this.rows);
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

  show(message: AugmentationPreviewMessage): void {
    this.status.classList.remove('busy', 'error');
    const epochs = message.images.flatMap((image) => image.pairs.map((pair) => pair.epoch));
    this.epoch = epochs.length ? Math.min(...epochs) : 0;
    this.pairsShown = Math.max(0, ...message.images.map((image) => image.pairs.length));
    this.status.textContent = `${message.images.length} images, each with its pair of ${message.size} px views in ${this.pairsShown} epochs` +
      (epochs.length ? ` from epoch ${this.epoch}` : '');
    this.settings.textContent = message.settings;
    this.notes.replaceChildren(...message.notes.map((note) => element('li', undefined, note)));
    let views = 0;
    this.rows.replaceChildren(...message.images.map((image) => {
      const row = element('div', 'preview-row');
      row.dataset.path = image.path;
      const caption = element('div', 'preview-image');
      caption.append(element('span', 'path', image.path));
      if (image.label) caption.append(element('span', 'label', image.label));
      row.append(caption);
      for (const pair of image.pairs) {
        const figure = element('figure', 'preview-pair');
        for (const view of [pair.view1, pair.view2]) {
          const canvas = this.canvas(view, message.size);
          if (canvas) {
            figure.append(canvas);
            views += 1;
          }
        }
        figure.append(element('figcaption', undefined, `epoch ${pair.epoch} · batch ${pair.batch} · slot ${pair.slot}`));
        row.append(figure);
      }
      return row;
    }));
    this.rows.dataset.views = String(views);
    this.actions.rendered(message.images.length, views, message.settings);
  }

  private canvas(view: string, size: number): HTMLCanvasElement | null {
    const rgba = rgbaOf(view, size);
    if (!rgba) return null;
    const canvas = element('canvas', 'preview-view');
    canvas.width = size;
    canvas.height = size;
    canvas.getContext('2d')?.putImageData(new ImageData(rgba, size, size), 0, 0);
    return canvas;
  }
}
