/**
 * The Bazel benchmark: a clean build and test of a C++ workspace by Bazel 4.2.3
 * (Debian's bazel-bootstrap) with --remote_executor against `granary serve`,
 * next to the same clean build with Bazel's local sandbox (linux-sandbox), in
 * interleaved rounds. The ratio remote/local is issue 10's target (at most
 * 1.10x): it shows what a farm on the same machine costs a user per action.
 *
 * The workspace is the e2e fixture's Bazel 4 variant (test/e2e/fixtures/bazel-workspace) plus a
 * generated package of small C++ libraries in layers (each depends on two of the
 * layer below) with one test per layer, about 140 actions in all, so that the
 * figure is about actions and not only Bazel's own start-up. Every round starts
 * from an empty output root, and every remote round from a new server (empty
 * CAS, action cache and worker cache).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { bazelWorkspace } from '../test/support/bazelWorkspace.js';
import {
  type BazelProfile,
  formatBazelProfileSummary,
  type ListedOperation,
  summariseBazelProfile,
  summariseOperations,
  summariseServerMetrics,
} from './bazelProfile.js';
import { startGranaryServe } from './granaryServe.js';
import type { BenchContext, BenchModule } from './module.js';

/** Issue 10: a clean remote build takes at most this times its local sandboxed build. */
export const REMOTE_TO_LOCAL_TARGET = 1.1;
const LAYERS = 4;
const LIBRARIES_PER_LAYER = 9;

interface BazelRun {
  seconds: number;
  /** Bazel's closing process summary, e.g. "143 processes: 52 internal, 91 remote". */
  summary: string;
  /** The remote server's side of the run (from its /metrics), when asked for. */
  serverLines?: string[];
}

export const bazelBuildBenchmark: BenchModule = {
  name: 'bazel',
  title: 'Bazel 4.2.3: clean build and test of a C++ workspace, remote (granary serve) vs local sandboxed',
  async run(context: BenchContext): Promise<void> {
    if (spawnSync('sh', ['-c', 'command -v bazel']).status !== 0) {
      context.log('skipped: bazel is not installed (Debian package bazel-bootstrap)');
      return;
    }
    const workspace = join(context.directory, 'bazel-workspace');
    await makeWorkspace(workspace);
    const rounds = context.options.rounds ?? (context.options.quick ? 1 : 3);
    // `--figure clean-build` or `--figure cached-rebuild` runs only that half.
    const wanted = (name: string) => !context.options.figures || context.options.figures.includes(name);
    if (wanted('clean-build')) await cleanBuilds(context, workspace, rounds);
    if (wanted('cached-rebuild')) await cachedRebuilds(context, workspace, rounds);
  },
};

/** Clean builds, local (linux-sandbox) and remote (a new granary serve each), in interleaved rounds. */
async function cleanBuilds(context: BenchContext, workspace: string, rounds: number): Promise<void> {
  const local: BazelRun[] = [];
  const remote: BazelRun[] = [];
  context.log(`${rounds} interleaved rounds; each from an empty output root, remote ones on a new server`);
  // Bazel 4.2.3 writes no profile (and says nothing) when the directory is missing.
  if (context.options.bazelProfiles) await mkdir(context.options.bazelProfiles, { recursive: true });
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? (['local', 'remote'] as const) : (['remote', 'local'] as const);
    for (const kind of order) {
      const outputRoot = join(context.directory, `bazel-${kind}-${round}`);
      const profile = profileFile(context, `${kind}-${round + 1}`);
      const flags = [...(context.options.bazelFlags ?? []), ...(profile ? [`--profile=${profile}`] : [])];
      const run =
        kind === 'local'
          ? await bazelTest(workspace, outputRoot, flags)
          : await remoteRound(context, join(context.directory, `bazel-granary-${round}`), workspace, outputRoot, flags);
      (kind === 'local' ? local : remote).push(run);
      context.log(`round ${round + 1}/${rounds} ${kind}: ${run.seconds.toFixed(1)} s (${run.summary})`);
      if (profile) await logProfile(context, profile);
      for (const line of run.serverLines ?? []) context.log(`  server: ${line}`);
    }
  }
  const best = (runs: BazelRun[]) => Math.min(...runs.map((r) => r.seconds));
  const ratios = local.map((l, i) => (remote[i] as BazelRun).seconds / l.seconds);
  const group = 'bazel';
  context.report.record({
    group,
    name: 'clean build + test, local linux-sandbox',
    unit: 's',
    value: best(local),
    lowerIsBetter: true,
    note: `best of ${rounds}; ${local[0]?.summary}`,
  });
  context.report.record({
    group,
    name: 'clean build + test, --remote_executor granary',
    unit: 's',
    value: best(remote),
    lowerIsBetter: true,
    note: `best of ${rounds}; ${remote[0]?.summary}`,
  });
  context.report.record({
    group,
    name: 'remote / local, best rounds',
    unit: 'x',
    value: best(remote) / best(local),
    lowerIsBetter: true,
    target: { maximum: REMOTE_TO_LOCAL_TARGET },
    note: `per round: ${ratios.map((r) => r.toFixed(2)).join(', ')}`,
  });
}

