// The experiment panel's script (bundled to media/dist/panel.js by scripts/build.mjs). It draws
// what the extension sends and asks for everything else through the typed protocol of
// src/webview/protocol.ts; anything it receives that fails validation is dropped and logged.
import {
  parseToWebview, webviewMessage, WebviewProtocolError,
  type CompareOption, type FromWebviewMessage, type PanelState, type RunView, type ToWebviewMessage, type WebviewMessageBody,
} from '../../src/webview/protocol';
import { progressParts } from '../../src/webview/runText';
import { AugmentationPreviewView } from './augmentationPreview';
import { ChartBoard } from './charts';
import { element, vsCodeApi } from './dom';
import { Gallery } from './gallery';
import { MetricStore } from './metricStore';
import { runBanner } from './runNotes';

const vscode = vsCodeApi();
const app = document.getElementById('app')!;

function post(body: WebviewMessageBody<FromWebviewMessage>): void {
  vscode.postMessage(webviewMessage(body));
}

/** Kept by VS Code across reloads; runDir (from the page) lets the serializer bring the panel back. */
function loadState(): PanelState {
  const initial = JSON.parse(app.dataset.state ?? '{}') as PanelState;
  const saved = vscode.getState() as Partial<PanelState> | undefined;
  return { ...saved, runDir: initial.runDir };
}

let state = loadState();
function saveState(patch: Partial<PanelState>): void {
  state = { ...state, ...patch };
  vscode.setState(state);
}
saveState({});

// ---- layout ------------------------------------------------------------------------------------

const header = element('header', 'run-header');
const title = element('h1');
const badge = element('span', 'badge');
const summary = element('p', 'summary');
// A phase between steps (loading images, a kNN evaluation) shows how far it got.
const phaseBar = element('progress', 'phase');
phaseBar.hidden = true;
header.append(title, badge, summary, phaseBar);
// Where the charts are, above them: why the run failed or stopped.
const banner = element('p', 'run-banner');
banner.hidden = true;
const chartGrid = element('div', 'charts');
const compareSelect = element('select');
compareSelect.id = 'compare';
compareSelect.title = "Overlay another run's loss curve";
const compareLabel = element('label', 'compare');
compareLabel.append('Compare ', compareSelect);
app.append(header, banner, chartGrid);

const store = new MetricStore();
let lastReport = '';
const board = new ChartBoard(store, chartGrid, compareLabel, (counts) => {
  chartGrid.dataset.stepPoints = String(counts.stepPoints);
  report();
});

/** Tells the extension what the panel shows once drawn, when that changed: points on the curves and the words around them. */
function report(): void {
  const body = {
    type: 'rendered', ...store.counts(), latest: store.latest(),
    summary: summary.textContent ?? '', banner: banner.hidden ? null : banner.textContent, emptyNotes: board.emptyNotes(),
  } as const;
  const key = JSON.stringify(body);
  if (key === lastReport) return;
  lastReport = key;
  post(body);
}

const gallery = new Gallery(app, {
  query: (request) => post(request),
  open: (path) => post({ type: 'openImage', path }),
  rendered: (query, images, loaded, failed, agreement) => post({ type: 'galleryRendered', query, images, loaded, failed, agreement }),
});

const augmentationPreview = new AugmentationPreviewView(app, {
  request: (epoch) => post({ type: 'augmentationPreviewRequest', epoch }),
  rendered: (images, views, settings) => post({ type: 'augmentationPreviewRendered', images, views, settings }),
});

compareSelect.addEventListener('change', () => {
  const runDir = compareSelect.value || null;
  saveState({ compareRunDir: runDir });
  post({ type: 'compare', runDir });
});

// ---- rendering of extension messages -----------------------------------------------------------

function showRun(run: RunView): void {
  title.textContent = run.name;
  badge.textContent = run.status;
  badge.className = `badge status-${run.status}`;
  summary.textContent = [...progressParts(run.progress), `${run.preset} preset`, run.backend].join(' · ');
  const phase = run.progress.running ? run.progress.phase : null;
  phaseBar.hidden = !phase;
  if (phase) {
    phaseBar.max = Math.max(1, phase.total);
    phaseBar.value = phase.done;
  }
  const shown = runBanner(run);
  banner.hidden = !shown;
  banner.textContent = shown?.text ?? '';
  banner.classList.toggle('error', shown?.error ?? false);
  app.dataset.status = run.status;
  board.showRun(run);
  // Reported with the next frame's drawing, like the points.
  board.schedule();
}

function showCompareOptions(options: CompareOption[]): void {
  const wanted = state.compareRunDir ?? '';
  const none = element('option', undefined, 'none');
  none.value = '';
  compareSelect.replaceChildren(none, ...options.map((o) => {
    const option = element('option', undefined, o.label);
    option.value = o.runDir;
    return option;
  }));
  compareSelect.value = options.some((o) => o.runDir === wanted) ? wanted : '';
}

function handle(message: ToWebviewMessage): void {
  switch (message.type) {
    case 'init':
      store.replace(message.history);
      showRun(message.run);
      showCompareOptions(message.compareOptions);
      if (compareSelect.value) post({ type: 'compare', runDir: compareSelect.value });
      // After a window reload only the panel remembers its query.
      if (message.galleryQuery === null && state.queryPath) post({ type: 'query', source: 'path', path: state.queryPath });
      board.schedule();
      break;
    case 'history':
      store.replace(message.records);
      board.schedule();
      break;
    case 'append':
      store.append(message.records);
      board.schedule();
      break;
    case 'status':
      showRun(message.run);
      break;
    case 'compareOptions':
      showCompareOptions(message.options);
      break;
    case 'compareSeries':
      store.compare = message.runDir === null ? null : { label: message.label, steps: message.steps, losses: message.losses };
      board.schedule();
      break;
    case 'galleryBusy':
      gallery.busy(message.text);
      break;
    case 'gallery':
      saveState({ queryPath: message.query.path });
      gallery.show(message);
      break;
    case 'galleryError':
      gallery.error(message.message);
      break;
    case 'augmentationPreviewBusy':
      augmentationPreview.busy(message.text);
      break;
    case 'augmentationPreview':
      augmentationPreview.show(message);
      break;
    case 'augmentationPreviewError':
      augmentationPreview.error(message.message);
      break;
  }
}

window.addEventListener('message', (event: MessageEvent) => {
  let message: ToWebviewMessage;
  try {
    message = parseToWebview(event.data);
  } catch (error) {
    if (!(error instanceof WebviewProtocolError)) throw error;
    console.warn(`SimSiam panel dropped a message: ${error.message}`);
    post({ type: 'log', level: 'warn', message: `panel dropped a message: ${error.message}` });
    return;
  }
  handle(message);
});

// The content security policy blocks anything inline, remote or eval'd; a violation is a bug worth logging.
let cspViolations = 0;
document.addEventListener('securitypolicyviolation', (event) => {
  cspViolations += 1;
  app.dataset.cspViolations = String(cspViolations);
  post({ type: 'log', level: 'error', message: `content security policy blocked ${event.blockedURI || 'inline code'} (${event.violatedDirective})` });
});

window.addEventListener('error', (event) => post({ type: 'log', level: 'error', message: String(event.message) }));

post({ type: 'ready' });
