// The map's scatter plot on a 2-D canvas. Points are written straight into an ImageData buffer
// (a small square per point, last drawn on top) and put on the canvas in one call: 50 000 points
// take a few milliseconds per frame, so pan and zoom redraw every animation frame without WebGL.
// A WebGL library (regl-scatterplot: ≈ 250 KiB minified with regl and its helpers) would draw
// millions, which a run's index never holds; the canvas costs no bundle and runs under the panel's
// strict CSP unchanged. Drag pans, the wheel zooms about the cursor, shift-drag (or the box tool)
// selects a rectangle; a click without movement picks the point under the cursor.

export interface ScatterPoints {
  x: Float32Array;
  y: Float32Array;
  /** Index into the palette, per point. */
  color: Uint16Array;
}

export interface ScatterEvents {
  hover(point: number | null, clientX: number, clientY: number): void;
  click(point: number): void;
  select(points: number[]): void;
  /** After every draw, with how long it took. */
  drawn(ms: number): void;
}

/** Categorical colours (Tableau 10, then 10 more), readable on dark and light themes alike. */
export const PALETTE = [
  '#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac',
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf',
];

const HOVER_RADIUS_PX = 6;

function packedColor(hex: string): number {
  const n = parseInt(hex.slice(1), 16);
  // ImageData is RGBA in memory; a little-endian Uint32 view reads it as ABGR.
  return (0xff << 24) | ((n & 0xff) << 16) | (n & 0xff00) | ((n >> 16) & 0xff);
}

export class Scatter {
  private points: ScatterPoints = { x: new Float32Array(0), y: new Float32Array(0), color: new Uint16Array(0) };
  private colors = PALETTE.map(packedColor);
  /** Data → CSS pixels: screen = (data − centre) × scale + half the canvas. */
  private centreX = 0;
  private centreY = 0;
  private scale = 1;
  private frame = 0;
  private drag: { x: number; y: number; moved: boolean; box: boolean } | null = null;
  private box: { x0: number; y0: number; x1: number; y1: number } | null = null;
  private selected = new Set<number>();
  boxTool = false;

  constructor(private readonly canvas: HTMLCanvasElement, private readonly events: ScatterEvents) {
    canvas.addEventListener('wheel', (e) => this.onWheel(e), { passive: false });
    canvas.addEventListener('pointerdown', (e) => this.onDown(e));
    canvas.addEventListener('pointermove', (e) => this.onMove(e));
    canvas.addEventListener('pointerup', (e) => this.onUp(e));
    canvas.addEventListener('pointerleave', () => this.events.hover(null, 0, 0));
    new ResizeObserver(() => this.requestDraw()).observe(canvas);
  }

  setPoints(points: ScatterPoints, fit: boolean): void {
    this.points = points;
    this.selected.clear();
    if (fit) this.fit();
    this.requestDraw();
  }

  setColors(hexes: string[]): void {
    this.colors = hexes.map(packedColor);
    this.requestDraw();
  }

  get selection(): number[] {
    return [...this.selected];
  }

  /** Frames all points with a margin. */
  fit(): void {
    const { x, y } = this.points;
    let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
    for (let i = 0; i < x.length; i++) {
      minX = Math.min(minX, x[i]); maxX = Math.max(maxX, x[i]);
      minY = Math.min(minY, y[i]); maxY = Math.max(maxY, y[i]);
    }
    if (!x.length) return;
    const { width, height } = this.size();
    this.centreX = (minX + maxX) / 2;
    this.centreY = (minY + maxY) / 2;
    this.scale = 0.9 * Math.min(width / Math.max(maxX - minX, 1e-9), height / Math.max(maxY - minY, 1e-9));
    this.requestDraw();
  }

  /** Moves the view by (dx, dy) CSS pixels. */
  panBy(dx: number, dy: number): void {
    this.centreX -= dx / this.scale;
    this.centreY += dy / this.scale;
    this.requestDraw();
  }

  /** Zooms by `factor` about the CSS pixel (px, py) of the canvas. */
  zoomAt(px: number, py: number, factor: number): void {
    const [dataX, dataY] = this.toData(px, py);
    this.scale *= factor;
    const [afterX, afterY] = this.toData(px, py);
    this.centreX += dataX - afterX;
    this.centreY += dataY - afterY;
    this.requestDraw();
  }

  private size(): { width: number; height: number } {
    return { width: this.canvas.clientWidth || 1, height: this.canvas.clientHeight || 1 };
  }

  /** CSS-pixel position of each point, for one hit test (the canvas size read once, not per point). */
  private screenPositions(): (i: number) => [number, number] {
    const { width, height } = this.size();
    const { x, y } = this.points;
    return (i) => [(x[i] - this.centreX) * this.scale + width / 2, height / 2 - (y[i] - this.centreY) * this.scale];
  }

  private toData(px: number, py: number): [number, number] {
    const { width, height } = this.size();
    return [(px - width / 2) / this.scale + this.centreX, (height / 2 - py) / this.scale + this.centreY];
  }

  private local(e: MouseEvent): [number, number] {
    const rect = this.canvas.getBoundingClientRect();
    return [e.clientX - rect.left, e.clientY - rect.top];
  }

