/**
 * The side-by-side benchmark: the same Go client (bench/reapi-load) runs the
 * same storage and execution workload against Granary (`granary serve`,
 * started here), every `--against` server and a null sink, in one run. Each
 * figure is measured in interleaved rounds (the server order rotates every
 * round, so a burst of load from other processes does not land on one server
 * only) and reported as its best round, with Granary's ratio to the best other
 * server and the rounds' spread as the run's noise.
 */
import { join } from 'node:path';
import { startGranaryServe } from './granaryServe.js';
import {
  buildLoadClient,
  type FigureOptions,
  type FigureResult,
  type LoadClient,
  measureFigure,
  serverCapabilities,
  startNodeNullSink,
  startNullSink,
} from './loadClient.js';
import type { BenchContext, BenchModule } from './module.js';
import type { Unit } from './report.js';
import { listeningProcess, processTree } from './serverProcesses.js';
import { type FigureRounds, formatTable, type ServerColumn, summarise } from './sideBySideTable.js';

interface Figure {
  /** reapi-load's name for it. */
  id: string;
  title: string;
  unit: Unit;
  /** Measured only against servers that execute actions. */
  execution?: boolean;
}

const STORAGE_FIGURES: readonly Figure[] = [
  { id: 'batch-update', title: 'BatchUpdateBlobs, 4 KiB blobs, 200 per request', unit: 'blobs/s' },
  { id: 'find-missing', title: 'FindMissingBlobs, 10,000 digests per request, half present', unit: 'digests/s' },
  { id: 'batch-read', title: 'BatchReadBlobs, 4 KiB blobs, 200 per request', unit: 'blobs/s' },
  { id: 'write-16k', title: 'ByteStream write 64 MiB, 16 KiB chunks', unit: 'MB/s' },
  { id: 'write-1m', title: 'ByteStream write 64 MiB, 1 MiB chunks', unit: 'MB/s' },
  { id: 'read', title: 'ByteStream read 64 MiB', unit: 'MB/s' },
  { id: 'get-action-result', title: 'GetActionResult, 8 clients on their own connections', unit: 'hits/s' },
];
function executeFigure(actions: number): Figure {
  const title = `Execute ${actions} distinct trivial actions (sh -c, 1 input, 1 output), 8 in flight`;
  return { id: 'execute', title, unit: 'actions/s', execution: true };
}

const FIGURE_IDS = [...STORAGE_FIGURES.map((f) => f.id), 'execute'];

interface Server extends ServerColumn {
  url: string;
  executes: boolean;
  /** The process whose tree counts as this server's CPU; undefined when it is not on this machine. */
  cpuRoot?: number;
}

/** Every result of one figure, per server label, in round order. */
type Results = Map<string, FigureResult[]>;

export const sideBySideBenchmark: BenchModule = {
  name: 'side-by-side',
  title: 'Side by side: one Go client against Granary, each --against server and a null sink',
  async run(context: BenchContext): Promise<void> {
    const unknown = (context.options.figures ?? []).filter((id) => !FIGURE_IDS.includes(id));
    if (unknown.length > 0) throw new Error(`unknown --figure ${unknown.join(', ')}; known: ${FIGURE_IDS.join(', ')}`);
    const built = await buildLoadClient(context.directory);
    if ('unavailable' in built) {
      context.log(`skipped: ${built.unavailable}`);
      return;
    }
    context.log(`client: bench/reapi-load built with ${built.goVersion}`);
    const granary = await startGranaryServe({
      dataDirectory: join(context.directory, 'side-by-side-granary'),
      sandbox: context.options.granarySandbox,
      nodeArguments: context.options.serverNodeArguments,
      // Like the other servers, which are started in their own sessions (see ownSession).
      ownSession: true,
    });
    context.log(`granary: ${granary.command} (on ${granary.address})`);
    const sink = await startNullSink(built);
    const nodeSink = await startNodeNullSink();
    try {
      const servers = await describeServers(context, built, [
        { label: 'granary', role: 'granary', url: `grpc://${granary.address}` },
        ...context.options.against.map((a) => ({ label: a.label, role: 'other' as const, url: a.url })),
        { label: 'null sink', role: 'sink', url: sink.url },
        // What the same figure costs on grpc-js alone: the Node runtime's floor.
        { label: 'node null sink', role: 'sink', url: nodeSink.url, sinkNote: 'grpc-js alone' },
      ]);
      await measureAll(context, built, servers);
    } finally {
      await sink.close();
      await nodeSink.close();
      await granary.close();
    }
  },
};

