/**
 * How storage cost grows (issue 10, "how cost grows"): a `granary serve
 * --workers 0` filled with fresh 4 KiB blobs to each store size in turn (all
 * of them in the segment store, which a large enough --max-size makes room
 * for), measuring at each size FindMissingBlobs digests/s and BatchReadBlobs
 * blobs/s with the Go load client (the side-by-side workload), the server's
 * resident size and V8 heap, and the time to restart it on the same data; and,
 * at the first size, the storage figures against concurrent clients (1, 8, 64).
 * With --before-granary, each size also times a restart of another build
 * (bin/granary.js of a checkout, e.g. one from before segment index files) on
 * the same data, just before this build's restart, so the two are compared in
 * one run.
 * Writes the figures as JSON, which bench/charts turns into the PNG charts of
 * docs/performance.md.
 *
 * Usage: node dist-test/bench/storeScaling.js --out FILE [--sizes 1,2,5,10]
 *          [--duration-ms 3000] [--before-granary PATH/bin/granary.js]
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { type GranaryServe, startGranaryServe } from './granaryServe.js';
import { buildLoadClient, fillStore, type LoadClient, measureFigure } from './loadClient.js';

export const CLIENT_COUNTS = [1, 8, 64];
export const CONCURRENCY_FIGURES = ['batch-update', 'find-missing', 'batch-read', 'get-action-result'];
const GIB = 1024 ** 3;
const BLOB_BYTES = 4096;
/** Requests in flight while filling: enough to keep both cores busy. */
const FILL_CONCURRENCY = 4;
/** --max-size per GiB of the largest store: the segment store gets about a quarter of it. */
const MAX_SIZE_PER_STORED_GIB = 5;
/** Dumps process.memoryUsage() to a file on SIGUSR2 (loaded into the server with --import). */
const MEMORY_PRELOAD = `import { writeFileSync } from 'node:fs';
process.on('SIGUSR2', () => writeFileSync(process.env.GRANARY_BENCH_MEMORY_FILE, JSON.stringify(process.memoryUsage())));
`;

export interface ProcessMemory {
  vmRssBytes: number;
  vmHwmBytes: number;
}

/** VmRSS and VmHWM (peak resident) from the text of /proc/PID/status. */
export function parseProcStatus(text: string): ProcessMemory {
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text);
    if (!match) throw new Error(`/proc status has no ${field} line`);
    return Number(match[1]) * 1024;
  };
  return { vmRssBytes: kib('VmRSS'), vmHwmBytes: kib('VmHWM') };
}

/** "1,2,5" → [1, 2, 5]: ascending positive GiB counts. */
export function parseSizes(list: string): number[] {
  const sizes = list.split(',').map((item) => Number(item.trim()));
  for (const [index, size] of sizes.entries()) {
    if (!(Number.isFinite(size) && size > 0))
      throw new Error(`--sizes: "${list}" is not a list of positive GiB counts`);
    if (index > 0 && size <= (sizes[index - 1] as number)) throw new Error(`--sizes: "${list}" is not ascending`);
  }
  return sizes;
}

export interface StoreSizePoint {
  /** Target size; storedBytes is what was uploaded (the concurrency sweep adds a little). */
  gib: number;
  storedBytes: number;
  diskBytes: number;
  fillMBps: number;
  findMissingDigestsPerSecond: number;
  batchReadBlobsPerSecond: number;
  vmRssBytes: number;
  vmHwmBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  /** Time from spawning `granary serve` on the filled data to its "serving on" line. */
  reopenSeconds: number;
  vmRssAfterReopenBytes: number;
  /** The same for the --before-granary build, restarted on the same data just before; absent without it. */
  reopenBeforeSeconds?: number;
  vmRssAfterReopenBeforeBytes?: number;
}

export interface ConcurrencyPoint {
  x: number;
  value: number;
  unit: string;
}

