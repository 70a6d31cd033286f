// The runs table's script (bundled to media/dist/runsTable.js by scripts/build.mjs): the runs of one
// dataset folder in a sortable, filterable table with selectable rows; the selected runs overlaid
// on every chart in their table colour, on the x axis chosen; their config diff. It draws what the
// extension sends and asks through src/webview/runsTableProtocol.ts; anything that fails
// validation is dropped and logged.
import {
  MAX_SELECTED_RUNS, parseToRunsTable, runsTableMessage, RunsTableProtocolError, X_AXES, X_AXIS_LABELS,
  type FromRunsTableMessage, type RunRowShape as RunRow, type RunsTableMessageBody, type RunsTableState, type SeriesMessage,
  type ToRunsTableMessage, type XAxis,
} from '../../../src/webview/runsTableProtocol';
import { element, nextFrame, vsCodeApi } from '../dom';
import { ALL_STATUSES, COLUMNS, configValueText, filterRows, sortRows, statusChoices } from './columns';
import { OverlayChart } from './overlayChart';
import { CHARTS, chartCurves, runColors, type ChartOptions } from './series';

const vscode = vsCodeApi();
const app = document.getElementById('app')!;

function post(body: RunsTableMessageBody<FromRunsTableMessage>): void {
  vscode.postMessage(runsTableMessage(body));
}

function loadState(): RunsTableState {
  const initial = JSON.parse(app.dataset.state ?? '{}') as RunsTableState;
  const saved = vscode.getState() as Partial<RunsTableState> | undefined;
  return { axis: 'step', smoothing: 0, logScale: false, statusFilter: ALL_STATUSES, selected: [], ...saved, datasetRoot: initial.datasetRoot };
}
let state = loadState();
function saveState(patch: Partial<RunsTableState>): void {
  state = { ...state, ...patch };
  vscode.setState(state);
}
saveState({});

let rows: RunRow[] = [];
let colors = new Map<string, string>();
let series: SeriesMessage = { v: 1, type: 'series', runs: [], diff: [] };
/** The selection the extension was last asked to overlay. */
let requested = '';
const datasetName = () => state.datasetRoot.split(/[\\/]/).filter(Boolean).at(-1) ?? 'dataset';

// ---- layout ------------------------------------------------------------------------------------

const header = element('header', 'table-header');
const title = element('h1', undefined, `Runs of ${datasetName()}`);
const folders = element('p', 'summary');
header.append(title, folders);

const statusSelect = element('select');
statusSelect.id = 'status-filter';
const statusLabel = element('label');
statusLabel.append('Status ', statusSelect);
const tableHost = element('div', 'table-host');
const table = element('table', 'runs');
tableHost.append(table);

const axisSelect = element('select');
axisSelect.id = 'x-axis';
for (const axis of X_AXES) {
  const option = element('option', undefined, X_AXIS_LABELS[axis]);
  option.value = axis;
  axisSelect.append(option);
}
const axisLabel = element('label');
axisLabel.title = 'Images seen is step × batch size: runs with different batch sizes line up by the data they consumed';
axisLabel.append('x axis ', axisSelect);
const smoothing = element('input');
smoothing.type = 'range';
smoothing.min = '0';
smoothing.max = '0.99';
smoothing.step = '0.01';
smoothing.id = 'smoothing';
const smoothingValue = element('span', 'value');
const smoothingLabel = element('label');
smoothingLabel.title = 'Exponential moving average of the step curves (loss, lr)';
smoothingLabel.append('Smoothing ', smoothing, smoothingValue);
const logScale = element('input');
logScale.type = 'checkbox';
logScale.id = 'log-scale';
const logLabel = element('label');
logLabel.title = 'Log-scaled y on the step curves (the loss is drawn as loss + 1, its distance from the optimum −1)';
logLabel.append(logScale, ' log scale');
const controls = element('div', 'controls');
controls.append(statusLabel, axisLabel, smoothingLabel, logLabel);

const chartGrid = element('div', 'charts');
const diffSection = element('section', 'card diff');
diffSection.id = 'config-diff';
app.append(header, controls, tableHost, chartGrid, diffSection);

const charts = CHARTS.map((definition) => new OverlayChart(definition, chartGrid, datasetName,
  (format, name, data) => post({ type: 'save', format, name, data } as RunsTableMessageBody<FromRunsTableMessage>)));

// ---- the table ---------------------------------------------------------------------------------

function selectedRuns(): string[] {
  return (state.selected ?? []).filter((runDir) => rows.some((row) => row.runDir === runDir && row.status !== 'damaged'));
}

