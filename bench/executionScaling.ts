/**
 * How execution throughput grows (issue 10, "how cost grows"): trivial actions
 * per second and p50 latency against the number of concurrent clients (1, 8,
 * 64) with 2 execution slots, for `granary serve` and for every other farm
 * named with --against; Granary's against its slot count (1, 2, 4, 8) with
 * 16 actions in flight; and against separate worker processes of one slot
 * each (1, 2, 4, 8), as a farm of several worker hosts runs. Writes the figures as JSON, which bench/charts turns
 * into the PNG charts of docs/performance.md.
 *
 * Usage: node dist-test/bench/executionScaling.js --out FILE [--actions N]
 *          [--against LABEL=grpc://HOST:PORT]... [--curves clients,slots,workers]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseAgainstList } from './against.js';
import { measurePhases } from './executePhases.js';
import { type GranaryWorker, startGranaryServe, startGranaryWorker } from './granaryServe.js';

export const CLIENT_COUNTS = [1, 8, 64];
export const SLOT_COUNTS = [1, 2, 4, 8];
export const WORKER_COUNTS = [1, 2, 4, 8];
const IN_FLIGHT_FOR_SLOTS = 16;

/** One point of a curve. */
export interface ScalingPoint {
  x: number;
  actionsPerSecond: number;
  p50Ms: number;
}

export interface ScalingFigures {
  date: string;
  loadAverageAtStart: number;
  loadAverageAtEnd: number;
  actionsPerPoint: number;
  /** Per farm: actions/s and p50 against concurrent clients, 2 slots. */
  clients: Record<string, ScalingPoint[]>;
  /** Granary: actions/s and p50 against slots, 16 actions in flight. */
  slots: ScalingPoint[];
  /** Granary: actions/s and p50 against worker processes of one slot each, 16 in flight. */
  workers: ScalingPoint[];
}

async function withGranary<T>(directory: string, workers: number, run: (url: string) => Promise<T>): Promise<T> {
  const data = await mkdtemp(join(directory, `granary-${workers}-`));
  // In a session of its own, as the farms it is compared with (see ownSession).
  const server = await startGranaryServe({ dataDirectory: data, workers, ownSession: true });
  try {
    return await run(`grpc://${server.address}`);
  } finally {
    await server.close();
    await rm(data, { recursive: true, force: true });
  }
}

/** `granary serve --workers 0` with WORKERS separate one-slot `granary worker` processes. */
async function withSeparateWorkers<T>(
  directory: string,
  workers: number,
  run: (url: string) => Promise<T>,
): Promise<T> {
  const data = await mkdtemp(join(directory, `granary-separate-${workers}-`));
  const server = await startGranaryServe({ dataDirectory: data, workers: 0, ownSession: true });
  const started: GranaryWorker[] = [];
  try {
    for (let i = 0; i < workers; i++) {
      started.push(
        startGranaryWorker({
          server: `grpc://${server.address}`,
          slots: 1,
          workDirectory: join(data, `worker-${i}`),
          ownSession: true,
        }),
      );
    }
    // Time for every worker to connect before the first action is sent.
    await new Promise((resolve) => setTimeout(resolve, 1500 + 250 * workers));
    return await run(`grpc://${server.address}`);
  } finally {
    await Promise.all(started.map((worker) => worker.close()));
    await server.close();
    await rm(data, { recursive: true, force: true });
  }
}

async function curve(url: string, counts: readonly number[], actions: number): Promise<ScalingPoint[]> {
  const points: ScalingPoint[] = [];
  for (const clients of counts) {
    // One client at a time is slow; fewer actions give the same median.
    const summary = await measurePhases(url, clients === 1 ? Math.min(actions, 40) : actions, clients);
    points.push({ x: clients, actionsPerSecond: summary.actionsPerSecond, p50Ms: summary.clientP50Ms });
    console.error(`${url} ${clients}: ${summary.actionsPerSecond.toFixed(1)} actions/s, p50 ${summary.clientP50Ms} ms`);
  }
  return points;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      actions: { type: 'string', default: '120' },
      against: { type: 'string', multiple: true, default: [] },
      // Which curves to measure: clients, slots, workers (comma-separated).
      curves: { type: 'string', default: 'clients,slots,workers' },
    },
  });
  if (!values.out) throw new Error('--out FILE is required');
  const actions = Number(values.actions);
  const curves = new Set((values.curves ?? '').split(',').map((name) => name.trim()));
  for (const name of curves) {
    if (!['clients', 'slots', 'workers'].includes(name)) throw new Error(`--curves: unknown curve ${name}`);
  }
  const directory = await mkdtemp(join(tmpdir(), 'granary-scaling-'));
  const figures: ScalingFigures = {
    date: new Date().toISOString(),
    loadAverageAtStart: loadavg()[0] as number,
    loadAverageAtEnd: 0,
    actionsPerPoint: actions,
    clients: {},
    slots: [],
    workers: [],
  };
  try {
    if (curves.has('clients')) {
      figures.clients.granary = await withGranary(directory, 2, (url) => curve(url, CLIENT_COUNTS, actions));
      for (const other of parseAgainstList(values.against ?? [])) {
        figures.clients[other.label] = await curve(other.url, CLIENT_COUNTS, actions);
      }
    }
    for (const slots of curves.has('slots') ? SLOT_COUNTS : []) {
      const [point] = await withGranary(directory, slots, (url) => curve(url, [IN_FLIGHT_FOR_SLOTS], actions));
      figures.slots.push({ ...(point as ScalingPoint), x: slots });
    }
    for (const workers of curves.has('workers') ? WORKER_COUNTS : []) {
      const [point] = await withSeparateWorkers(directory, workers, (url) =>
        curve(url, [IN_FLIGHT_FOR_SLOTS], actions),
      );
      figures.workers.push({ ...(point as ScalingPoint), x: workers });
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
  figures.loadAverageAtEnd = loadavg()[0] as number;
  await writeFile(values.out, `${JSON.stringify(figures, null, 2)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
