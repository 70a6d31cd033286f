// The embedding map panel's script (bundled to media/dist/embeddingMap.js by scripts/build.mjs).
// Two tabs: the map of a run's images (./scatter.ts; coloured by class folder or split; hover shows
// the thumbnail and path; a click opens the experiment panel's gallery for that image; a box
// selection lists the selected images) and the data views (near-duplicates with a threshold
// slider, possible label issues, outliers, most redundant), each a list of thumbnails that open
// the file or reveal it in the Explorer. It draws what the extension sends and asks through
// src/webview/embeddingMapProtocol.ts; anything that fails validation is dropped and logged.
import {
  COLOR_BY, imageSrc, mapMessage, MapProtocolError, parseToMapWebview, VIEW_TITLES, VIEWS,
  type ColorBy, type FromMapWebviewMessage, type MapMessage, type MapPanelState, type MapTab, type Method, type ToMapWebviewMessage,
  type ViewItem, type ViewMessage, type ViewName,
} from '../../../src/webview/embeddingMapProtocol';
import type { MessageBody } from '../../../src/training/versioned';
import { element, vsCodeApi } from '../dom';
import { PALETTE, Scatter } from './scatter';

const vscode = vsCodeApi();
const app = document.getElementById('app')!;
// Counted where tests can read it, as the experiment panel does: the page must run under its policy without violations.
document.addEventListener('securitypolicyviolation', () => {
  app.dataset.cspViolations = String(Number(app.dataset.cspViolations ?? 0) + 1);
});
/** Thumbnails listed for a selection at most: the count says how many there are. */
const SELECTION_SHOWN = 200;
const DEFAULT_K = 10;
const DEFAULT_THRESHOLD = 0.95;

function post(body: MessageBody<FromMapWebviewMessage>): void {
  vscode.postMessage(mapMessage(body));
}

const initial = JSON.parse(app.dataset.state ?? '{}') as MapPanelState;
let state: MapPanelState = { tab: 'map', method: 'pca', colorBy: 'class', view: 'duplicates', threshold: DEFAULT_THRESHOLD,
  ...(vscode.getState() as Partial<MapPanelState> | undefined), ...initial };
function saveState(patch: Partial<MapPanelState>): void {
  state = { ...state, ...patch };
  vscode.setState(state);
}
saveState({});

let imageBase = '';
let map: MapMessage | null = null;
let view: ViewMessage | null = null;
let frameTimes: number[] = [];
/** What was asked and not answered yet, so that showing a tab again does not ask twice. */
let pendingMap: Method | null = null;
let pendingView: ViewName | null = null;

// ---- layout ------------------------------------------------------------------------------------

const title = element('h1', undefined, 'Embedding map');
const tabs = element('nav', 'tabs');
const tabButtons = new Map<MapTab, HTMLButtonElement>();
for (const [tab, label] of [['map', 'Map'], ['views', 'Data views']] as const) {
  const button = element('button', 'tab', label);
  button.id = `tab-${tab}`;
  button.addEventListener('click', () => showTab(tab));
  tabButtons.set(tab, button);
  tabs.append(button);
}

// Map tab.
const mapSection = element('section', 'map-tab');
const methodSelect = element('select');
methodSelect.id = 'map-method';
for (const [value, label] of [['pca', 'PCA'], ['umap', 'UMAP']]) methodSelect.append(new Option(label, value));
const colorSelect = element('select');
colorSelect.id = 'map-color';
for (const value of COLOR_BY) colorSelect.append(new Option(value === 'class' ? 'class folder' : 'split', value));
const boxButton = element('button', 'tool', 'Box select');
boxButton.id = 'map-box';
boxButton.title = 'Drag a rectangle to select images (or hold Shift while dragging)';
const fitButton = element('button', 'tool', 'Fit');
const mapControls = element('div', 'controls');
const methodLabel = element('label');
methodLabel.append('Layout ', methodSelect);
const colorLabel = element('label');
colorLabel.append('Colour by ', colorSelect);
mapControls.append(methodLabel, colorLabel, boxButton, fitButton);
const mapStatus = element('p', 'status');
mapStatus.id = 'map-status';
const legend = element('div', 'legend');
const canvas = element('canvas');
canvas.id = 'map-canvas';
const tooltip = element('div', 'tooltip');
tooltip.hidden = true;
const tooltipImage = element('img');
const tooltipText = element('div', 'tooltip-path');
tooltip.append(tooltipImage, tooltipText);
const selectionHeader = element('h2', undefined, 'Selection');
const selectionList = element('div', 'thumbs');
selectionList.id = 'selection';
selectionList.dataset.count = '0';
mapSection.append(mapControls, mapStatus, legend, canvas, tooltip, selectionHeader, selectionList);