/**
 * The cached rebuild against Granary and each --against server, in interleaved
 * rounds; each server's cache is filled once before its first timed round.
 */
async function cachedRebuilds(context: BenchContext, workspace: string, rounds: number): Promise<void> {
  const server = await startGranaryServe({
    dataDirectory: join(context.directory, 'bazel-cache-granary'),
    nodeArguments: context.options.serverNodeArguments,
    // As bazel-remote, which runs in a session of its own (see ownSession).
    ownSession: true,
  });
  try {
    const caches = [
      { label: 'granary', url: `grpc://${server.address}` },
      ...context.options.against.map((a) => ({ label: a.label, url: a.url })),
    ];
    const best = new Map<string, number>();
    const failed = new Set<string>();
    for (const cache of caches) {
      try {
        const filled = await bazelTest(workspace, join(context.directory, `bazel-fill-${cache.label}`), [
          ...(context.options.bazelFlags ?? []),
          `--remote_cache=${cache.url}`,
          '--remote_timeout=300',
        ]);
        context.log(`cache ${cache.label}: filled in ${filled.seconds.toFixed(1)} s (${filled.summary})`);
      } catch (error) {
        failed.add(cache.label);
        context.log(`cache ${cache.label}: cannot be used by Bazel 4.2.3: ${(error as Error).message.slice(0, 600)}`);
      }
    }
    for (let round = 0; round < rounds; round++) {
      const order = caches.filter((c) => !failed.has(c.label));
      for (let turn = 0; turn < round % Math.max(1, order.length); turn++) order.push(order.shift() as never);
      for (const cache of order) {
        const outputRoot = join(context.directory, `bazel-cached-${cache.label}-${round}`);
        const run = await bazelTest(workspace, outputRoot, [
          ...(context.options.bazelFlags ?? []),
          `--remote_cache=${cache.url}`,
          '--remote_timeout=300',
        ]);
        best.set(cache.label, Math.min(best.get(cache.label) ?? Number.POSITIVE_INFINITY, run.seconds));
        context.log(
          `round ${round + 1}/${rounds} cached rebuild, ${cache.label}: ${run.seconds.toFixed(1)} s (${run.summary})`,
        );
      }
    }
    for (const [label, seconds] of best) {
      context.report.record({
        group: 'bazel',
        name: `fully cached rebuild after clean --expunge, --remote_cache ${label}`,
        unit: 's',
        value: seconds,
        lowerIsBetter: true,
        note: `best of ${rounds}; a new output root, every action a remote cache hit`,
      });
    }
    const granary = best.get('granary');
    const bazelRemote = [...best.entries()].find(([label]) => label.includes('bazel-remote'))?.[1];
    if (granary !== undefined && bazelRemote !== undefined) {
      context.report.record({
        group: 'bazel',
        name: 'cached rebuild, granary / bazel-remote',
        unit: 'x',
        value: granary / bazelRemote,
        lowerIsBetter: true,
        target: { maximum: 1 },
        note: 'best rounds',
      });
    }
  } finally {
    await server.close();
  }
}

/** One remote round on a fresh `granary serve` (its embedded worker, default slots and sandbox unless told). */
async function remoteRound(
  context: BenchContext,
  dataDirectory: string,
  workspace: string,
  outputRoot: string,
  flags: string[],
): Promise<BazelRun> {
  const server = await startGranaryServe({
    dataDirectory,
    sandbox: context.options.granarySandbox,
    nodeArguments: context.options.serverNodeArguments,
    workers: context.options.bazelRemoteSlots,
  });
  try {
    const run = await bazelTest(workspace, outputRoot, [
      ...flags,
      `--remote_executor=grpc://${server.address}`,
      '--spawn_strategy=remote',
      '--remote_timeout=300',
    ]);
    if (context.options.bazelProfiles && server.httpUrl) run.serverLines = await serverPhases(server.httpUrl);
    return run;
  } finally {
    await server.close();
  }
}

