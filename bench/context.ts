/**
 * What every benchmark section gets from the harness: how many runs to time, where to write its
 * files, the backends to measure, and one place to print, so the sections stay comparable.
 */
import type { UserBackendName } from '../src/training/config';

export interface BenchContext {
  /** Untimed runs before the timed ones (JIT, wasm compilation, caches, first-call allocations). */
  warmUp: number;
  /** Timed runs per figure. */
  repeats: number;
  /** --quick: fewer and smaller runs, for a smoke check of the harness itself. */
  quick: boolean;
  /** --all: also the slow plain-JS cpu backend, with full repeats. */
  all: boolean;
  /** --kernels: per-kernel tables from tf.profile. */
  kernels: boolean;
  /** A temp folder, removed at the end of the run. */
  workDir: string;
  /** The backends this machine can load, fastest first, as selectBackend names them. */
  backends: UserBackendName[];
  heading(title: string): void;
  print(text: string): void;
}

export function consoleOutput(): Pick<BenchContext, 'heading' | 'print'> {
  return {
    heading: (title) => console.log(`\n== ${title}`),
    print: (text) => console.log(text),
  };
}
