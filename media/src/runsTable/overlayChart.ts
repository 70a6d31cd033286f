// One overlay chart of the runs table: a uPlot plot of the selected runs' curves, a legend that
// shows each run's latest value without hovering, and PNG / CSV export (the host writes the file).
import uPlot from 'uplot';
import { tickLabels } from '../axes';
import { element } from '../dom';
import { X_AXIS_LABELS } from '../../../src/webview/runsTableProtocol';
import { aligned, chartCsv, latestText, savedName, type ChartDefinition, type ChartOptions, type Curve } from './series';

const HEIGHT = 200;

export interface ChartReport { id: string; series: { runDir: string; label: string; color: string; points: number; xs: number[]; latest: string | null }[] }

/** Tick labels; a log axis leaves some of its splits null (no label there). */
function labelsOf(splits: (number | null)[]): string[] {
  const shown = splits.filter((v): v is number => v !== null && Number.isFinite(v));
  const labels = tickLabels(shown, false);
  let next = 0;
  return splits.map((v) => (v !== null && Number.isFinite(v) ? labels[next++] : ''));
}

/**
 * uPlot's log range in whole decades, except for a curve that is (nearly) constant, such as a fixed
 * lr: uPlot would give it an empty range and draw nothing, so it gets a factor of 2 either side.
 */
function logRange(_u: uPlot, min: number, max: number): uPlot.Range.MinMax {
  const [low, high] = uPlot.rangeLog(min, max, 10, true);
  return high !== null && low !== null && high > low ? [low, high] : [min / 2, max * 2];
}

export class OverlayChart {
  readonly card: HTMLElement;
  private readonly plotHost: HTMLElement;
  private readonly legend: HTMLElement;
  private readonly empty: HTMLElement;
  private plot: uPlot | null = null;
  private curves: Curve[] = [];
  private options: ChartOptions | null = null;
  /** The plot's shape (curves, axis, scale): a change rebuilds it, new points only reset its data. */
  private shape = '';

  constructor(private readonly definition: ChartDefinition, parent: HTMLElement, private readonly datasetName: () => string,
    private readonly save: (format: 'png' | 'csv', name: string, data: string) => void) {
    this.card = element('section', 'card chart');
    this.card.id = `chart-${definition.id}`;
    const header = element('header');
    const png = element('button', 'secondary', 'PNG');
    png.title = 'Save the chart as a PNG image';
    png.addEventListener('click', () => this.savePng());
    const csv = element('button', 'secondary', 'CSV');
    csv.title = "Save the chart's data as CSV";
    csv.addEventListener('click', () => this.saveCsv());
    const actions = element('span', 'actions');
    actions.append(png, csv);
    header.append(element('h2', undefined, definition.title), actions);
    this.plotHost = element('div', 'plot');
    this.legend = element('ul', 'legend');
    this.empty = element('p', 'empty', 'Select runs in the table to overlay them here.');
    this.card.append(header, this.plotHost, this.legend, this.empty);
    parent.append(this.card);
  }

  show(curves: Curve[], options: ChartOptions, emptyText: string, textColor: string, gridColor: string): void {
    this.curves = curves;
    this.options = options;
    const drawn = curves.filter((c) => c.xs.length > 0);
    this.empty.hidden = drawn.length > 0;
    this.empty.textContent = emptyText;
    this.plotHost.hidden = drawn.length === 0;
    this.legend.replaceChildren(...curves.map((c) => {
      const item = element('li');
      const swatch = element('span', c.dashed ? 'swatch dashed' : 'swatch');
      swatch.style.borderColor = c.color;
      item.append(swatch, element('span', 'label', c.label), element('span', 'value', latestText(c, this.definition.percent) ?? '—'));
      return item;
    }));
    const shape = JSON.stringify([curves.map((c) => [c.runDir, c.label, c.color, c.dashed]), options.axis, options.logScale, textColor, gridColor]);
    const data = aligned(curves) as uPlot.AlignedData;
    if (this.plot && shape === this.shape) {
      this.plot.setData(data);
    } else {
      this.shape = shape;
      this.build(data, options, textColor, gridColor);
    }
    this.card.dataset.points = String(data[0].length);
  }

  private build(data: uPlot.AlignedData, options: ChartOptions, textColor: string, gridColor: string): void {
    this.plot?.destroy();
    const axis = (label: string): uPlot.Axis => ({
      label, stroke: textColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor, width: 1 },
      labelSize: 18, size: 60, values: (_u, splits) => labelsOf(splits),
    });
    const log = this.definition.stepCurve && options.logScale;
    this.plot = new uPlot({
      width: this.width(),
      height: HEIGHT,
      scales: {
        x: { time: false },
        y: log ? { distr: 3, range: logRange }
          : this.definition.percent ? { range: [0, 100] } : {},
      },
      // The legend below shows the latest values; uPlot's own would repeat it.
      legend: { show: false },
      cursor: { drag: { x: true, y: false } },
      axes: [axis(X_AXIS_LABELS[options.axis]), axis(this.definition.yLabel(options))],
      series: [
        { label: X_AXIS_LABELS[options.axis] },
        ...this.curves.map((c): uPlot.Series => ({
          label: c.label, stroke: c.color, width: 1.5, dash: c.dashed ? [6, 4] : undefined, spanGaps: true,
          points: { show: !this.definition.stepCurve, size: 5 },
        })),
      ],
    }, data, this.plotHost);
  }

  resize(): void {
    this.plot?.setSize({ width: this.width(), height: HEIGHT });
  }

  private width(): number {
    return Math.max(240, this.plotHost.clientWidth || this.card.clientWidth - 24);
  }

  report(): ChartReport {
    return {
      id: this.definition.id,
      series: this.curves.map((c) => ({
        runDir: c.runDir, label: c.label, color: c.color, points: c.xs.length, xs: c.xs.slice(0, 2000), latest: latestText(c, this.definition.percent),
      })),
    };
  }

  private saveCsv(): void {
    if (!this.options) return;
    this.save('csv', savedName(this.datasetName(), this.definition.id, this.options.axis, 'csv'), chartCsv(this.curves, this.options.axis));
  }

  /** The plot on the card's background, with its title and legend drawn below (a PNG has no DOM). */
  private savePng(): void {
    if (!this.plot || !this.options) return;
    const source = this.plot.ctx.canvas;
    const scale = source.width / Math.max(1, this.plot.width);
    const lineHeight = 18 * scale;
    const canvas = document.createElement('canvas');
    canvas.width = source.width;
    canvas.height = source.height + lineHeight * (this.curves.length + 2);
    const context = canvas.getContext('2d')!;
    const style = getComputedStyle(this.card);
    context.fillStyle = style.backgroundColor && style.backgroundColor !== 'rgba(0, 0, 0, 0)' ? style.backgroundColor : '#ffffff';
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.font = `${12 * scale}px sans-serif`;
    context.fillStyle = style.color || '#000000';
    context.fillText(this.definition.title, 8 * scale, lineHeight * 0.8);
    context.drawImage(source, 0, lineHeight);
    this.curves.forEach((c, i) => {
      const y = source.height + lineHeight * (i + 1.8);
      context.fillStyle = c.color;
      context.fillRect(8 * scale, y - 9 * scale, 14 * scale, 4 * scale);
      context.fillStyle = style.color || '#000000';
      context.fillText(`${c.label}: ${latestText(c, this.definition.percent) ?? '—'}`, 28 * scale, y);
    });
    this.save('png', savedName(this.datasetName(), this.definition.id, this.options.axis, 'png'), canvas.toDataURL('image/png'));
  }
}
