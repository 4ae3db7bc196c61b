/**
 * `npm run bench`: measures what this machine can do (raw SHA-256, sequential
 * disk writes), then runs each benchmark module against a real server over
 * loopback and prints a summary with the targets. Not part of the tests.
 *
 * Flags: see USAGE below (`npm run bench -- --help` prints it).
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseAgainstList } from './against.js';
import { measureDiskWrite, measureSha256 } from './baseline.js';
import { bazelBuildBenchmark } from './bazelBuild.js';
import { executionBenchmark } from './execution.js';
import type { BenchModule, BenchOptions } from './module.js';
import { Report, SHA256_GROUP, SHA256_NAME } from './report.js';
import { sideBySideBenchmark } from './sideBySide.js';
import { storageBenchmark } from './storage.js';

const MODULES: readonly BenchModule[] = [
  sideBySideBenchmark,
  storageBenchmark,
  executionBenchmark,
  bazelBuildBenchmark,
];
const USAGE = `Flags (after \`npm run bench --\`):
  --against [LABEL=]grpc://HOST:PORT[/INSTANCE]
                    (repeatable) another REAPI server for the side-by-side table
  --rounds N        interleaved rounds of the side-by-side and bazel benchmarks (best of N; default 3)
  --cpu-of LABEL=PID
                    (repeatable) count PID and its descendants as server LABEL's CPU (default: the
                    process listening on its port, and its descendants)
  --figure NAME     (repeatable) only this side-by-side figure: batch-update, find-missing, batch-read,
                    write-16k, write-1m, read, get-action-result, execute; or this half of the bazel
                    module: clean-build, cached-rebuild
  --granary-sandbox auto|bubblewrap|none
                    sandbox of the side-by-side Granary's embedded worker (default: granary's own)
  --bazel-flag FLAG (repeatable) an extra flag for every Bazel command of the bazel module, local and
                    remote alike (e.g. --bazel-flag=--jobs=8)
  --bazel-profiles DIR
                    keep each clean build's Bazel JSON profile in DIR and print where its time went,
                    with the remote server's side from its /metrics and /api/operations
  --bazel-remote-slots N
                    execution slots of the clean build's granary serve (default: one per core)
  --quick           fewer runs, shorter durations
  --in-process      run the server in this process instead of a child process
  --memory-backend  diagnostic: the storage server keeps its CAS in memory, not on disk
  --profile-server  run the server child with --cpu-prof (profiles go to $TMPDIR/granary-bench-profiles)
  --only NAME       run only the named module (side-by-side, storage, execution, bazel)
  --keep            keep the temporary directory
  --help            show this text`;

const PROFILE_DIRECTORY = join(tmpdir(), 'granary-bench-profiles');

function parseOptions() {
  return parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      'in-process': { type: 'boolean', default: false },
      'memory-backend': { type: 'boolean', default: false },
      'profile-server': { type: 'boolean', default: false },
      only: { type: 'string' },
      keep: { type: 'boolean', default: false },
      against: { type: 'string', multiple: true, default: [] },
      rounds: { type: 'string' },
      figure: { type: 'string', multiple: true },
      'cpu-of': { type: 'string', multiple: true, default: [] },
      'granary-sandbox': { type: 'string' },
      help: { type: 'boolean', default: false },
      'bazel-flag': { type: 'string', multiple: true, default: [] },
      'bazel-profiles': { type: 'string' },
      'bazel-remote-slots': { type: 'string' },
    },
  });
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions();
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const modules = values.only ? MODULES.filter((m) => m.name === values.only) : MODULES;
  if (modules.length === 0) {
    console.error(`unknown module "${values.only}"; known: ${MODULES.map((m) => m.name).join(', ')}`);
    return 2;
  }
  const rounds = values.rounds === undefined ? undefined : Number(values.rounds);
  if (rounds !== undefined && !(Number.isSafeInteger(rounds) && rounds > 0)) {
    console.error(`--rounds must be a positive integer, got "${values.rounds}"`);
    return 2;
  }
  const bazelRemoteSlots =
    values['bazel-remote-slots'] === undefined ? undefined : Number(values['bazel-remote-slots']);
  if (bazelRemoteSlots !== undefined && !(Number.isSafeInteger(bazelRemoteSlots) && bazelRemoteSlots > 0)) {
    console.error(`--bazel-remote-slots must be a positive integer, got "${values['bazel-remote-slots']}"`);
    return 2;
  }
  const cpuOf = new Map<string, number>();
  for (const value of values['cpu-of'] ?? []) {
    const match = /^(.+)=(\d+)$/.exec(value);
    if (!match) {
      console.error(`--cpu-of ${value}: expected LABEL=PID`);
      return 2;
    }
    cpuOf.set(match[1] as string, Number(match[2]));
  }
  let against: BenchOptions['against'];
  try {
    against = parseAgainstList(values.against ?? []);
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  const options: BenchOptions = {
    quick: values.quick ?? false,
    inProcess: values['in-process'] ?? false,
    memoryBackend: values['memory-backend'] ?? false,
    serverNodeArguments: values['profile-server'] ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIRECTORY}`] : [],
    against,
    rounds,
    figures: values.figure,
    cpuOf,
    granarySandbox: values['granary-sandbox'],
    bazelFlags: values['bazel-flag'],
    bazelProfiles: values['bazel-profiles'] === undefined ? undefined : resolve(values['bazel-profiles']),
    bazelRemoteSlots,
  };
  const directory = await mkdtemp(join(tmpdir(), 'granary-bench-'));
  const report = new Report();
  const log = (message: string) => console.log(`  # ${message}`);
  const started = performance.now();
  try {
    console.log(
      `granary bench: node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), ${process.platform}`,
    );
    console.log(`temporary directory: ${directory}${options.quick ? '; quick mode' : ''}`);
    console.log('units: MB/s = 10^6 bytes/s; byte throughputs show their ratio to raw SHA-256 MB/s');
    console.log(`load average at start: ${formatLoad()} (other processes on this machine skew every figure)`);

    report.section('Machine baseline (same run)');
    const sha256MBps = await measureSha256();
    report.setSha256(sha256MBps);
    report.record({ group: SHA256_GROUP, name: SHA256_NAME, unit: 'MB/s', value: sha256MBps, note: 'best of 5' });
    const diskWriteMBps = await measureDiskWrite(directory);
    report.record({
      group: SHA256_GROUP,
      name: 'raw sequential disk write (256 MiB + fsync)',
      unit: 'MB/s',
      value: diskWriteMBps,
      note: 'same directory as the server data',
    });

    for (const module of modules) {
      report.section(module.title);
      await module.run({ directory, baseline: { sha256MBps, diskWriteMBps }, report, options, log });
    }
    // On some VMs, writing new data into the page cache gets slower as a run goes on;
    // measuring again shows how much of a low upload figure the disk explains.
    report.section('Machine baseline, again at the end');
    report.record({
      group: SHA256_GROUP,
      name: 'raw sequential disk write, at the end',
      unit: 'MB/s',
      value: await measureDiskWrite(directory),
    });
    const allPassed = report.printSummary();
    console.log('');
    console.log(
      `targets: ${allPassed ? 'all met' : 'some missed'}; took ${((performance.now() - started) / 1000).toFixed(0)} s; load average at end: ${formatLoad()}`,
    );
    return 0;
  } finally {
    if (values['profile-server']) console.log(`server CPU profiles: ${PROFILE_DIRECTORY}`);
    if (values.keep) console.log(`kept ${directory}`);
    else await rm(directory, { recursive: true, force: true });
  }
}

function formatLoad(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

process.exitCode = await main();