export interface StoreScalingFigures {
  date: string;
  loadAverageAtStart: number;
  loadAverageAtEnd: number;
  command: string;
  goVersion: string;
  durationMs: number;
  sizes: StoreSizePoint[];
  concurrency: { atGib: number; figures: Record<string, ConcurrencyPoint[]> };
  /** The --before-granary build, if any. */
  beforeGranary?: string;
}

class MeasuredServer {
  private server: GranaryServe | undefined;

  constructor(
    private readonly data: string,
    private readonly maxSize: string,
    private readonly preload: string,
  ) {}

  get url(): string {
    return `grpc://${this.current.address}`;
  }

  get command(): string {
    return this.current.command;
  }

  get pid(): number {
    return this.current.pid;
  }

  private get current(): GranaryServe {
    if (!this.server) throw new Error('the server is not running');
    return this.server;
  }

  /** Starts the server (another build's, given its bin/granary.js); the seconds until it serves. */
  async start(granaryPath?: string): Promise<number> {
    const started = performance.now();
    this.server = await startGranaryServe({
      granaryPath,
      dataDirectory: this.data,
      workers: 0,
      ownSession: true,
      nodeArguments: ['--import', this.preload],
      extraArguments: ['--max-size', this.maxSize, '--http-listen', 'none'],
      // Opening without index files reads every segment: 2.5 to 5 s per GiB here, over 60 s at 20 GiB.
      startupTimeoutMs: 30 * 60_000,
    });
    return (performance.now() - started) / 1000;
  }

