// The experiment panel's script (bundled to media/dist/panel.js by scripts/build.mjs). It draws
// what the extension sends and asks for everything else through the typed protocol of
// src/webview/protocol.ts; anything it receives that fails validation is dropped and logged.
import {
  parseToWebview, webviewMessage, WebviewProtocolError,
  type CompareOption, type FromWebviewMessage, type PanelState, type RunView, type ToWebviewMessage, type WebviewMessageBody,
} from '../../src/webview/protocol';
import { formatDuration } from '../../src/host/format';
import { ChartBoard } from './charts';
import { element } from './dom';
import { Gallery } from './gallery';
import { MetricStore } from './metricStore';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
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
const note = element('p', 'note');
header.append(title, badge, summary, note);
const chartGrid = element('div', 'charts');
const compareSelect = element('select');
compareSelect.id = 'compare';
compareSelect.title = "Overlay another run's loss curve";
const compareLabel = element('label', 'compare');
compareLabel.append('Compare ', compareSelect);
app.append(header, chartGrid);

const store = new MetricStore();
let lastReport = '';
const board = new ChartBoard(store, chartGrid, compareLabel, (counts) => {
  const report = { ...counts, latest: store.latest() };
  const key = JSON.stringify(report);
  if (key === lastReport) return;
  lastReport = key;
  chartGrid.dataset.stepPoints = String(counts.stepPoints);
  post({ type: 'rendered', ...report });
});

const gallery = new Gallery(app, {
  query: (request) => post(request),
  open: (path) => post({ type: 'openImage', path }),
  rendered: (query, images, loaded, failed) => post({ type: 'galleryRendered', query, images, loaded, failed }),
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
  const lastLoss = store.steps.length ? store.steps[store.steps.length - 1].loss : null;
  const lastEpoch = store.epochs.length ? store.epochs[store.epochs.length - 1] : null;
  const parts = [
    `epoch ${run.status === 'running' ? Math.min(run.epoch + 1, run.epochs) : run.epoch}/${run.epochs}`,
    `step ${run.step}`,
  ];
  if (lastLoss !== null) parts.push(`loss ${lastLoss.toFixed(4)}`);
  if (lastEpoch?.knnTop1 !== null && lastEpoch?.knnTop1 !== undefined) parts.push(`kNN ${(lastEpoch.knnTop1 * 100).toFixed(1)}%`);
  if (run.etaSeconds !== null) parts.push(`ETA ${formatDuration(run.etaSeconds)}`);
  parts.push(`${run.preset} preset`, run.backend);
  summary.textContent = parts.join(' · ');
  note.textContent = run.message ?? '';
  note.hidden = !run.message;
  app.dataset.status = run.status;
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

let currentRun: RunView | null = null;

function handle(message: ToWebviewMessage): void {
  switch (message.type) {
    case 'init':
      store.replace(message.history);
      currentRun = message.run;
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
      if (currentRun) showRun(currentRun);
      break;
    case 'status':
      currentRun = message.run;
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