// Data views tab.
const viewsSection = element('section', 'views-tab');
const viewSelect = element('select');
viewSelect.id = 'view-name';
for (const name of VIEWS) viewSelect.append(new Option(VIEW_TITLES[name], name));
const kInput = element('input');
kInput.id = 'view-k';
kInput.type = 'number';
kInput.min = '1';
kInput.max = '100';
kInput.value = String(DEFAULT_K);
const thresholdInput = element('input');
thresholdInput.id = 'view-threshold';
thresholdInput.type = 'range';
thresholdInput.min = '0.5';
thresholdInput.max = '1';
thresholdInput.step = '0.005';
const thresholdValue = element('span', 'value');
const thresholdLabel = element('label');
thresholdLabel.append('Threshold ', thresholdInput, thresholdValue);
const kLabel = element('label');
kLabel.append('Neighbours k ', kInput);
const viewLabel = element('label');
viewLabel.append('View ', viewSelect);
const viewControls = element('div', 'controls');
viewControls.append(viewLabel, thresholdLabel, kLabel);
const viewStatus = element('p', 'status');
viewStatus.id = 'view-status';
const viewList = element('div', 'view-list');
viewList.id = 'view-list';
viewsSection.append(viewControls, viewStatus, viewList);

app.append(title, tabs, mapSection, viewsSection);

// ---- shared pieces -------------------------------------------------------------------------------

function thumbnail(relPath: string, caption: string[], options: { gallery?: boolean } = {}): HTMLElement {
  const figure = element('figure', 'thumb');
  figure.dataset.path = relPath;
  const image = element('img');
  image.src = imageSrc(imageBase, relPath);
  image.alt = relPath;
  image.loading = 'lazy';
  const text = element('figcaption');
  text.append(element('div', 'path', relPath), ...caption.map((line) => element('div', 'detail', line)));
  const actions = element('div', 'actions');
  const action = (label: string, kind: 'open' | 'reveal' | 'gallery', tip: string) => {
    const button = element('button', `action ${kind}`, label);
    button.title = tip;
    button.addEventListener('click', () => post({ type: 'image', action: kind, path: relPath }));
    actions.append(button);
  };
  action('Open', 'open', 'Open the image file');
  action('Reveal', 'reveal', 'Reveal in the Explorer');
  if (options.gallery !== false) action('Similar', 'gallery', "Show its nearest neighbours in the run's gallery");
  figure.append(image, text, actions);
  return figure;
}

function report(): void {
  const mean = frameTimes.length ? frameTimes.reduce((a, b) => a + b, 0) / frameTimes.length : null;
  post({
    type: 'rendered', tab: state.tab ?? 'map', method: map?.method ?? null, points: map?.paths.length ?? 0,
    selected: Number(selectionList.dataset.count), selectedPaths: [...selectionList.querySelectorAll<HTMLElement>('.thumb')].map((t) => t.dataset.path ?? ''),
    view: view?.view ?? null, viewPaths: [...viewList.querySelectorAll<HTMLElement>('.thumb')].map((t) => t.dataset.path ?? ''),
    frameMs: mean,
  });
}

function showTab(tab: MapTab): void {
  saveState({ tab });
  mapSection.hidden = tab !== 'map';
  viewsSection.hidden = tab !== 'views';
  for (const [name, button] of tabButtons) button.classList.toggle('active', name === tab);
  document.body.dataset.tab = tab;
  if (tab === 'map' && (!map || map.method !== state.method) && pendingMap !== state.method) requestMap();
  if (tab === 'views' && (!view || view.view !== state.view) && pendingView !== state.view) requestView();
  if (tab === 'map') scatter.requestDraw();
}

// ---- the map -------------------------------------------------------------------------------------

const scatter = new Scatter(canvas, {
  hover(point, clientX, clientY) {
    if (point === null || !map) {
      tooltip.hidden = true;
      return;
    }
    const relPath = map.paths[point];
    const src = imageSrc(imageBase, relPath);
    if (tooltipImage.getAttribute('src') !== src) tooltipImage.src = src;
    tooltipText.textContent = `${relPath} · ${className(point) ?? 'no class'} · ${map.splits[point]}`;
    tooltip.hidden = false;
    const bounds = app.getBoundingClientRect();
    tooltip.style.left = `${Math.min(clientX - bounds.left + 14, bounds.width - 180)}px`;
    tooltip.style.top = `${clientY - bounds.top + 14 + window.scrollY}px`;
  },
  click(point) {
    if (map) post({ type: 'image', action: 'gallery', path: map.paths[point] });
  },
  select(points) {
    showSelection(points);
  },
  drawn(ms) {
    frameTimes.push(ms);
    if (frameTimes.length > 120) frameTimes = frameTimes.slice(-120);
    canvas.dataset.frameMs = ms.toFixed(2);
  },
});

