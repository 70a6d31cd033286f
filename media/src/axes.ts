// How the charts' axes count: pure functions of the data, so a unit test can check them without a
// browser. Steps and epochs are whole numbers, and their ticks are too; a lone point gets an axis
// around it rather than uPlot's 0–100.

/** Tick spacings an axis of whole numbers may use: 1, 2, 5, 10, 20, 50, … (never a fraction). */
export const WHOLE_INCREMENTS: number[] = Array.from({ length: 10 }, (_, power) => [1, 2, 5].map((m) => m * 10 ** power)).flat();

/** Spacings are differences of floats: 0.0202 − 0.0201 is a hair under 1e-4. */
const FLOAT_SLACK = 1e-9;

/**
 * Tick labels: whole numbers on a counting axis; elsewhere as many digits as the tick spacing
 * needs to tell neighbours apart (z-std moves in the 4th decimal, lr in the 5th), as exponents
 * once the spacing is below 1e-4.
 */
export function tickLabels(splits: readonly number[], whole: boolean): string[] {
  if (whole) return splits.map((v) => String(Math.round(v)));
  const spacing = splits.length > 1 ? Math.abs(splits[1] - splits[0]) : Math.abs(splits[0] ?? 1);
  if (!(spacing > 0)) return splits.map((v) => v.toFixed(2));
  if (spacing * (1 + FLOAT_SLACK) < 1e-4) {
    const largest = Math.max(...splits.map(Math.abs));
    const digits = Math.min(6, Math.max(1, Math.ceil(Math.log10(largest / spacing) - FLOAT_SLACK)));
    return splits.map((v) => v.toExponential(digits));
  }
  const decimals = Math.min(6, Math.max(0, Math.ceil(-Math.log10(spacing) - FLOAT_SLACK)));
  return splits.map((v) => v.toFixed(decimals));
}

/**
 * The x range to draw: uPlot's own (`min`, `max`: the data's, or a zoom), except when every x is
 * the same value (the first step, epoch 0's kNN), which uPlot would spread over 0–100: then one
 * unit around it, so the single tick is that value.
 */
export function xRange(xs: ArrayLike<number>, min: number | null, max: number | null): [number | null, number | null] {
  if (xs.length > 0 && xs[0] === xs[xs.length - 1]) return [xs[0] - 0.5, xs[0] + 0.5];
  return [min, max];
}
