// How numbers read in the status bar, the Experiments view, notifications and the panel. Free of
// `vscode` and Node, so the panel's script (media/) bundles it too.

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '…';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function formatKnn(top1: number): string {
  return `${(top1 * 100).toFixed(1)}%`;
}

/** "Nov 28 21:57" in the local time zone. */
export function formatStarted(isoTime: string): string {
  const date = new Date(isoTime);
  if (Number.isNaN(date.getTime())) return isoTime;
  const month = date.toLocaleString('en', { month: 'short' });
  return `${month} ${date.getDate()} ${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
}