function renderTable(): void {
  const choices = statusChoices(rows);
  if (!choices.includes(state.statusFilter ?? ALL_STATUSES)) saveState({ statusFilter: ALL_STATUSES });
  statusSelect.replaceChildren(...choices.map((status) => {
    const option = element('option', undefined, status);
    option.value = status;
    return option;
  }));
  statusSelect.value = state.statusFilter ?? ALL_STATUSES;

  const headRow = element('tr');
  headRow.append(element('th', 'select'), element('th', 'color'));
  for (const column of COLUMNS) {
    const th = element('th', column.numeric ? 'numeric sortable' : 'sortable', column.title);
    th.title = `${column.description} (click to sort)`;
    th.dataset.column = column.id;
    if (state.sort?.column === column.id) th.classList.add(state.sort.descending ? 'descending' : 'ascending');
    th.addEventListener('click', () => {
      const descending = state.sort?.column === column.id ? !state.sort.descending : column.numeric;
      saveState({ sort: { column: column.id, descending } });
      renderTable();
      scheduleReport();
    });
    headRow.append(th);
  }
  const head = element('thead');
  head.append(headRow);
  const body = element('tbody');
  const selected = new Set(selectedRuns());
  for (const row of sortRows(filterRows(rows, statusSelect.value), state.sort)) {
    const tr = element('tr', row.status === 'damaged' ? 'damaged' : undefined);
    tr.dataset.runDir = row.runDir;
    const check = element('input');
    check.type = 'checkbox';
    check.checked = selected.has(row.runDir);
    check.disabled = row.status === 'damaged';
    check.title = row.status === 'damaged' ? 'A damaged run cannot be overlaid' : 'Overlay this run on the charts';
    check.addEventListener('change', () => toggle(row.runDir, check.checked));
    const checkCell = element('td', 'select');
    checkCell.append(check);
    const colorCell = element('td', 'color');
    const swatch = element('span', 'swatch');
    swatch.style.borderColor = colors.get(row.runDir) ?? 'transparent';
    colorCell.append(swatch);
    tr.append(checkCell, colorCell);
    for (const column of COLUMNS) {
      const td = element('td', column.numeric ? 'numeric' : undefined, column.text(row));
      if (column.id === 'name') {
        td.title = `${row.runDir}\nDouble-click to open the run's panel`;
        if (row.note) td.append(element('div', 'note', row.note));
        if (row.problem) td.append(element('div', 'problem', row.problem));
      }
      if (column.id === 'status') td.classList.add(`status-${row.status}`);
      tr.append(td);
    }
    tr.addEventListener('dblclick', () => {
      if (row.status !== 'damaged') post({ type: 'openRun', runDir: row.runDir });
    });
    body.append(tr);
  }
  table.replaceChildren(head, body);
}

function toggle(runDir: string, on: boolean): void {
  const current = selectedRuns().filter((dir) => dir !== runDir);
  if (on) {
    if (current.length >= MAX_SELECTED_RUNS) {
      renderTable();
      return;
    }
    current.push(runDir);
  }
  saveState({ selected: current });
  requestSeries(true);
}

/** Asks the extension for the selected runs' curves when the selection changed (or always, when `force`). */
function requestSeries(force = false): void {
  const runDirs = selectedRuns();
  const key = JSON.stringify(runDirs);
  if (!force && key === requested) return;
  requested = key;
  post({ type: 'select', runDirs });
}

// ---- the overlays and the diff -----------------------------------------------------------------

function options(): ChartOptions {
  return { axis: state.axis ?? 'step', smoothing: state.smoothing ?? 0, logScale: state.logScale ?? false };
}

function themeColors(): { text: string; grid: string } {
  const style = getComputedStyle(document.body);
  return { text: style.getPropertyValue('--vscode-foreground').trim() || '#cccccc', grid: 'rgba(128, 128, 128, 0.25)' };
}

function renderCharts(): void {
  const theme = themeColors();
  const shown = series.runs.filter((run) => selectedRuns().includes(run.runDir));
  const emptyText = shown.length === 0 ? 'Select runs in the table to overlay them here.' : 'The selected runs have no points here yet.';
  charts.forEach((chart, i) => {
    const definition = CHARTS[i];
    let text = emptyText;
    if (definition.id === 'probe' && shown.length > 0) {
      const evaluated = shown.flatMap((run) => run.evaluations);
      text = evaluated.length === 0 ? 'No evaluation yet: runs are evaluated at the end of training, or with SimSiam: Evaluate Checkpoint.'
        : evaluated.every((r) => r.figures === null) ? 'no labels: only unsupervised figures (the folder has no class subfolders).' : emptyText;
    }
    chart.show(chartCurves(definition.id, shown, colors, options()), options(), text, theme.text, theme.grid);
  });
  renderDiff(shown.map((run) => run.runDir));
}