function className(point: number): string | null {
  const label = map?.labels[point];
  return label === null || label === undefined ? null : map!.classes[label] ?? null;
}

function colorIndices(): Uint16Array {
  const colors = new Uint16Array(map?.paths.length ?? 0);
  if (!map) return colors;
  for (let i = 0; i < colors.length; i++) {
    if (state.colorBy === 'split') colors[i] = map.splits[i] === 'test' ? 1 : 0;
    else colors[i] = map.labels[i] === null ? PALETTE.length - 1 : map.labels[i]! % (PALETTE.length - 1);
  }
  return colors;
}

function drawLegend(): void {
  legend.replaceChildren();
  if (!map) return;
  const entries = state.colorBy === 'split' ? [['train', 0], ['test', 1]] as const
    : map.classes.length ? map.classes.map((name, i) => [name, i % (PALETTE.length - 1)] as const) : [['no class folders', PALETTE.length - 1] as const];
  for (const [name, index] of entries) {
    const item = element('span', 'legend-item');
    const swatch = element('span', 'swatch');
    swatch.style.background = PALETTE[index];
    item.append(swatch, name);
    legend.append(item);
  }
}

function requestMap(): void {
  const method = (state.method ?? 'pca') as Method;
  mapStatus.textContent = `Laying out the ${method.toUpperCase()} map…`;
  pendingMap = method;
  post({ type: 'requestMap', method });
}

function showMap(message: MapMessage): void {
  if (pendingMap === message.method) pendingMap = null;
  const fit = !map || map.method !== message.method || map.paths.length !== message.paths.length;
  map = message;
  const n = message.paths.length;
  mapStatus.textContent = `${n} images · ${message.method.toUpperCase()} of the checkpoint of step ${message.checkpointStep}` +
    `${message.cached ? ' (cached)' : ''} · drag to pan, wheel to zoom, Shift-drag to select, click a point for its neighbours`;
  canvas.dataset.points = String(n);
  canvas.dataset.method = message.method;
  scatter.setPoints({ x: Float32Array.from(message.x), y: Float32Array.from(message.y), color: colorIndices() }, fit);
  drawLegend();
  showSelection([]);
}

function showSelection(points: number[]): void {
  selectionList.replaceChildren();
  selectionList.dataset.count = String(points.length);
  selectionHeader.textContent = points.length ? `Selection: ${points.length} image${points.length === 1 ? '' : 's'}` +
    (points.length > SELECTION_SHOWN ? ` (the first ${SELECTION_SHOWN} shown)` : '') : 'Selection: drag a box over the map (Shift-drag or Box select)';
  if (map) {
    for (const point of points.slice(0, SELECTION_SHOWN)) {
      selectionList.append(thumbnail(map.paths[point], [`${className(point) ?? 'no class'} · ${map.splits[point]}`]));
    }
  }
  report();
}

methodSelect.addEventListener('change', () => {
  saveState({ method: methodSelect.value as Method });
  requestMap();
});
colorSelect.addEventListener('change', () => {
  saveState({ colorBy: colorSelect.value as ColorBy });
  if (map) scatter.setPoints({ x: Float32Array.from(map.x), y: Float32Array.from(map.y), color: colorIndices() }, false);
  drawLegend();
});
boxButton.addEventListener('click', () => {
  scatter.boxTool = !scatter.boxTool;
  boxButton.classList.toggle('active', scatter.boxTool);
  canvas.classList.toggle('boxing', scatter.boxTool);
});
fitButton.addEventListener('click', () => scatter.fit());

// ---- the data views --------------------------------------------------------------------------------

function viewSettings(): { view: ViewName; k: number; threshold: number } {
  const k = Math.min(100, Math.max(1, Math.round(Number(kInput.value)) || DEFAULT_K));
  return { view: (state.view ?? 'duplicates') as ViewName, k, threshold: state.threshold ?? DEFAULT_THRESHOLD };
}

