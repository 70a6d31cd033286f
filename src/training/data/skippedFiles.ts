// Files that could not be read are reported once each, by whichever reader meets them first (the
// kNN monitor reads the training images before the loader does; held-out images are read by the
// monitor alone; the retrieval index reads them all again).
import { message, type Emit } from '../protocol';

export class SkippedFiles {
  private readonly files = new Set<string>();

  constructor(private readonly emit: Emit) {}

  get count(): number {
    return this.files.size;
  }

  /** A warning naming the file, the first time it is met. */
  report(file: string, reason: string): void {
    if (this.files.has(file)) return;
    this.files.add(file);
    this.emit(message({ type: 'warning', message: `Skipped ${file}: ${reason}`, file }));
  }
}