function renderDiff(shownRuns: string[]): void {
  const heading = element('h2', undefined, 'Config diff');
  if (shownRuns.length < 2) {
    diffSection.replaceChildren(heading, element('p', 'empty', 'Select two or more runs to see the config fields that differ.'));
    return;
  }
  if (series.diff.length === 0) {
    diffSection.replaceChildren(heading, element('p', 'empty', 'The selected runs have the same config.'));
    return;
  }
  const names = series.runs.map((run) => run.name);
  const head = element('tr');
  head.append(element('th', undefined, 'field'));
  series.runs.forEach((run, i) => {
    const th = element('th');
    const swatch = element('span', 'swatch');
    swatch.style.borderColor = colors.get(run.runDir) ?? 'transparent';
    th.append(swatch, ` ${names[i]}`);
    th.title = run.runDir;
    head.append(th);
  });
  const body = element('tbody');
  for (const difference of series.diff) {
    const tr = element('tr');
    tr.dataset.field = difference.field;
    tr.append(element('td', 'field', difference.field), ...difference.values.map((value) => element('td', 'numeric', configValueText(value))));
    body.append(tr);
  }
  const diffTable = element('table', 'diff');
  const thead = element('thead');
  thead.append(head);
  diffTable.append(thead, body);
  diffSection.replaceChildren(heading, diffTable);
}

// ---- reports -----------------------------------------------------------------------------------

let reportFrame = 0;
let lastReport = '';
/** Tells the extension what the table and charts show, once drawn, when that changed. */
function scheduleReport(): void {
  reportFrame ||= nextFrame(() => {
    reportFrame = 0;
    const body = {
      type: 'rendered' as const,
      rows: [...table.querySelectorAll('tbody tr')].map((tr) => ({
        runDir: (tr as HTMLElement).dataset.runDir ?? '',
        color: colors.get((tr as HTMLElement).dataset.runDir ?? '') ?? '',
        cells: [...tr.querySelectorAll('td')].slice(2).map((td) => td.firstChild?.textContent ?? ''),
      })),
      selected: selectedRuns(),
      axis: options().axis,
      charts: charts.map((chart) => chart.report()),
      diffFields: [...diffSection.querySelectorAll('tr[data-field]')].map((tr) => (tr as HTMLElement).dataset.field ?? ''),
    };
    const key = JSON.stringify(body);
    if (key === lastReport) return;
    lastReport = key;
    post(body);
  });
}

function showControls(): void {
  axisSelect.value = options().axis;
  smoothing.value = String(options().smoothing);
  smoothingValue.textContent = options().smoothing.toFixed(2);
  logScale.checked = options().logScale;
}

statusSelect.addEventListener('change', () => {
  saveState({ statusFilter: statusSelect.value });
  renderTable();
  scheduleReport();
});
axisSelect.addEventListener('change', () => {
  saveState({ axis: axisSelect.value as XAxis });
  renderCharts();
  scheduleReport();
});
smoothing.addEventListener('input', () => {
  saveState({ smoothing: Math.min(0.99, Math.max(0, Number(smoothing.value))) });
  smoothingValue.textContent = options().smoothing.toFixed(2);
  renderCharts();
  scheduleReport();
});
logScale.addEventListener('change', () => {
  saveState({ logScale: logScale.checked });
  renderCharts();
  scheduleReport();
});

function handle(message: ToRunsTableMessage): void {
  switch (message.type) {
    case 'rows':
      rows = message.rows;
      colors = runColors(rows.filter((row) => row.status !== 'damaged'));
      folders.textContent = `${rows.length} run${rows.length === 1 ? '' : 's'} · ${message.runsFolders.join(' · ') || 'no runs folder yet'}`;
      renderTable();
      requestSeries();
      renderCharts();
      break;
    case 'series':
      series = message;
      renderCharts();
      break;
    case 'view':
      if (message.axis) saveState({ axis: message.axis });
      if (message.selected) saveState({ selected: message.selected.slice(0, MAX_SELECTED_RUNS) });
      showControls();
      renderTable();
      requestSeries(message.selected !== undefined);
      renderCharts();
      break;
  }
  scheduleReport();
}

window.addEventListener('message', (event: MessageEvent) => {
  let message: ToRunsTableMessage;
  try {
    message = parseToRunsTable(event.data);
  } catch (error) {
    if (!(error instanceof RunsTableProtocolError)) throw error;
    post({ type: 'log', level: 'warn', message: `runs table dropped a message: ${error.message}` });
    return;
  }
  handle(message);
});

new ResizeObserver(() => requestAnimationFrame(() => charts.forEach((chart) => chart.resize()))).observe(chartGrid);
document.addEventListener('securitypolicyviolation', (event) => {
  post({ type: 'log', level: 'error', message: `content security policy blocked ${event.blockedURI || 'inline code'} (${event.violatedDirective})` });
});
window.addEventListener('error', (event) => post({ type: 'log', level: 'error', message: String(event.message) }));

showControls();
renderCharts();
post({ type: 'ready' });
