// The overlays' data: each chart's curves for the selected runs on the chosen x axis, smoothed and
// log-scaled as asked, aligned on one x grid for uPlot, and the same as CSV. Pure (no DOM), so a
// unit test checks it; the x axes themselves are defined once, in src/webview/runsTableProtocol.ts.
import { axisValue, X_AXIS_LABELS, type RunSeries, type XAxis } from '../../../src/webview/runsTableProtocol';

/** One colour per run, the same in the table and in every chart, readable on dark and light themes. */
export const RUN_COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#b07aa1', '#76b7b2', '#edc948', '#ff9da7', '#9c755f', '#bab0ac'];

/** Colours by run folder: the oldest run first, so a run keeps its colour as newer runs appear and the table is sorted. */
export function runColors(rows: readonly { runDir: string; started: string | null }[]): Map<string, string> {
  const byAge = [...rows].sort((a, b) => (a.started ?? '').localeCompare(b.started ?? '') || a.runDir.localeCompare(b.runDir));
  return new Map(byAge.map((row, i) => [row.runDir, RUN_COLORS[i % RUN_COLORS.length]]));
}

export type ChartId = 'loss' | 'lr' | 'zstd' | 'knn' | 'probe';

export interface ChartOptions {
  axis: XAxis;
  /** EMA weight for step curves, 0 (none) to < 1. */
  smoothing: number;
  /** Log-scaled y on step curves. */
  logScale: boolean;
}

export interface ChartDefinition { id: ChartId; title: string; yLabel(options: ChartOptions): string; stepCurve: boolean; percent: boolean }

export const CHARTS: ChartDefinition[] = [
  // SimSiam's loss lies in [−1, 1] with −1 the optimum: on a log scale it is drawn as loss + 1, its distance from there.
  { id: 'loss', title: 'Loss (per step)', yLabel: (o) => (o.logScale ? 'loss + 1 (log)' : 'loss'), stepCurve: true, percent: false },
  { id: 'lr', title: 'Learning rate', yLabel: (o) => (o.logScale ? 'lr (log)' : 'lr'), stepCurve: true, percent: false },
  { id: 'zstd', title: 'Collapse monitor: z-std ÷ 1/√d', yLabel: () => 'ratio (1 = healthy)', stepCurve: false, percent: false },
  { id: 'knn', title: 'kNN top-1 (monitor)', yLabel: () => '%', stepCurve: false, percent: true },
  { id: 'probe', title: 'Linear probe top-1 (dashed: random init)', yLabel: () => '%', stepCurve: false, percent: true },
];

export interface Curve {
  runDir: string;
  label: string;
  color: string;
  dashed: boolean;
  xs: number[];
  ys: number[];
}

/** TensorBoard's smoothing: an exponential moving average, debiased so the first points are not pulled to 0. */
export function ema(values: readonly number[], weight: number): number[] {
  if (!(weight > 0)) return [...values];
  let last = 0;
  return values.map((value, i) => {
    last = last * weight + (1 - weight) * value;
    return last / (1 - weight ** (i + 1));
  });
}

/** The curves of chart `id` for `runs`, x on the chosen axis; points a log scale cannot show are left out. */
export function chartCurves(id: ChartId, runs: readonly RunSeries[], colors: ReadonlyMap<string, string>, options: ChartOptions): Curve[] {
  return runs.flatMap((run): Curve[] => {
    const color = colors.get(run.runDir) ?? '#888888';
    const x = (points: { step: number[]; epoch: number[] }) => points.step.map((step, i) => axisValue(options.axis, { step, epoch: points.epoch[i] }, run));
    const curve = (xs: number[], ys: number[], dashed = false, label = run.name): Curve => ({ runDir: run.runDir, label, color, dashed, xs, ys });
    switch (id) {
      case 'loss':
      case 'lr': {
        const raw = id === 'loss' ? run.steps.loss : run.steps.lr;
        // The log scale shows loss + 1: its distance from the optimum −1 (see CHARTS).
        const shifted = id === 'loss' && options.logScale ? raw.map((y) => y + 1) : raw;
        const ys = ema(shifted, options.smoothing);
        const xs = x(run.steps);
        if (!options.logScale) return [curve(xs, ys)];
        const kept = ys.map((y, i) => [xs[i], y]).filter(([, y]) => y > 0);
        return [curve(kept.map(([a]) => a), kept.map(([, b]) => b))];
      }
      case 'zstd':
        return [curve(x(run.epochs), run.epochs.zStdRatio)];
      case 'knn':
        return [curve(x(run.knn), run.knn.top1.map((y) => y * 100))];
      case 'probe': {
        const scored = run.evaluations.filter((r) => r.figures !== null);
        const baseline = run.evaluations.filter((r) => r.baseline !== null);
        const at = (records: typeof scored) => records.map((r) => axisValue(options.axis, r, run));
        return [
          curve(at(scored), scored.map((r) => r.figures!.probeTop1 * 100)),
          curve(at(baseline), baseline.map((r) => r.baseline!.probeTop1 * 100), true, `${run.name} (random init)`),
        ];
      }
    }
  });
}

/** The curves on one sorted x grid (uPlot's aligned data): null where a curve has no point. */
export function aligned(curves: readonly Curve[]): [number[], ...(number | null)[][]] {
  const xs = [...new Set(curves.flatMap((c) => c.xs))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  return [xs, ...curves.map((c) => {
    const ys: (number | null)[] = new Array<number | null>(xs.length).fill(null);
    c.xs.forEach((x, i) => {
      ys[index.get(x)!] = c.ys[i];
    });
    return ys;
  })];
}

/** The legend's value for a curve: its latest point, without hovering; null when it has none. */
export function latestText(curve: Curve, percent: boolean): string | null {
  const y = curve.ys.at(-1);
  if (y === undefined) return null;
  if (percent) return `${y.toFixed(1)}%`;
  const magnitude = Math.abs(y);
  return magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e5) ? y.toExponential(3) : y.toFixed(4);
}

const csvField = (text: string) => (/[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);

/** A chart's data as CSV: one row per x, one column per curve (empty where it has no point). */
export function chartCsv(curves: readonly Curve[], axis: XAxis): string {
  const [xs, ...columns] = aligned(curves);
  const header = [X_AXIS_LABELS[axis], ...curves.map((c) => c.label)].map(csvField).join(',');
  const lines = xs.map((x, i) => [String(x), ...columns.map((ys) => (ys[i] === null ? '' : String(ys[i])))].join(','));
  return [header, ...lines].join('\n') + '\n';
}

/** A name for a saved chart: the chart and the axis, file-name safe. */
export function savedName(datasetName: string, id: ChartId, axis: XAxis, extension: 'png' | 'csv'): string {
  const base = `${datasetName}-${id}-by-${axis}`.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 100);
  return `${base}.${extension}`;
}
