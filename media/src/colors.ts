// Theme colours for the charts, resolved to what the canvas needs. VS Code's chart colours may
// carry an alpha (--vscode-charts-orange is a 33 % find-match highlight in Dark and Light Modern),
// which would draw a curve faint; and high-contrast themes draw borders at full strength, which
// would make grid lines compete with the curves. Pure, so a unit test can check it.

export interface Rgba { r: number; g: number; b: number; a: number }

const channel = (text: string, scale: number) => {
  const value = text.endsWith('%') ? (parseFloat(text) / 100) * scale : parseFloat(text);
  return Number.isFinite(value) ? Math.min(scale, Math.max(0, value)) : NaN;
};

/**
 * Parses the colour forms a theme variable or a computed style yields: #rgb, #rgba, #rrggbb,
 * #rrggbbaa, rgb()/rgba() (comma or space syntax) and color(srgb r g b / a). Null for anything else.
 */
export function parseCssColor(text: string): Rgba | null {
  const css = text.trim().toLowerCase();
  const hex = /^#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/.exec(css)?.[1];
  if (hex) {
    const digits = hex.length <= 4 ? [...hex].map((d) => d + d) : hex.match(/../g)!;
    const [r, g, b, a = 255] = digits.map((d) => parseInt(d, 16));
    return { r, g, b, a: a / 255 };
  }
  const rgb = /^rgba?\(\s*([^\s,]+)[\s,]+([^\s,]+)[\s,]+([^\s,/]+)\s*(?:[,/]\s*([^\s)]+)\s*)?\)$/.exec(css);
  if (rgb) return checked(channel(rgb[1], 255), channel(rgb[2], 255), channel(rgb[3], 255), rgb[4] === undefined ? 1 : channel(rgb[4], 1));
  const srgb = /^color\(\s*srgb\s+(\S+)\s+(\S+)\s+([^\s/]+)\s*(?:\/\s*([^\s)]+)\s*)?\)$/.exec(css);
  if (srgb) {
    return checked(channel(srgb[1], 1) * 255, channel(srgb[2], 1) * 255, channel(srgb[3], 1) * 255, srgb[4] === undefined ? 1 : channel(srgb[4], 1));
  }
  return null;
}

function checked(r: number, g: number, b: number, a: number): Rgba | null {
  return [r, g, b, a].every(Number.isFinite) ? { r: Math.round(r), g: Math.round(g), b: Math.round(b), a } : null;
}

function rgba({ r, g, b }: Rgba, alpha: number): string {
  return alpha >= 1 ? `rgb(${r}, ${g}, ${b})` : `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/** The colour with its alpha dropped: a series draws solid whatever the theme's variable says. */
export function solidColor(color: Rgba): string {
  return rgba(color, 1);
}

/** Alpha of the grid in high-contrast themes: their borders are as strong as the curves. */
export const HIGH_CONTRAST_GRID_ALPHA = 0.35;

/** Grid lines in the theme's border colour, subdued in high-contrast themes so the curves stay on top. */
export function gridColor(border: Rgba, highContrast: boolean): string {
  return rgba(border, highContrast ? Math.min(border.a, HIGH_CONTRAST_GRID_ALPHA) : border.a);
}
