/**
 * Starts the storage server under test: startStorageServer with the disk backend
 * for the CAS and the Action Cache. By default it runs in a child process
 * (bench/serverProcess.ts), so the benchmark client and the server do not share
 * an event loop; `inProcess` runs it in this process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type StorageServerConfig, startStorageServer } from '../src/server/storageServer.js';

export interface BenchServer {
  address: string;
  /** How the server runs, for the report. */
  description: string;
  close(): Promise<void>;
}

export type BenchBackend = 'disk' | 'memory';

export interface BenchServerOptions {
  dataDirectory: string;
  /** CAS size limit. */
  maximumSizeBytes: number;
  inProcess?: boolean;
  /** 'memory' is a diagnostic: it tells network and hashing costs from disk costs. */
  backend?: BenchBackend;
  /** Extra node flags for the child process, e.g. --cpu-prof. */
  nodeArguments?: readonly string[];
}

const SERVER_SCRIPT = fileURLToPath(new URL('./serverProcess.js', import.meta.url));
const STARTUP_TIMEOUT_MS = 30_000;
const ACTION_CACHE_BYTES = 256 * 1024 * 1024;

/** The benchmark's server configuration: CAS and Action Cache under one directory. */
export function benchServerConfig(dataDirectory: string, casBytes: number, backend: BenchBackend): StorageServerConfig {
  return {
    listen: '127.0.0.1:0',
    cas:
      backend === 'memory'
        ? { memory: { maxSizeBytes: casBytes } }
        : { disk: { path: join(dataDirectory, 'cas'), maxSizeBytes: casBytes } },
    actionCache:
      backend === 'memory'
        ? { memory: { maxSizeBytes: ACTION_CACHE_BYTES } }
        : { disk: { path: join(dataDirectory, 'ac'), maxSizeBytes: ACTION_CACHE_BYTES } },
  };
}

export async function startBenchServer(options: BenchServerOptions): Promise<BenchServer> {
  await mkdir(options.dataDirectory, { recursive: true });
  return options.inProcess ? startInProcess(options) : startChild(options);
}

function backendText(backend: BenchBackend): string {
  return backend === 'memory' ? 'MEMORY backend, diagnostic' : 'disk backend';
}

async function startInProcess(options: BenchServerOptions): Promise<BenchServer> {
  const backend = options.backend ?? 'disk';
  const server = await startStorageServer(benchServerConfig(options.dataDirectory, options.maximumSizeBytes, backend));
  return {
    address: server.address,
    description: `in-process startStorageServer (${backendText(backend)}), sharing the event loop with the client`,
    close: () => server.close(),
  };
}

async function startChild(options: BenchServerOptions): Promise<BenchServer> {
  const backend = options.backend ?? 'disk';
  const nodeArguments = options.nodeArguments ?? [];
  const args = [...nodeArguments, SERVER_SCRIPT, options.dataDirectory, String(options.maximumSizeBytes), backend];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const address = await waitForAddress(child);
    const command = ['node', ...nodeArguments, 'dist-test/bench/serverProcess.js'].join(' ');
    return {
      address,
      description: `child process running startStorageServer (${backendText(backend)}): ${command}`,
      close: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      },
    };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

function waitForAddress(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const timer = setTimeout(() => reject(new Error('the server did not start within 30 s')), STARTUP_TIMEOUT_MS);
    let found = false;
    lines.on('line', (line) => {
      // Keep draining stdout so the child never blocks on a full pipe.
      const match = /serving on (\S+:\d+)/.exec(line);
      if (match && !found) {
        found = true;
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!found) reject(new Error(`the server exited before serving (code ${code}, signal ${signal})`));
    });
  });
}
