// The parity harness's arithmetic and layout, apart from the processes it runs, so it can be
// unit-tested without PyTorch or a training run.

/** What one side (engine or reference) reported for one seed: index 0 = before training. */
export interface SideRun {
  seed: number;
  /** kNN top-1 in [0, 1] per epoch, index 0 = untrained. */
  knnTop1: number[];
  /** Per trained epoch (index 0 = epoch 1). */
  meanLoss: number[];
  zStd: number[];
  imagesPerSecond: number[];
  /** Per trained epoch, the share of the training loop spent waiting for images (engine only; NaN when not reported). */
  loaderWaitShare: number[];
  /** Per trained epoch, the share of the training loop spent making views on the training thread (reference only; NaN when not reported). */
  viewShare: number[];
}

export type Side = 'engine' | 'reference';

export interface MeanSd { mean: number; sd: number; n: number }

/** Mean and sample standard deviation (n − 1; 0 for a single value) of the finite values. */
export function meanSd(values: readonly number[]): MeanSd {
  const finite = values.filter(Number.isFinite);
  const n = finite.length;
  if (n === 0) return { mean: NaN, sd: NaN, n: 0 };
  const mean = finite.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(finite.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, n };
}

export function formatMeanSd(value: MeanSd, digits: number, scale = 1): string {
  if (value.n === 0) return '—';
  return `${(value.mean * scale).toFixed(digits)} ± ${(value.sd * scale).toFixed(digits)}`;
}

/** An empty run to fill from one side's messages. */
export function emptyRun(seed: number): SideRun {
  return { seed, knnTop1: [], meanLoss: [], zStd: [], imagesPerSecond: [], loaderWaitShare: [], viewShare: [] };
}

/**
 * Folds one line of the engine's `--json` protocol into `run`: the eval record before training
 * (kNN of the untrained model) and each epoch record. Other lines are ignored.
 */
export function addEngineLine(run: SideRun, line: string): void {
  const message = parseObject(line);
  if (message?.type !== 'metric' || typeof message.record !== 'object' || message.record === null) return;
  const record = message.record as Record<string, unknown>;
  if (record.kind === 'eval' && record.epoch === 0 && typeof record.knnTop1 === 'number') {
    run.knnTop1[0] = record.knnTop1;
  } else if (record.kind === 'epoch' && typeof record.epoch === 'number') {
    addEpoch(run, record.epoch, record);
  }
}

/** Folds one line of bench/parity/reference.py's output into `run`. */
export function addReferenceLine(run: SideRun, line: string): void {
  const message = parseObject(line);
  if (message?.type === 'eval' && typeof message.knnTop1 === 'number') run.knnTop1[0] = message.knnTop1;
  else if (message?.type === 'epoch' && typeof message.epoch === 'number') addEpoch(run, message.epoch, message);
}

function addEpoch(run: SideRun, epoch: number, record: Record<string, unknown>): void {
  const number = (key: string): number => (typeof record[key] === 'number' ? record[key] as number : NaN);
  run.meanLoss[epoch - 1] = number('meanLoss');
  run.zStd[epoch - 1] = number('zStd');
  run.knnTop1[epoch] = number('knnTop1');
  run.imagesPerSecond[epoch - 1] = number('imagesPerSecond');
  run.loaderWaitShare[epoch - 1] = number('loaderWaitSeconds') / number('seconds');
  run.viewShare[epoch - 1] = number('viewSeconds') / number('seconds');
}

function parseObject(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? value as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}

