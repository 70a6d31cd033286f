// The panel's charts, drawn with uPlot (bundled into media/dist/panel.js; no CDN) in the theme's
// own colours, made solid (./colors.ts). Metric records stream in; each chart redraws at most once
// per animation frame. Each chart card reports what it drew in data attributes (points, x ticks,
// x range), which the UI test reads as a person would read the axes.
import uPlot from 'uplot';
import type { RunView } from '../../src/webview/protocol';
import { tickLabels, WHOLE_INCREMENTS, xRange } from './axes';
import { gridColor, parseCssColor, solidColor, type Rgba } from './colors';
import { element, nextFrame } from './dom';
import type { ChartCounts, MetricStore } from './metricStore';
import { emptyChartNote } from './runNotes';

interface Palette { text: string; grid: string; colors: string[] }

const SERIES_COLORS: [variable: string, fallback: string][] = [
  ['--vscode-charts-blue', '#3794ff'],
  ['--vscode-charts-orange', '#d18616'],
  ['--vscode-charts-purple', '#b180d7'],
  ['--vscode-charts-green', '#89d185'],
  ['--vscode-charts-red', '#f14c4c'],
  ['--vscode-charts-yellow', '#cca700'],
];

/** The current theme's colours, each resolved by the browser (any CSS colour form) and parsed. */
function palette(): Palette {
  const style = getComputedStyle(document.body);
  const probe = element('span');
  probe.hidden = true;
  document.body.append(probe);
  const resolve = (variable: string, fallback: string): Rgba => {
    probe.style.color = fallback;
    probe.style.color = style.getPropertyValue(variable).trim() || fallback;
    return parseCssColor(getComputedStyle(probe).color) ?? parseCssColor(fallback)!;
  };
  try {
    const border = style.getPropertyValue('--vscode-editorWidget-border').trim() ? '--vscode-editorWidget-border' : '--vscode-panel-border';
    return {
      text: style.getPropertyValue('--vscode-foreground').trim() || '#cccccc',
      grid: gridColor(resolve(border, '#80808040'), document.body.classList.contains('vscode-high-contrast')),
      colors: SERIES_COLORS.map(([variable, fallback]) => solidColor(resolve(variable, fallback))),
    };
  } finally {
    probe.remove();
  }
}

interface SeriesSpec { label: string; color: number; dash?: number[]; points?: boolean; width?: number }

interface ChartSpec {
  id: string;
  /** Why the chart may stay empty although the run trains (see emptyChartNote). */
  emptyNote?: string;
  /** Fixed y range (e.g. 0–100 % for accuracy); default: fitted to the data. */
  yRange?: [number, number];
  title: string;
  xLabel: string;
  yLabel: string;
  series: SeriesSpec[];
  data(store: MetricStore): uPlot.AlignedData;
  /** Controls shown in the card's header (the compare picker). */
  headerExtra?: HTMLElement;
}

class Chart {
  readonly card: HTMLElement;
  private readonly plotHost: HTMLElement;
  private readonly empty: HTMLElement;
  private plot: uPlot | null = null;

  constructor(private readonly spec: ChartSpec, parent: HTMLElement) {
    this.card = element('section', 'card chart');
    this.card.id = `chart-${spec.id}`;
    const header = element('header');
    header.append(element('h2', undefined, spec.title));
    if (spec.headerExtra) header.append(spec.headerExtra);
    this.plotHost = element('div', 'plot');
    this.empty = element('p', 'empty', emptyChartNote(null, spec.emptyNote));
    this.card.append(header, this.plotHost, this.empty);
    parent.append(this.card);
  }

  /** (Re)creates the plot in the current theme's colours. */
  build(store: MetricStore, colors: Palette): void {
    this.plot?.destroy();
    // Every x axis counts steps or epochs.
    const axis = (label: string, whole: boolean): uPlot.Axis => ({
      label, stroke: colors.text, grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.grid, width: 1 },
      labelSize: 18, size: 56, ...(whole ? { incrs: WHOLE_INCREMENTS } : {}),
      values: (_u, splits) => {
        const labels = tickLabels(splits, whole);
        if (whole) this.card.dataset.xTicks = labels.join(' ');
        return labels;
      },
    });
    this.plot = new uPlot({
      width: this.width(),
      height: 190,
      scales: {
        x: { time: false, range: (u, min, max) => xRange(u.data[0], min, max) },
        ...(this.spec.yRange ? { y: { range: this.spec.yRange } } : {}),
      },
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false } },
      axes: [axis(this.spec.xLabel, true), axis(this.spec.yLabel, false)],
      series: [
        { label: this.spec.xLabel },
        ...this.spec.series.map((s): uPlot.Series => ({
          label: s.label,
          stroke: colors.colors[s.color % colors.colors.length],
          width: s.width ?? 1.5,
          dash: s.dash,
          spanGaps: true,
          points: { show: s.points ?? false, size: 5 },
        })),
      ],
      hooks: {
        draw: [(u) => {
          this.card.dataset.xRange = `${u.scales.x.min} ${u.scales.x.max}`;
        }],
      },
    }, this.spec.data(store), this.plotHost);
    this.update(store);
  }

  update(store: MetricStore): void {
    const data = this.spec.data(store);
    this.plot?.setData(data);
    this.card.dataset.points = String(data[0].length);
    this.empty.hidden = data[0].length > 0;
  }

  /** Says why the chart has no points, as the run stands now. */
  showRun(run: RunView): void {
    this.empty.textContent = emptyChartNote(run, this.spec.emptyNote);
  }

  /** The note a person sees instead of the plot, or null when it has points. */
  get shownNote(): string | null {
    return this.empty.hidden ? null : this.empty.textContent;
  }

  resize(): void {
    this.plot?.setSize({ width: this.width(), height: 190 });
  }

  private width(): number {
    return Math.max(220, this.plotHost.clientWidth || this.card.clientWidth - 24);
  }
}

