// The panel's charts, drawn with uPlot (bundled into media/dist/panel.js; no CDN) in the theme's
// own colours. Metric records stream in; each chart redraws at most once per animation frame.
import uPlot from 'uplot';
import { element } from './dom';
import type { ChartCounts, MetricStore } from './metricStore';

interface Palette { text: string; grid: string; colors: string[] }

function palette(): Palette {
  const style = getComputedStyle(document.body);
  const read = (name: string, fallback: string) => style.getPropertyValue(name).trim() || fallback;
  return {
    text: read('--vscode-foreground', '#cccccc'),
    grid: read('--vscode-editorWidget-border', read('--vscode-panel-border', '#80808040')),
    colors: [
      read('--vscode-charts-blue', '#3794ff'),
      read('--vscode-charts-orange', '#d18616'),
      read('--vscode-charts-purple', '#b180d7'),
      read('--vscode-charts-green', '#89d185'),
      read('--vscode-charts-red', '#f14c4c'),
      read('--vscode-charts-yellow', '#cca700'),
    ],
  };
}

interface SeriesSpec { label: string; color: number; dash?: number[]; points?: boolean; width?: number }

interface ChartSpec {
  id: string;
  /** Shown while the chart has no points; default "Waiting for data…". */
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

const EMPTY_NOTE = 'Waiting for data…';

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
    this.empty = element('p', 'empty', spec.emptyNote ?? EMPTY_NOTE);
    this.card.append(header, this.plotHost, this.empty);
    parent.append(this.card);
  }

  /** (Re)creates the plot in the current theme's colours. */
  build(store: MetricStore, colors: Palette): void {
    this.plot?.destroy();
    const axis = (label: string): uPlot.Axis => ({
      label, stroke: colors.text, grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.grid, width: 1 },
      labelSize: 18, size: 56, values: tickLabels,
    });
    this.plot = new uPlot({
      width: this.width(),
      height: 190,
      scales: {
        // A lone point (the first step, or epoch 0's kNN) gets a unit-wide axis rather than uPlot's 0–100.
        x: { time: false, range: (_u, min, max) => (min === max ? [min - 1, max + 1] : [min, max]) },
        ...(this.spec.yRange ? { y: { range: this.spec.yRange } } : {}),
      },
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false } },
      axes: [axis(this.spec.xLabel), axis(this.spec.yLabel)],
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
    }, this.spec.data(store), this.plotHost);
    this.update(store);
  }

  update(store: MetricStore): void {
    const data = this.spec.data(store);
    this.plot?.setData(data);
    this.card.dataset.points = String(data[0].length);
    this.empty.hidden = data[0].length > 0;
  }

  resize(): void {
    this.plot?.setSize({ width: this.width(), height: 190 });
  }

  private width(): number {
    return Math.max(220, this.plotHost.clientWidth || this.card.clientWidth - 24);
  }
}

/** Tick labels with as many decimals as the tick spacing needs (z-std moves in the 4th decimal, lr in the 5th). */
function tickLabels(_u: uPlot, splits: number[]): string[] {
  const spacing = splits.length > 1 ? Math.abs(splits[1] - splits[0]) : Math.abs(splits[0] ?? 1);
  if (spacing > 0 && spacing < 1e-4) return splits.map((v) => v.toExponential(1));
  const decimals = spacing > 0 ? Math.min(6, Math.max(0, Math.ceil(-Math.log10(spacing) - 1e-9))) : 2;
  return splits.map((v) => v.toFixed(decimals));
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
  private colors = palette();

  constructor(private readonly store: MetricStore, parent: HTMLElement, compareControl: HTMLElement,
    private readonly onDrawn: (counts: ChartCounts) => void) {
    const specs: ChartSpec[] = [
      {
        id: 'loss', title: 'Loss (per step and epoch mean)', xLabel: 'step', yLabel: 'loss',
        series: [
          { label: 'step loss', color: 0, width: 1 },
          { label: 'epoch mean', color: 1, points: true, width: 2 },
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
    requestAnimationFrame(() => this.rebuild());
    new ResizeObserver(() => this.charts.forEach((c) => c.resize())).observe(parent);
    // VS Code swaps the body's theme class (vscode-light / vscode-dark / vscode-high-contrast).
    new MutationObserver(() => this.rebuild()).observe(document.body, { attributes: true, attributeFilter: ['class'] });
  }

  /** Redraws with the latest data on the next frame (coalescing bursts of step messages). */
  schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.charts.forEach((c) => c.update(this.store));
      this.onDrawn(this.store.counts());
    });
  }

  private rebuild(): void {
    this.colors = palette();
    this.charts.forEach((c) => c.build(this.store, this.colors));
    this.onDrawn(this.store.counts());
  }
}
