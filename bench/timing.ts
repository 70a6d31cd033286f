/**
 * Repeated wall-clock measurements and how they are summarised, so that every figure of
 * `npm run bench` is read the same way: warm-up runs first (discarded), then the median of the
 * timed runs, with their min and max to show the spread (the min is the steadier figure on a
 * shared machine, the max shows interference).
 */
import { performance } from 'perf_hooks';

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** How many timed runs. */
  n: number;
}

export function spreadOf(values: number[]): Spread {
  if (values.length === 0) throw new Error('no measurements to summarise');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], n: sorted.length };
}

/** Runs `run` warmUp + repeats times and returns the milliseconds of the timed ones. */
export async function timeRepeats(warmUp: number, repeats: number, run: () => unknown): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < warmUp + repeats; i++) {
    const start = performance.now();
    await run();
    if (i >= warmUp) ms.push(performance.now() - start);
  }
  return ms;
}

/** Milliseconds since `start` (a performance.now() reading). */
export function since(start: number): number {
  return performance.now() - start;
}

/** Wall and process CPU time of `run`: CPU/wall well under the threads in use means contention. */
export async function withCpuShare<T>(run: () => Promise<T>): Promise<{ result: T; wallMs: number; cpuMs: number }> {
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const result = await run();
  const wallMs = since(start);
  const cpu = process.cpuUsage(cpuBefore);
  return { result, wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

export function formatMs(ms: number): string {
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** "median 1.23 s (min 1.20 s, max 1.31 s, n 5)". */
export function formatSpread(spread: Spread, format: (value: number) => string = formatMs): string {
  if (spread.n === 1) return `${format(spread.median)} (n 1)`;
  return `median ${format(spread.median)} (min ${format(spread.min)}, max ${format(spread.max)}, n ${spread.n})`;
}

/** Items per second of a run that handles `items` in `ms`; the slowest run gives the min rate. */
export function rate(items: number, ms: Spread): Spread {
  return { median: (items * 1000) / ms.median, min: (items * 1000) / ms.max, max: (items * 1000) / ms.min, n: ms.n };
}

export function formatRate(perSecond: number): string {
  return perSecond >= 100 ? perSecond.toFixed(0) : perSecond >= 10 ? perSecond.toFixed(1) : perSecond.toFixed(2);
}

export function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Left-aligned first column, right-aligned others: tables that diff cleanly between runs. */
export function table(rows: string[][], indent = '  '): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  return rows
    .map((row) => indent + row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ').trimEnd())
    .join('\n');
}
