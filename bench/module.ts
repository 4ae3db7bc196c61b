/**
 * The shape of one benchmark module. main.ts measures the machine's baseline,
 * then runs each module in turn; a module starts whatever servers it needs and
 * records its figures in the shared report. The storage benchmark is one module;
 * the execution and side-by-side benchmarks are others.
 */
import type { AgainstServer } from './against.js';
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
  /** Other REAPI servers the side-by-side benchmark measures beside Granary. */
  against: AgainstServer[];
  /** Interleaved rounds of the side-by-side benchmark (each figure is the best round); a default when absent. */
  rounds?: number;
  /** Per server label, a process whose tree counts as that server's CPU (instead of the one listening on its port). */
  cpuOf?: Map<string, number>;
  /** Only these side-by-side figures (reapi-load names such as batch-read); all when absent. */
  figures?: string[];
  /** `--sandbox` of the embedded worker of the side-by-side Granary; granary's default (auto) when absent. */
  granarySandbox?: string;
  /** Extra flags for every Bazel command of the bazel module (local, remote and cached alike). */
  bazelFlags?: string[];
  /** Keep each clean build's Bazel JSON profile (--profile) in this directory and summarise it. */
  bazelProfiles?: string;
  /** `--workers` of the clean build's granary serve; granary's default (one per core) when absent. */
  bazelRemoteSlots?: number;
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