  /** The point nearest to a CSS pixel, within a few pixels; null when none. */
  pointAt(px: number, py: number): number | null {
    let best: number | null = null;
    let bestDistance = HOVER_RADIUS_PX * HOVER_RADIUS_PX;
    const toScreen = this.screenPositions();
    for (let i = 0; i < this.points.x.length; i++) {
      const [sx, sy] = toScreen(i);
      const d = (sx - px) ** 2 + (sy - py) ** 2;
      if (d <= bestDistance) {
        bestDistance = d;
        best = i;
      }
    }
    return best;
  }

  /** Points inside a rectangle of CSS pixels (any two opposite corners). */
  pointsIn(x0: number, y0: number, x1: number, y1: number): number[] {
    const [left, right] = [Math.min(x0, x1), Math.max(x0, x1)];
    const [top, bottom] = [Math.min(y0, y1), Math.max(y0, y1)];
    const inside: number[] = [];
    const toScreen = this.screenPositions();
    for (let i = 0; i < this.points.x.length; i++) {
      const [sx, sy] = toScreen(i);
      if (sx >= left && sx <= right && sy >= top && sy <= bottom) inside.push(i);
    }
    return inside;
  }

  private onWheel(e: WheelEvent): void {
    e.preventDefault();
    const [px, py] = this.local(e);
    this.zoomAt(px, py, Math.exp(-e.deltaY * 0.0015));
  }

  private onDown(e: PointerEvent): void {
    if (e.button !== 0) return;
    try {
      this.canvas.setPointerCapture(e.pointerId);
    } catch {
      // A pointer the browser no longer tracks (released already): the drag still works inside the canvas.
    }
    const [px, py] = this.local(e);
    this.drag = { x: px, y: py, moved: false, box: e.shiftKey || this.boxTool };
  }

  private onMove(e: PointerEvent): void {
    const [px, py] = this.local(e);
    if (!this.drag) {
      this.events.hover(this.pointAt(px, py), e.clientX, e.clientY);
      return;
    }
    if (Math.abs(px - this.drag.x) + Math.abs(py - this.drag.y) > 3) this.drag.moved = true;
    if (this.drag.box) {
      this.box = { x0: this.drag.x, y0: this.drag.y, x1: px, y1: py };
      this.requestDraw();
    } else if (this.drag.moved) {
      this.panBy(px - this.drag.x, py - this.drag.y);
      this.drag.x = px;
      this.drag.y = py;
    }
  }

  private onUp(e: PointerEvent): void {
    const drag = this.drag;
    this.drag = null;
    if (!drag) return;
    const [px, py] = this.local(e);
    if (drag.box && drag.moved && this.box) {
      const inside = this.pointsIn(this.box.x0, this.box.y0, px, py);
      this.box = null;
      this.selected = new Set(inside);
      this.requestDraw();
      this.events.select(inside);
    } else if (!drag.moved) {
      this.box = null;
      const point = this.pointAt(px, py);
      if (point !== null) this.events.click(point);
    }
  }

  requestDraw(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private draw(): void {
    const started = performance.now();
    const ratio = window.devicePixelRatio || 1;
    const { width, height } = this.size();
    const w = Math.max(1, Math.round(width * ratio));
    const h = Math.max(1, Math.round(height * ratio));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    const context = this.canvas.getContext('2d')!;
    const image = context.createImageData(w, h);
    const pixels = new Uint32Array(image.data.buffer);
    const { x, y, color } = this.points;
    const size = Math.max(2, Math.round(2.5 * ratio));
    const half = size >> 1;
    const scale = this.scale * ratio;
    const offsetX = w / 2 - this.centreX * scale;
    const offsetY = h / 2 + this.centreY * scale;
    const hasSelection = this.selected.size > 0;
    // Unselected points first, then the selection on top of them, outlined by a larger square.
    for (let pass = 0; pass < (hasSelection ? 2 : 1); pass++) {
      for (let i = 0; i < x.length; i++) {
        if (hasSelection && (pass === 1) !== this.selected.has(i)) continue;
        const sx = Math.round(x[i] * scale + offsetX) - half;
        const sy = Math.round(offsetY - y[i] * scale) - half;
        if (sx < -size || sy < -size || sx >= w || sy >= h) continue;
        const packed = this.colors[color[i] % this.colors.length];
        const grow = pass === 1 ? 1 : 0;
        const fill = hasSelection && pass === 0 ? (packed & 0x00ffffff) | (0x55 << 24) : packed;
        for (let dy = -grow; dy < size + grow; dy++) {
          const row = sy + dy;
          if (row < 0 || row >= h) continue;
          for (let dx = -grow; dx < size + grow; dx++) {
            const column = sx + dx;
            if (column >= 0 && column < w) pixels[row * w + column] = fill;
          }
        }
      }
    }
    context.putImageData(image, 0, 0);
    if (this.box) {
      context.strokeStyle = getComputedStyle(document.body).getPropertyValue('--vscode-focusBorder') || '#007fd4';
      context.lineWidth = ratio;
      const { x0, y0, x1, y1 } = this.box;
      context.strokeRect(Math.min(x0, x1) * ratio, Math.min(y0, y1) * ratio, Math.abs(x1 - x0) * ratio, Math.abs(y1 - y0) * ratio);
    }
    this.events.drawn(performance.now() - started);
  }
}
