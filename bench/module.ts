/**
 * The shape of one benchmark module. main.ts measures the machine's baseline,
 * then runs each module in turn; a module starts whatever servers it needs and
 * records its figures in the shared report. The storage benchmark is one module;
 * an execution benchmark can be added as another.
 */
import type { Baseline } from './baseline.js';
import type { Report } from './report.js';

export interface BenchOptions {
  /** Fewer runs and shorter durations, for a quick look. */
  quick: boolean;
  /** Run servers in the benchmark's own process instead of a child process. */
  inProcess: boolean;
  /** Diagnostic: keep the storage server's CAS in memory instead of on disk. */
  memoryBackend: boolean;
  /** Extra node flags for server child processes (e.g. --cpu-prof). */
  serverNodeArguments: string[];
}

export interface BenchContext {
  /** A fresh temporary directory, removed afterwards; modules use subdirectories. */
  directory: string;
  baseline: Baseline;
  report: Report;
  options: BenchOptions;
  log(message: string): void;
}

export interface BenchModule {
  name: string;
  title: string;
  run(context: BenchContext): Promise<void>;
}