/** Values of `points` placed on the sorted x grid `xs` (null where a series has no point). */
function onGrid(xs: number[], points: Map<number, number>): (number | null)[] {
  return xs.map((x) => points.get(x) ?? null);
}

function sortedUnion(...lists: number[][]): number[] {
  return [...new Set(lists.flat())].sort((a, b) => a - b);
}

export class ChartBoard {
  private readonly charts: Chart[] = [];
  private frame = 0;
  private resizeFrame = 0;
  private rebuildFrame = 0;

  constructor(private readonly store: MetricStore, parent: HTMLElement, compareControl: HTMLElement,
    private readonly onDrawn: (counts: ChartCounts) => void) {
    const specs: ChartSpec[] = [
      {
        id: 'loss', title: 'Loss (per step and epoch mean)', xLabel: 'step', yLabel: 'loss',
        series: [
          { label: 'step loss', color: 0, width: 1 },
          { label: 'epoch-mean loss', color: 1, points: true, width: 2 },
          { label: 'compare', color: 2, dash: [6, 4] },
        ],
        headerExtra: compareControl,
        data: (s) => {
          const compare = s.compare;
          const stepXs = s.steps.map((r) => r.step);
          // Epoch means sit on their epoch's last step, so the step axis usually holds every x already
          // (this runs once per frame on possibly long runs: no sort unless needed).
          const known = new Set(stepXs);
          const xs = compare || s.epochs.some((r) => !known.has(r.step))
            ? sortedUnion(stepXs, s.epochs.map((r) => r.step), compare?.steps ?? [])
            : stepXs;
          return [
            xs,
            onGrid(xs, new Map(s.steps.map((r) => [r.step, r.loss]))),
            onGrid(xs, new Map(s.epochs.map((r) => [r.step, r.meanLoss]))),
            onGrid(xs, new Map(compare ? compare.steps.map((x, i) => [x, compare.losses[i]]) : [])),
          ] as uPlot.AlignedData;
        },
      },
      {
        id: 'lr', title: 'Learning rate', xLabel: 'step', yLabel: 'lr',
        series: [{ label: 'encoder lr', color: 3 }],
        data: (s) => [s.steps.map((r) => r.step), s.steps.map((r) => r.lr)],
      },
      {
        id: 'collapse', title: 'Collapse monitor: std of normalised z', xLabel: 'epoch', yLabel: 'z-std',
        series: [{ label: 'z-std', color: 0, points: true }, { label: '1/√d (healthy)', color: 5, dash: [4, 4] }],
        data: (s) => [s.epochs.map((r) => r.epoch), s.epochs.map((r) => r.zStd), s.epochs.map((r) => r.zStdReference)],
      },
      {
        id: 'knn', title: 'kNN top-1 accuracy', xLabel: 'epoch', yLabel: '%', yRange: [0, 100],
        emptyNote: 'Measured after each epoch when the folder has class subfolders (labels are used for this monitor only).',
        series: [{ label: 'kNN top-1 %', color: 3, points: true }],
        data: (s) => {
          const byEpoch = new Map<number, number>();
          for (const e of s.evals) byEpoch.set(e.epoch, e.knnTop1 * 100);
          for (const e of s.epochs) if (e.knnTop1 !== null) byEpoch.set(e.epoch, e.knnTop1 * 100);
          const xs = [...byEpoch.keys()].sort((a, b) => a - b);
          return [xs, xs.map((x) => byEpoch.get(x)!)];
        },
      },
      {
        id: 'throughput', title: 'Throughput', xLabel: 'epoch', yLabel: 'images/s',
        series: [{ label: 'images/s', color: 1, points: true }],
        data: (s) => [s.epochs.map((r) => r.epoch), s.epochs.map((r) => r.imagesPerSecond)],
      },
    ];
    for (const spec of specs) this.charts.push(new Chart(spec, parent));
    // Build once laid out, so widths are known.
    this.scheduleRebuild();
    // Resized on the next frame: resizing inside the observer's callback would change the layout it
    // reports on, which Chromium reports as a window error ("ResizeObserver loop completed with
    // undelivered notifications") that the panel logs.
    new ResizeObserver(() => {
      this.resizeFrame ||= requestAnimationFrame(() => {
        this.resizeFrame = 0;
        this.charts.forEach((c) => c.resize());
      });
    }).observe(parent);
    // A theme change swaps the body's theme class and attributes (not between two dark themes) and
    // rewrites the --vscode-* variables on the root element's style.
    const themeChanged = new MutationObserver(() => this.scheduleRebuild());
    themeChanged.observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-id'] });
    themeChanged.observe(document.documentElement, { attributes: true, attributeFilter: ['style'] });
  }

  /** Redraws with the latest data on the next frame (coalescing bursts of step messages). */
  schedule(): void {
    if (this.frame) return;
    this.frame = nextFrame(() => {
      this.frame = 0;
      this.charts.forEach((c) => c.update(this.store));
      this.onDrawn(this.store.counts());
    });
  }

  /** The empty charts' notes follow the run: waiting, a phase in progress, or why no data will come. */
  showRun(run: RunView): void {
    this.charts.forEach((c) => c.showRun(run));
  }

  /** What the charts without points say instead. */
  emptyNotes(): string[] {
    return this.charts.map((c) => c.shownNote).filter((note): note is string => note !== null);
  }

  private scheduleRebuild(): void {
    this.rebuildFrame ||= nextFrame(() => {
      this.rebuildFrame = 0;
      const colors = palette();
      this.charts.forEach((c) => c.build(this.store, colors));
      this.onDrawn(this.store.counts());
    });
  }
}