  async stop(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  async memory(): Promise<ProcessMemory> {
    return parseProcStatus(await readFile(`/proc/${this.pid}/status`, 'utf8'));
  }

  async heap(memoryFile: string): Promise<NodeJS.MemoryUsage> {
    await rm(memoryFile, { force: true });
    process.kill(this.pid, 'SIGUSR2');
    for (let attempt = 0; attempt < 100; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const written = await stat(memoryFile).catch(() => undefined);
      if (written && written.size > 0) return JSON.parse(await readFile(memoryFile, 'utf8')) as NodeJS.MemoryUsage;
    }
    throw new Error('the server did not report its heap within 5 s');
  }
}

async function diskBytes(directory: string): Promise<number> {
  const { stdout } = await promisify(execFile)('du', ['-sb', directory]);
  return Number(stdout.split('\t')[0]);
}

async function concurrencySweep(
  client: LoadClient,
  server: MeasuredServer,
  durationMs: number,
): Promise<{ figures: Record<string, ConcurrencyPoint[]>; uploadedBytes: number }> {
  const figures: Record<string, ConcurrencyPoint[]> = {};
  let uploadedBytes = 0;
  for (const figure of CONCURRENCY_FIGURES) {
    figures[figure] = [];
    for (const clients of CLIENT_COUNTS) {
      const options = { durationMs, largeBlobs: 1, actions: 1, concurrency: clients, serverPids: [server.pid] };
      await measureFigure(client, server.url, figure, { ...options, warmUp: true });
      const result = await measureFigure(client, server.url, figure, options);
      if (figure === 'batch-update') uploadedBytes += Math.round(result.value * result.seconds) * BLOB_BYTES;
      figures[figure]?.push({ x: clients, value: result.value, unit: result.unit });
      console.error(`${figure}, ${clients} in flight: ${result.value.toFixed(0)} ${result.unit}`);
    }
  }
  return { figures, uploadedBytes };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      sizes: { type: 'string', default: '1,2,5,10' },
      'duration-ms': { type: 'string', default: '3000' },
      'before-granary': { type: 'string' },
    },
  });
  const beforeGranary = values['before-granary'];
  if (!values.out) throw new Error('--out FILE is required');
  const sizes = parseSizes(values.sizes as string);
  const durationMs = Number(values['duration-ms']);
  const directory = await mkdtemp(join(tmpdir(), 'granary-store-scaling-'));
  const memoryFile = join(directory, 'memory.json');
  process.env.GRANARY_BENCH_MEMORY_FILE = memoryFile;
  const preload = join(directory, 'memory-preload.mjs');
  await writeFile(preload, MEMORY_PRELOAD);
  const maxSize = `${Math.ceil((sizes.at(-1) as number) * MAX_SIZE_PER_STORED_GIB)}GiB`;
  const server = new MeasuredServer(join(directory, 'data'), maxSize, preload);
  const figures: StoreScalingFigures = {
    date: new Date().toISOString(),
    loadAverageAtStart: loadavg()[0] as number,
    loadAverageAtEnd: 0,
    command: '',
    goVersion: '',
    durationMs,
    sizes: [],
    concurrency: { atGib: sizes[0] as number, figures: {} },
    beforeGranary,
  };
  try {
    const client = await buildLoadClient(directory);
    if ('unavailable' in client) throw new Error(client.unavailable);
    figures.goVersion = client.goVersion;
    await server.start();
    figures.command = server.command;
    let storedBytes = 0;
    for (const gib of sizes) {
      const missingBytes = Math.round(gib * GIB - storedBytes);
      const fill =
        missingBytes > 0
          ? await fillStore(client, server.url, missingBytes, FILL_CONCURRENCY)
          : { blobs: 0, bytes: 0, seconds: 0 };
      storedBytes += fill.bytes;
      console.error(
        `filled to ${(storedBytes / GIB).toFixed(2)} GiB at ${(fill.bytes / 1e6 / fill.seconds).toFixed(0)} MB/s`,
      );
      if (figures.sizes.length === 0) {
        const sweep = await concurrencySweep(client, server, durationMs);
        figures.concurrency.figures = sweep.figures;
        storedBytes += sweep.uploadedBytes;
      }
      const options = { durationMs, largeBlobs: 1, actions: 1, serverPids: [server.pid] };
      await measureFigure(client, server.url, 'find-missing', { ...options, warmUp: true });
      const findMissing = await measureFigure(client, server.url, 'find-missing', options);
      await measureFigure(client, server.url, 'batch-read', { ...options, warmUp: true });
      const batchRead = await measureFigure(client, server.url, 'batch-read', options);
      const memory = await server.memory();
      const heap = await server.heap(memoryFile);
      await server.stop();
      let before: { seconds: number; vmRssBytes: number } | undefined;
      if (beforeGranary) {
        const seconds = await server.start(beforeGranary);
        before = { seconds, vmRssBytes: (await server.memory()).vmRssBytes };
        await server.stop();
        console.error(`restart of ${beforeGranary}: ${seconds.toFixed(1)} s`);
      }
      const reopenSeconds = await server.start();
      const afterReopen = await server.memory();
      const point: StoreSizePoint = {
        gib,
        storedBytes,
        diskBytes: await diskBytes(join(directory, 'data')),
        fillMBps: fill.seconds > 0 ? fill.bytes / 1e6 / fill.seconds : 0,
        findMissingDigestsPerSecond: findMissing.value,
        batchReadBlobsPerSecond: batchRead.value,
        vmRssBytes: memory.vmRssBytes,
        vmHwmBytes: memory.vmHwmBytes,
        heapUsedBytes: heap.heapUsed,
        heapTotalBytes: heap.heapTotal,
        reopenSeconds,
        vmRssAfterReopenBytes: afterReopen.vmRssBytes,
        reopenBeforeSeconds: before?.seconds,
        vmRssAfterReopenBeforeBytes: before?.vmRssBytes,
      };
      figures.sizes.push(point);
      console.error(JSON.stringify(point));
      // Written after every size, so a run cut short keeps what it measured.
      figures.loadAverageAtEnd = loadavg()[0] as number;
      await writeFile(values.out, `${JSON.stringify(figures, null, 2)}\n`);
    }
  } finally {
    await server.stop();
    await rm(directory, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
