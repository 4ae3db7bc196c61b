/**
 * The Go load client of the side-by-side benchmark (bench/reapi-load): built
 * with `go build` at bench time (its dependencies come from the Go module
 * proxy), then run once per measurement so that every server gets a fresh
 * client process, and once as the null sink that shows the client's ceiling.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const SOURCE_DIRECTORY = fileURLToPath(new URL('../../bench/reapi-load', import.meta.url));
const BUILD_TIMEOUT_MS = 15 * 60_000;
const MEASURE_TIMEOUT_MS = 10 * 60_000;
/** A fill of tens of GiB at BatchUpdate speed takes minutes. */
const FILL_TIMEOUT_MS = 60 * 60_000;
const run = promisify(execFile);

export interface LoadClient {
  path: string;
  /** `go version`, for the report. */
  goVersion: string;
}

/** One figure measured once against one server, as reapi-load prints it. */
export interface FigureResult {
  figure: string;
  unit: string;
  value: number;
  seconds: number;
  /** CPU seconds the client process used while measuring (1.0 per second = one core). */
  clientCpuSeconds: number;
  /** CPU seconds the server's processes (FigureOptions.serverPids) used while measuring. */
  serverCpuSeconds?: number;
  p50Ms?: number;
  p99Ms?: number;
  detail: string;
}

export interface FigureOptions {
  durationMs: number;
  /** 64 MiB blobs per ByteStream run. */
  largeBlobs: number;
  /** Actions per execute run. */
  actions: number;
  /** A short unrecorded run that warms both sides up. */
  warmUp?: boolean;
  /** Processes whose CPU time counts as the server's. */
  serverPids?: readonly number[];
  /** Requests in flight; the figure's default when absent. */
  concurrency?: number;
}

export interface ServerCapabilities {
  executionEnabled: boolean;
  lowApiVersion: string;
  highApiVersion: string;
}

/** Builds the client into `outputDirectory`; says why not when Go is missing or the build fails. */
export async function buildLoadClient(outputDirectory: string): Promise<LoadClient | { unavailable: string }> {
  const path = join(outputDirectory, 'reapi-load');
  try {
    const { stdout } = await run('go', ['version'], { cwd: SOURCE_DIRECTORY });
    await run('go', ['build', '-o', path, '.'], { cwd: SOURCE_DIRECTORY, timeout: BUILD_TIMEOUT_MS });
    return { path, goVersion: stdout.trim() };
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === 'ENOENT') return { unavailable: 'Go is not installed (no `go` on PATH)' };
    return { unavailable: `go build in ${SOURCE_DIRECTORY} failed: ${failure.stderr?.trim() || failure.message}` };
  }
}

export async function serverCapabilities(client: LoadClient, url: string): Promise<ServerCapabilities> {
  return JSON.parse(await runClient(client, ['capabilities', '--target', url])) as ServerCapabilities;
}

export async function measureFigure(
  client: LoadClient,
  url: string,
  figure: string,
  options: FigureOptions,
): Promise<FigureResult> {
  const args = ['measure', '--target', url, '--figure', figure, '--duration-ms', String(options.durationMs)];
  args.push('--blobs', String(options.largeBlobs), '--actions', String(options.actions));
  if (options.warmUp) args.push('--warm-up');
  if (options.concurrency !== undefined) args.push('--concurrency', String(options.concurrency));
  if (options.serverPids && options.serverPids.length > 0) args.push('--server-pids', options.serverPids.join(','));
  return JSON.parse(await runClient(client, args)) as FigureResult;
}

export interface FillResult {
  blobs: number;
  bytes: number;
  seconds: number;
}

/** Uploads `bytes` of fresh 4 KiB blobs with BatchUpdateBlobs, `concurrency` requests in flight. */
export async function fillStore(
  client: LoadClient,
  url: string,
  bytes: number,
  concurrency: number,
): Promise<FillResult> {
  const args = ['fill', '--target', url, '--bytes', String(bytes), '--concurrency', String(concurrency)];
  return JSON.parse(await runClient(client, args, FILL_TIMEOUT_MS)) as FillResult;
}

async function runClient(client: LoadClient, args: string[], timeoutMs = MEASURE_TIMEOUT_MS): Promise<string> {
  try {
    const { stdout } = await run(client.path, args, { timeout: timeoutMs, maxBuffer: 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failure = error as Error & { stderr?: string };
    throw new Error(failure.stderr?.trim() || failure.message);
  }
}

export interface NullSink {
  url: string;
  close(): Promise<void>;
}

/** Starts `reapi-load sink` on a free loopback port. */
export function startNullSink(client: LoadClient): Promise<NullSink> {
  return startSinkProcess(client.path, ['sink', '--listen', '127.0.0.1:0']);
}

const NODE_NULL_SINK = fileURLToPath(new URL('./nodeNullSink.js', import.meta.url));

/** Starts the Node null sink (bench/nodeNullSink.ts) on a free loopback port. */
export function startNodeNullSink(): Promise<NullSink> {
  return startSinkProcess(process.execPath, [NODE_NULL_SINK, '--listen', '127.0.0.1:0']);
}

/** Runs a sink that prints "serving on HOST:PORT" once it listens. */
async function startSinkProcess(command: string, args: string[]): Promise<NullSink> {
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      const match = /serving on (\S+:\d+)/.exec(line);
      if (match) resolve(match[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`${command} ${args[0]} exited with ${code}`)));
  });
  return {
    url: `grpc://${address}`,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