/** `bazel test //...` in batch mode from an empty output root, timed from start to exit. */
function bazelTest(workspace: string, outputRoot: string, flags: string[]): Promise<BazelRun> {
  const args = [
    '--batch',
    `--output_user_root=${outputRoot}`,
    'test',
    '--nosandbox_debug',
    '--color=no',
    '--curses=no',
    // No convenience symlinks in the shared workspace, which a later //... would load.
    '--symlink_prefix=/',
    ...flags,
    '//...',
  ];
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn('bazel', args, { cwd: workspace, env: { PATH: '/usr/bin:/bin', HOME: outputRoot } });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    child.on('close', (status) => {
      const seconds = (performance.now() - start) / 1000;
      if (status !== 0) {
        reject(new Error(`bazel ${args.join(' ')} exited with ${status}:\n${output.slice(-4000)}`));
        return;
      }
      const summary = [...output.matchAll(/INFO: (\d+ process(?:es)?(?:: [^\n]*)?)\./g)].at(-1)?.[1] ?? '?';
      resolve({ seconds, summary });
    });
  });
}

/** The fixture plus the generated `layers` package. */
export async function makeWorkspace(workspace: string): Promise<void> {
  bazelWorkspace(4, dirname(workspace), basename(workspace));
  const directory = join(workspace, 'layers');
  await mkdir(directory, { recursive: true });
  const name = (layer: number, index: number) => `l${layer}_${index}`;
  const build: string[] = ['load("@rules_cc//cc:defs.bzl", "cc_library", "cc_test")', ''];
  for (let layer = 0; layer < LAYERS; layer++) {
    for (let index = 0; index < LIBRARIES_PER_LAYER; index++) {
      const own = name(layer, index);
      const below =
        layer === 0
          ? []
          : [name(layer - 1, index), name(layer - 1, (index + 1) % LIBRARIES_PER_LAYER)].filter(
              (dep, position, all) => all.indexOf(dep) === position,
            );
      const includes = below.map((dep) => `#include "layers/${dep}.h"`).join('\n');
      const sum = below.map((dep) => `${dep}(x)`).join(' + ') || 'x';
      await writeFile(join(directory, `${own}.h`), `#pragma once\nint ${own}(int x);\n`);
      await writeFile(
        join(directory, `${own}.cc`),
        `#include "layers/${own}.h"\n${includes}\n\nint ${own}(int x) { return ${sum} + ${index + 1}; }\n`,
      );
      build.push(
        'cc_library(',
        `    name = "${own}",`,
        `    srcs = ["${own}.cc"],`,
        `    hdrs = ["${own}.h"],`,
        `    deps = [${below.map((dep) => `":${dep}"`).join(', ')}],`,
        ')',
        '',
      );
    }
    const test = `layer${layer}_test`;
    const calls = [...Array(LIBRARIES_PER_LAYER).keys()].map((index) => `${name(layer, index)}(1)`).join(' + ');
    await writeFile(
      join(directory, `${test}.cc`),
      `${[...Array(LIBRARIES_PER_LAYER).keys()].map((index) => `#include "layers/${name(layer, index)}.h"`).join('\n')}\n\n` +
        `int main() { return (${calls}) > 0 ? 0 : 1; }\n`,
    );
    build.push(
      'cc_test(',
      `    name = "${test}",`,
      '    size = "small",',
      `    srcs = ["${test}.cc"],`,
      `    deps = [${[...Array(LIBRARIES_PER_LAYER).keys()].map((index) => `":${name(layer, index)}"`).join(', ')}],`,
      ')',
      '',
    );
  }
  await writeFile(join(directory, 'BUILD'), build.join('\n'));
}

/** Where this run's Bazel JSON profile goes, when --bazel-profiles asked for them. */
function profileFile(context: BenchContext, name: string): string | undefined {
  const directory = context.options.bazelProfiles;
  return directory === undefined ? undefined : join(directory, `${name}.json`);
}

/** Prints where a clean build's time went, from its Bazel JSON profile. */
async function logProfile(context: BenchContext, file: string): Promise<void> {
  try {
    const summary = summariseBazelProfile(JSON.parse(await readFile(file, 'utf8')) as BazelProfile);
    for (const line of formatBazelProfileSummary(summary)) context.log(`  ${line}`);
  } catch (error) {
    context.log(`  profile ${file}: ${(error as Error).message}`);
  }
}

/**
 * The server's side of a remote round from its /metrics: per action phase (queued,
 * input_fetch, execution, output_upload) the count and total seconds, and per gRPC method
 * the calls and the total time spent handling them.
 */
async function serverPhases(httpUrl: string): Promise<string[]> {
  try {
    const metrics = summariseServerMetrics(await (await fetch(`${httpUrl}/metrics`)).text());
    const listed = (await (await fetch(`${httpUrl}/api/operations?limit=10000`)).json()) as {
      operations: ListedOperation[];
    };
    return [...metrics, summariseOperations(listed.operations)];
  } catch (error) {
    return [`metrics from ${httpUrl}: ${(error as Error).message}`];
  }
}