async function describeServers(
  context: BenchContext,
  client: LoadClient,
  servers: ReadonlyArray<Omit<Server, 'executes'>>,
): Promise<Server[]> {
  const described: Server[] = [];
  for (const server of servers) {
    const capabilities = await serverCapabilities(client, server.url);
    context.log(
      `${server.label}: ${server.url}, REAPI ${capabilities.lowApiVersion}-${capabilities.highApiVersion}, ` +
        `${capabilities.executionEnabled ? 'executes actions' : 'storage only'}`,
    );
    const port = Number(/:(\d+)(\/|$)/.exec(server.url.slice('grpc://'.length))?.[1]);
    const cpuRoot = context.options.cpuOf?.get(server.label) ?? (await listeningProcess(port));
    context.log(
      cpuRoot === undefined
        ? `${server.label}: no local process found; its CPU per unit of work is not reported`
        : `${server.label}: CPU counted for process ${cpuRoot} and its descendants (${(await processTree(cpuRoot)).length} now)`,
    );
    described.push({ ...server, executes: capabilities.executionEnabled, cpuRoot });
  }
  return described;
}

function figureOptions(context: BenchContext): FigureOptions {
  const quick = context.options.quick;
  return { durationMs: quick ? 1000 : 2000, largeBlobs: quick ? 1 : 2, actions: quick ? 60 : 200 };
}

async function measureAll(context: BenchContext, client: LoadClient, servers: Server[]): Promise<void> {
  const rounds = context.options.rounds ?? (context.options.quick ? 2 : 3);
  const options = figureOptions(context);
  const wanted = context.options.figures;
  const figures = [...STORAGE_FIGURES, executeFigure(options.actions)].filter(
    (f) => !wanted || wanted.length === 0 || wanted.includes(f.id),
  );
  const serversFor = (figure: Figure) => servers.filter((s) => !figure.execution || s.executes);
  context.log(
    `best of ${rounds} interleaved rounds; time-bounded figures run ${options.durationMs} ms, ` +
      `ByteStream ${options.largeBlobs} x 64 MiB, Execute ${options.actions} actions per round`,
  );
  context.log('warm-up: one short run of every figure on every server');
  for (const figure of figures) {
    for (const server of serversFor(figure)) {
      await measureFigure(client, server.url, figure.id, { ...options, warmUp: true }).catch((error: unknown) =>
        context.log(`warm-up ${figure.id} on ${server.label} failed: ${messageOf(error)}`),
      );
    }
  }
  const results = new Map<string, Results>();
  for (const figure of figures) {
    const byServer: Results = new Map();
    results.set(figure.id, byServer);
    const targets = serversFor(figure);
    for (let round = 0; round < rounds; round++) {
      for (const server of rotate(targets, round)) {
        try {
          const serverPids = server.cpuRoot === undefined ? [] : await processTree(server.cpuRoot);
          const result = await measureFigure(client, server.url, figure.id, { ...options, serverPids });
          byServer.set(server.label, [...(byServer.get(server.label) ?? []), result]);
          context.log(`round ${round + 1}/${rounds} ${figure.id} ${server.label}: ${describeResult(result)}`);
        } catch (error) {
          context.log(`round ${round + 1}/${rounds} ${figure.id} ${server.label} FAILED: ${messageOf(error)}`);
        }
      }
    }
  }
  printTable(context, servers, figures, results, rounds);
}

