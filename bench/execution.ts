/**
 * Execution benchmarks against a real `granary serve` child process with its
 * embedded worker: Execute round trips for a cached and for a trivial uncached
 * action (p50, p99), throughput of 1,000 independent trivial actions, and the
 * worker's staging time for a 10,000-file input tree with a cold and a warm cache.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from '../src/client/connection.js';
import { executeRemotely } from '../src/client/execute.js';
import { GrpcBlobStore } from '../src/client/grpcBlobStore.js';
import { backgroundContext } from '../src/context/requestContext.js';
import { type Digest, digestOf } from '../src/digest/digest.js';
import { Action, Command, Directory } from '../src/gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type BlobStore, putBuffer } from '../src/storage/blobStore.js';
import { MemoryBlobStore } from '../src/storage/memoryBlobStore.js';
import { mapLimited } from '../src/util/concurrency.js';
import { LocalCache } from '../src/worker/localCache.js';
import { stageInputRoot } from '../src/worker/staging.js';
import { startGranaryServe } from './granaryServe.js';
import type { BenchContext, BenchModule } from './module.js';

/** The context of every storage call in these benchmarks. */
const requestContext = backgroundContext();

export const CACHED_EXECUTE_TARGET_P50_MS = 2;
export const WARM_STAGING_TARGET_MS = 500;

export const executionBenchmark: BenchModule = {
  name: 'execution',
  title: 'Execution (granary serve child process, embedded worker, loopback)',
  async run(context: BenchContext): Promise<void> {
    const { report, options } = context;
    const group = 'execution';
    const server = await startGranaryServe({ dataDirectory: join(context.directory, 'exec-data') });
    const connection = connect(`grpc://${server.address}`);
    const cas = new GrpcBlobStore(connection);
    try {
      const emptyRoot = await upload(cas, Buffer.from(Directory.encode(Directory.fromPartial({})).finish()));
      const trivial = async (salt: string) => {
        const command = await upload(
          cas,
          Buffer.from(Command.encode(Command.fromPartial({ arguments: ['true'] })).finish()),
        );
        return upload(
          cas,
          Buffer.from(
            Action.encode(
              Action.fromPartial({ commandDigest: command, inputRootDigest: emptyRoot, salt: Buffer.from(salt) }),
            ).finish(),
          ),
        );
      };

      // Cached: one execution fills the cache, then every Execute is a hit.
      const cachedAction = await trivial(`cached-${Date.now()}`);
      await executeRemotely(connection, cachedAction);
      const hits = options.quick ? 200 : 1000;
      const hitLatencies: number[] = [];
      for (let i = 0; i < hits; i++) {
        const start = performance.now();
        const response = await executeRemotely(connection, cachedAction);
        hitLatencies.push(performance.now() - start);
        if (!response.cachedResult) throw new Error('expected a cache hit');
      }
      recordLatency(context, group, 'Execute, action cache hit', hitLatencies, CACHED_EXECUTE_TARGET_P50_MS);

      const uncached = options.quick ? 20 : 60;
      const runLatencies: number[] = [];
      for (let i = 0; i < uncached; i++) {
        const action = await trivial(`uncached-${Date.now()}-${i}`);
        const start = performance.now();
        const response = await executeRemotely(connection, action);
        runLatencies.push(performance.now() - start);
        if (response.result?.exitCode !== 0) throw new Error(`trivial action failed: ${response.status?.message}`);
      }
      recordLatency(context, group, 'Execute, trivial uncached action (runs in bubblewrap)', runLatencies);

      const count = options.quick ? 200 : 1000;
      const actions = await mapLimited([...Array(count).keys()], 32, (i) => trivial(`bulk-${Date.now()}-${i}`));
      const start = performance.now();
      await mapLimited(actions, 128, (a) => executeRemotely(connection, a));
      const seconds = (performance.now() - start) / 1000;
      report.record({
        group,
        name: `${count} independent trivial actions, embedded worker`,
        unit: 'actions/s',
        value: count / seconds,
        note: `${seconds.toFixed(1)} s in all`,
      });
    } finally {
      connection.close();
      await server.close();
    }

    await stagingBenchmark(context, group);
  },
};

async function stagingBenchmark(context: BenchContext, group: string): Promise<void> {
  // The input tree lives in an in-memory CAS, so this times staging itself
  // (fetching into the local cache, laying out directories, hard links).
  const cas = new MemoryBlobStore(4 * 1024 ** 3);
  const files = 10_000;
  const perDirectory = 100;
  const directories: Array<{ name: string; digest: Digest }> = [];
  for (let d = 0; d < files / perDirectory; d++) {
    const fileNodes = [];
    for (let f = 0; f < perDirectory; f++) {
      const data = Buffer.from(`file ${d}/${f} ${'x'.repeat((d * 7 + f) % 300)}\n`);
      const digest = digestOf(data);
      await putBuffer(requestContext, cas, digest, data);
      fileNodes.push({ name: `f${String(f).padStart(3, '0')}.txt`, digest, isExecutable: f % 10 === 0 });
    }
    const data = Buffer.from(Directory.encode(Directory.fromPartial({ files: fileNodes })).finish());
    const digest = digestOf(data);
    await putBuffer(requestContext, cas, digest, data);
    directories.push({ name: `d${String(d).padStart(3, '0')}`, digest });
  }
  const rootData = Buffer.from(Directory.encode(Directory.fromPartial({ directories })).finish());
  const root = digestOf(rootData);
  await putBuffer(requestContext, cas, root, rootData);

  const cacheDirectory = join(context.directory, 'staging-cache');
  const cache = await LocalCache.open({ directory: cacheDirectory, maximumSizeBytes: 2 * 1024 ** 3 });
  try {
    const time = async (name: string) => {
      const destination = join(context.directory, `staged-${name}`);
      const start = performance.now();
      await stageInputRoot(requestContext, { cas, cache, rootDigest: root, destination });
      const ms = performance.now() - start;
      await rm(destination, { recursive: true, force: true });
      return ms;
    };
    const cold = await time('cold');
    const warm: number[] = [];
    for (let i = 0; i < 3; i++) warm.push(await time(`warm-${i}`));
    context.report.record({
      group,
      name: `stage ${files} files, cold worker cache`,
      unit: 'ms',
      value: cold,
      lowerIsBetter: true,
    });
    context.report.record({
      group,
      name: `stage ${files} files, warm worker cache`,
      unit: 'ms',
      value: median(warm),
      best: Math.min(...warm),
      runs: warm.length,
      lowerIsBetter: true,
      target: { maximum: WARM_STAGING_TARGET_MS },
    });
  } finally {
    await cache.close();
  }
}

function recordLatency(
  context: BenchContext,
  group: string,
  name: string,
  latencies: number[],
  targetP50?: number,
): void {
  const sorted = [...latencies].sort((a, b) => a - b);
  const p50 = sorted[Math.floor(sorted.length * 0.5)] as number;
  const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] as number;
  context.report.record({
    group,
    name: `${name}, p50`,
    unit: 'ms',
    value: p50,
    lowerIsBetter: true,
    ...(targetP50 !== undefined ? { target: { maximum: targetP50 } } : {}),
    note: `${latencies.length} calls`,
  });
  context.report.record({ group, name: `${name}, p99`, unit: 'ms', value: p99, lowerIsBetter: true });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function upload(cas: BlobStore, data: Buffer): Promise<Digest> {
  const digest = digestOf(data);
  await putBuffer(requestContext, cas, digest, data);
  return digest;
}
