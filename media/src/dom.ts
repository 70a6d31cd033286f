// The one helper the panel's script builds its DOM with.

export function element<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Runs `callback` with the next frame, or soon when the panel is hidden: a webview behind another
 * editor gets no animation frames, yet it keeps taking in messages, and what it holds (and reports
 * to the extension) must follow them; the canvas is drawn again when it is shown. Returns a handle
 * for nothing but truthiness (callers coalesce on it).
 */
export function nextFrame(callback: () => void): number {
  if (document.visibilityState === 'hidden') return window.setTimeout(callback, 100);
  return requestAnimationFrame(callback);
}

/** What VS Code gives a webview's script to talk to the extension and keep state across reloads. */
export interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

let api: VsCodeApi | undefined;
/** The page's VS Code API: VS Code lets a page acquire it once, so it is kept here for every part. */
export function vsCodeApi(): VsCodeApi {
  return (api ??= acquireVsCodeApi());
}