function printTable(
  context: BenchContext,
  servers: Server[],
  figures: readonly Figure[],
  results: Map<string, Results>,
  rounds: number,
): void {
  const rows = figures.flatMap((figure) => roundsOf(figure, results.get(figure.id) ?? new Map()));
  const summaries = rows.map((row) => summarise(row, servers));
  const granaryLabel = servers.find((s) => s.role === 'granary')?.label ?? 'granary';
  for (const summary of summaries) {
    const value = summary.best.get(granaryLabel);
    if (value === undefined) continue;
    context.report.record({
      group: 'side-by-side',
      name: summary.title,
      unit: summary.unit as Unit,
      value,
      lowerIsBetter: summary.lowerIsBetter,
      note: summary.ratio
        ? `${summary.ratio.value.toFixed(2)}x ${summary.ratio.against}; best of ${rounds}`
        : `best of ${rounds}`,
    });
    // Issue 10's target: every figure at least as good as the best other server's, in the same run.
    if (summary.ratio) {
      context.report.record({
        group: 'side-by-side',
        name: `${summary.title}: Granary / best other`,
        unit: 'x',
        value: summary.ratio.value,
        target: { minimum: 1 },
        note: `against ${summary.ratio.against}`,
      });
    }
  }
  console.log('');
  console.log(
    `Side by side, best of ${rounds} interleaved rounds, ${new Date().toISOString().slice(0, 10)} ` +
      '(ratio >= 1.00x: Granary as good or better; spread: widest gap between a server best and worst round)',
  );
  for (const line of formatTable(summaries, servers)) console.log(line);
  const cpuRows = figures.map((figure) => cpuRoundsOf(figure, results.get(figure.id) ?? new Map()));
  const measured = servers.filter((s) => s.cpuRoot !== undefined);
  if (measured.length === 0) return;
  console.log('');
  console.log(
    'Server CPU per unit of work, best round (user + system time of the server process tree during the measured ' +
      'part; lower is better; ratio >= 1.00x: Granary spends no more than the best other)',
  );
  for (const line of formatTable(
    cpuRows.map((row) => summarise(row, measured)),
    measured,
    'gRPC floor',
  )) {
    console.log(line);
  }
}

/** Server CPU microseconds per blob, digest, MB, hit or action, per round. */
function cpuRoundsOf(figure: Figure, byServer: Results): FigureRounds {
  const perUnit = (r: FigureResult) => {
    const units = r.value * r.seconds;
    return r.serverCpuSeconds === undefined || units <= 0 ? undefined : (r.serverCpuSeconds * 1e6) / units;
  };
  const rounds = new Map(
    [...byServer].map(([label, results]) => [label, results.map(perUnit).filter((v): v is number => v !== undefined)]),
  );
  const title = figure.execution ? 'Execute (whole farm: server, scheduler, worker, actions)' : figure.title;
  return { title, unit: `µs/${UNIT_NOUNS[figure.unit] ?? 'unit'}`, lowerIsBetter: true, rounds };
}

const UNIT_NOUNS: Partial<Record<Unit, string>> = {
  'blobs/s': 'blob',
  'digests/s': 'digest',
  'MB/s': 'MB',
  'hits/s': 'hit',
  'actions/s': 'action',
};

/** One table row per figure; the execute figure gives three (throughput, p50, p99). */
function roundsOf(figure: Figure, byServer: Results): FigureRounds[] {
  const pick = (value: (r: FigureResult) => number | undefined) =>
    new Map(
      [...byServer].map(([label, results]) => [label, results.map(value).filter((v): v is number => v !== undefined)]),
    );
  if (!figure.execution) {
    return [{ title: figure.title, unit: figure.unit, lowerIsBetter: false, rounds: pick((r) => r.value) }];
  }
  return [
    { title: figure.title, unit: 'actions/s', lowerIsBetter: false, rounds: pick((r) => r.value) },
    { title: 'Execute latency p50', unit: 'ms', lowerIsBetter: true, rounds: pick((r) => r.p50Ms) },
    { title: 'Execute latency p99', unit: 'ms', lowerIsBetter: true, rounds: pick((r) => r.p99Ms) },
  ];
}

function describeResult(result: FigureResult): string {
  const cores = (cpuSeconds: number) => (result.seconds > 0 ? cpuSeconds / result.seconds : 0).toFixed(2);
  const latency = result.p50Ms === undefined ? '' : `, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms`;
  const server = result.serverCpuSeconds === undefined ? '' : `, server ${cores(result.serverCpuSeconds)} cores`;
  return `${Math.round(result.value).toLocaleString('en-US')} ${result.unit}${latency} (client ${cores(result.clientCpuSeconds)}${server}; ${result.detail})`;
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = items.length === 0 ? 0 : by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