function requestView(): void {
  const settings = viewSettings();
  thresholdLabel.hidden = settings.view !== 'duplicates';
  kLabel.hidden = settings.view === 'duplicates';
  viewStatus.textContent = 'Searching the index…';
  pendingView = settings.view;
  post({ type: 'requestView', ...settings });
}

function itemCaption(message: ViewMessage, item: ViewItem): string[] {
  const label = item.label ?? 'no class';
  switch (message.view) {
    case 'duplicates':
      return [label];
    case 'labelIssues':
      return [`folder ${label}`, `${Math.round(item.score * message.k)}/${message.k} neighbours in another class` +
        (item.suggested ? `, mostly ${item.suggested}` : '')];
    case 'outliers':
      return [label, `uniqueness ${item.score.toFixed(4)}`];
    case 'redundant':
      return [label, `mean cosine ${item.score.toFixed(4)}`];
  }
}

function showView(message: ViewMessage): void {
  if (pendingView === message.view) pendingView = null;
  view = message;
  viewList.replaceChildren();
  viewList.dataset.view = message.view;
  const images = message.groups.reduce((n, g) => n + g.items.length, 0);
  const what = message.view === 'duplicates'
    ? `${message.groups.length} group${message.groups.length === 1 ? '' : 's'} above cosine ${message.threshold?.toFixed(3)}`
    : `${images} image${images === 1 ? '' : 's'}, k = ${message.k}`;
  viewStatus.textContent = `${VIEW_TITLES[message.view]}: ${what} · checkpoint of step ${message.checkpointStep}`;
  message.groups.forEach((group, i) => {
    const box = element('div', message.view === 'duplicates' ? 'group' : 'row');
    if (group.minScore !== null) box.append(element('div', 'group-title', `Group ${i + 1}: ${group.items.length} images, every pair ≥ ${group.minScore.toFixed(4)}`));
    const thumbs = element('div', 'thumbs');
    for (const item of group.items) thumbs.append(thumbnail(item.path, itemCaption(message, item)));
    box.append(thumbs);
    viewList.append(box);
  });
  if (!message.groups.length) viewList.append(element('p', 'empty', 'Nothing to list.'));
  report();
}

viewSelect.addEventListener('change', () => {
  saveState({ view: viewSelect.value as ViewName });
  requestView();
});
thresholdInput.addEventListener('input', () => (thresholdValue.textContent = Number(thresholdInput.value).toFixed(3)));
// Asked on release, not on every step of the drag: each answer is a pass over the whole index.
thresholdInput.addEventListener('change', () => {
  saveState({ threshold: Number(thresholdInput.value) });
  requestView();
});
kInput.addEventListener('change', () => requestView());

// ---- messages ------------------------------------------------------------------------------------

function receive(message: ToMapWebviewMessage): void {
  switch (message.type) {
    case 'init':
      imageBase = message.imageBase;
      title.textContent = `Embedding map: ${message.runName}`;
      showTab(state.tab ?? 'map');
      break;
    case 'showTab':
      if (message.view) {
        saveState({ view: message.view });
        viewSelect.value = message.view;
        if (view && view.view !== message.view) view = null;
      }
      showTab(message.tab);
      break;
    case 'busy':
      (message.target === 'map' ? mapStatus : viewStatus).textContent = message.text;
      break;
    case 'error':
      if (message.target === 'map') pendingMap = null;
      else pendingView = null;
      (message.target === 'map' ? mapStatus : viewStatus).textContent = message.message;
      (message.target === 'map' ? mapStatus : viewStatus).classList.add('error');
      return;
    case 'map':
      showMap(message);
      break;
    case 'view':
      showView(message);
      break;
  }
  mapStatus.classList.remove('error');
  viewStatus.classList.remove('error');
}

window.addEventListener('message', (event: MessageEvent) => {
  let message: ToMapWebviewMessage;
  try {
    message = parseToMapWebview(event.data);
  } catch (error) {
    if (error instanceof MapProtocolError) {
      console.warn(`SimSiam map: ignored a message: ${error.message}`);
      return;
    }
    throw error;
  }
  receive(message);
});

methodSelect.value = state.method ?? 'pca';
colorSelect.value = state.colorBy ?? 'class';
viewSelect.value = state.view ?? 'duplicates';
thresholdInput.value = String(state.threshold ?? DEFAULT_THRESHOLD);
thresholdValue.textContent = Number(thresholdInput.value).toFixed(3);
mapSection.hidden = state.tab !== 'map';
viewsSection.hidden = state.tab !== 'views';
showSelection([]);
post({ type: 'ready' });
