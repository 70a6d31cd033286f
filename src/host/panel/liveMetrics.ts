// Forwards the metric records of a live run to the panel. Each record is sent exactly as the
// engine sent it; records are batched so a fast run (hundreds of steps a second) costs the
// webview one message per interval, not one per step. Nothing here touches `vscode`, so a unit
// test can drive it (test/unit/metricPath.test.ts).
import type { MetricRecord } from '../../training/protocol';
import type { AppendMessage, WebviewMessageBody } from '../../webview/protocol';

export const LIVE_FLUSH_MS = 100;

export class LiveMetrics {
  private queue: MetricRecord[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly send: (append: WebviewMessageBody<AppendMessage>) => void, private readonly delayMs = LIVE_FLUSH_MS) {}

  push(record: MetricRecord): void {
    this.queue.push(record);
    this.timer ??= setTimeout(() => this.flush(), this.delayMs);
  }

  /** Sends what is queued now (a run ended: its last records must not wait for the timer). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const records = this.queue;
    this.queue = [];
    if (records.length) this.send({ type: 'append', records });
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
  }
}