/** Markdown table, per epoch, of mean ± sd over seeds of loss, z-std and kNN top-1 for both sides. */
export function curveTable(engine: readonly SideRun[], reference: readonly SideRun[], epochs: number): string {
  const column = (runs: readonly SideRun[], pick: (r: SideRun) => number | undefined, digits: number, scale = 1) =>
    formatMeanSd(meanSd(runs.map((r) => pick(r) ?? NaN)), digits, scale);
  const rows = ['| epoch | loss engine | loss PyTorch | z-std engine | z-std PyTorch | kNN top-1 engine (%) | kNN top-1 PyTorch (%) |',
    '|---|---|---|---|---|---|---|'];
  for (let e = 0; e <= epochs; e++) {
    const trained = e > 0;
    rows.push(`| ${e === 0 ? '0 (untrained)' : e} | ${trained ? column(engine, (r) => r.meanLoss[e - 1], 3) : ''} | ${trained ? column(reference, (r) => r.meanLoss[e - 1], 3) : ''} | `
      + `${trained ? column(engine, (r) => r.zStd[e - 1], 4) : ''} | ${trained ? column(reference, (r) => r.zStd[e - 1], 4) : ''} | `
      + `${column(engine, (r) => r.knnTop1[e], 1, 100)} | ${column(reference, (r) => r.knnTop1[e], 1, 100)} |`);
  }
  return rows.join('\n');
}

/**
 * Training speed of one seed's pair of runs: mean images/s over the epochs after the first (the
 * first pays for compilation and warm-up on both sides) or over epoch 1 when there is only one.
 */
export function steadyRate(run: SideRun): number {
  return laterEpochs(run.imagesPerSecond).mean;
}

/** Images/s with three significant digits below 10 (224 px trains at a fraction of an image a second). */
function formatRate(rate: number): string {
  return Math.abs(rate) >= 10 || !Number.isFinite(rate) ? rate.toFixed(1) : rate.toPrecision(3);
}

/** Mean of the epochs after the first (or of the one epoch), NaNs left out. */
function laterEpochs(values: readonly number[]): MeanSd {
  return meanSd(values.length > 1 ? values.slice(1) : values);
}

const percent = (share: MeanSd) => (share.n ? `${(100 * share.mean).toFixed(1)} %` : '—');

/**
 * Markdown table of images/s per seed (the pair ran back to back), the engine ÷ PyTorch ratio, and
 * what each side spent on views: the engine's wait for its loader thread, the share of PyTorch's
 * loop that made views on its training thread (the ratio against PyTorch's forward/backward/step
 * alone divides that share out).
 */
export function speedTable(engine: readonly SideRun[], reference: readonly SideRun[]): string {
  const rows = ['| seed | engine img/s (epoch 1; later) | PyTorch img/s (epoch 1; later) | ratio engine ÷ PyTorch (later epochs) | engine waiting for images | PyTorch making views | ratio to PyTorch without its views |',
    '|---|---|---|---|---|---|---|'];
  const ratios: number[] = [];
  const withoutViews: number[] = [];
  for (const e of engine) {
    const r = reference.find((x) => x.seed === e.seed);
    if (!r) continue;
    const ratio = steadyRate(e) / steadyRate(r);
    ratios.push(ratio);
    const cell = (run: SideRun) => `${formatRate(run.imagesPerSecond[0] ?? NaN)}; ${formatRate(steadyRate(run))}`;
    const views = laterEpochs(r.viewShare);
    const bare = views.n ? ratio * (1 - views.mean) : NaN;
    if (views.n) withoutViews.push(bare);
    rows.push(`| ${e.seed} | ${cell(e)} | ${cell(r)} | ${ratio.toFixed(2)} | ${percent(laterEpochs(e.loaderWaitShare))} | ${percent(views)} | ${views.n ? bare.toFixed(2) : '—'} |`);
  }
  rows.push(`| all | | | ${formatMeanSd(meanSd(ratios), 2)} | | | ${formatMeanSd(meanSd(withoutViews), 2)} |`);
  return rows.join('\n');
}

/** Seeds from `--seeds`: a count (3 → 0, 1, 2) or a comma-separated list (0,5,7). */
export function parseSeeds(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  const numbers = parts.map(Number);
  if (numbers.length === 0 || numbers.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new Error(`--seeds ${text}: give a count (3) or a comma-separated list of seeds (0,1,2)`);
  }
  if (parts.length > 1 || text.includes(',')) return numbers;
  if (numbers[0] === 0) throw new Error('--seeds 0: give at least one seed');
  return Array.from({ length: numbers[0] }, (_, i) => i);
}
