/**
 * Storage benchmark: ByteStream uploads and downloads, BatchUpdateBlobs,
 * FindMissingBlobs and GetActionResult against a server with the disk backend,
 * over loopback. Every upload uses blobs the server has not seen.
 */
import { join } from 'node:path';
import { connect, unary } from '../src/client/connection.js';
import { chunked, GrpcBlobStore } from '../src/client/grpcBlobStore.js';
import { backgroundContext } from '../src/context/requestContext.js';
import { type Digest, digestOf } from '../src/digest/digest.js';
import { ActionCacheClient, ActionResult } from '../src/gen/build/bazel/remote/execution/v2/remote_execution.js';
import { dial } from '../src/grpc/dial.js';
import { putChunks } from '../src/storage/blobStore.js';
import type { BenchContext, BenchModule } from './module.js';
import { formatPercent, type Unit } from './report.js';
import { startBenchServer } from './server.js';
import { absentDigest, FreshBlobs, KiB, MiB, maximum, median, randomBlobs, sustained, timeSeconds } from './util.js';

/** The context of every storage call in these tests. */
const requestContext = backgroundContext();

const CAS_SIZE_BYTES = 8 * 1024 * MiB;
const GROUP = 'storage';

/** Targets (see the report): 64 MiB uploads in 1 MiB chunks and FindMissingBlobs. */
export const UPLOAD_TARGET_SHA256_FRACTION = 0.35;
export const FIND_MISSING_TARGET_DIGESTS_PER_SECOND = 200_000;

export const storageBenchmark: BenchModule = {
  name: 'storage',
  title: 'Storage: CAS, ByteStream and Action Cache over loopback',
  run: async (context) => {
    const server = await startBenchServer({
      dataDirectory: join(context.directory, 'storage-server'),
      maximumSizeBytes: CAS_SIZE_BYTES,
      inProcess: context.options.inProcess,
      backend: context.options.memoryBackend ? 'memory' : 'disk',
      nodeArguments: context.options.serverNodeArguments,
    });
    context.log(`server: ${server.description}`);
    context.log(`server address: ${server.address}`);
    const connection = connect(`grpc://${server.address}`);
    try {
      const bench = new StorageBench(context, new GrpcBlobStore(connection));
      await bench.warmUp();
      await bench.uploads();
      await bench.downloads();
      await bench.batchUpdate();
      await bench.findMissing();
      await bench.getActionResult(server.address);
    } finally {
      connection.close();
      await server.close();
    }
  },
};

class StorageBench {
  private readonly runs: number;
  private readonly durationMs: number;
  private readonly smallUploaded: Digest[] = [];
  private readonly largeUploaded: Digest[] = [];
  private readonly batchUploaded: Digest[] = [];

  constructor(
    private readonly context: BenchContext,
    private readonly store: GrpcBlobStore,
  ) {
    this.runs = context.options.quick ? 3 : 9;
    this.durationMs = context.options.quick ? 1500 : 5000;
  }

  /** Opens the connection and warms the JIT on both sides before anything is timed. */
  async warmUp(): Promise<void> {
    const blobs = new FreshBlobs(8 * MiB);
    for (let i = 0; i < 3; i++) {
      const { digest, data } = blobs.next();
      await putChunks(requestContext, this.store, digest, chunked(data, MiB));
      await this.readAll(digest);
    }
    await this.store.putBatch(requestContext, randomBlobs(50, 4 * KiB));
    await this.store.findMissing(requestContext, [absentDigest()]);
  }

  /**
   * The three upload shapes take turns run by run, so that a burst of noise from
   * other processes lands on all of them rather than on one.
   */
  async uploads(): Promise<void> {
    this.context.report.section('ByteStream Write (fresh random blobs)');
    const smallPerRun = 32;
    const large = new FreshBlobs(64 * MiB);
    const rates = { small: [] as number[], large1MiB: [] as number[], large16KiB: [] as number[] };
    for (let run = 0; run < this.runs; run++) {
      const blobs = randomBlobs(smallPerRun, MiB);
      const seconds = await timeSeconds(async () => {
        for (const { digest, data } of blobs) await putChunks(requestContext, this.store, digest, [data]);
      });
      this.smallUploaded.push(...blobs.map((b) => b.digest));
      rates.small.push((smallPerRun * MiB) / 1e6 / seconds);
      for (const [chunkBytes, into] of [
        [MiB, rates.large1MiB],
        [16 * KiB, rates.large16KiB],
      ] as const) {
        const { digest, data } = large.next();
        const elapsed = await timeSeconds(() =>
          putChunks(requestContext, this.store, digest, chunked(data, chunkBytes)),
        );
        this.largeUploaded.push(digest);
        into.push(data.length / 1e6 / elapsed);
      }
    }
    const diskNote = (values: number[]) =>
      `${formatPercent(median(values) / this.context.baseline.diskWriteMBps)} of raw disk write`;
    this.record(`upload 1 MiB blobs (one message each, ${smallPerRun} sequential)`, 'MB/s', rates.small);
    this.record(
      'upload 64 MiB blob in 1 MiB chunks',
      'MB/s',
      rates.large1MiB,
      { minimum: UPLOAD_TARGET_SHA256_FRACTION, relativeToSha256: true },
      diskNote(rates.large1MiB),
    );
    this.record(
      'upload 64 MiB blob in 16 KiB chunks',
      'MB/s',
      rates.large16KiB,
      undefined,
      `the chunk size Bazel sends; ${diskNote(rates.large16KiB)}`,
    );
  }

  async downloads(): Promise<void> {
    this.context.report.section('ByteStream Read');
    const perRun = 32;
    const small: number[] = [];
    for (let run = 0; run < this.runs; run++) {
      const digests = this.smallUploaded.slice(run * perRun, (run + 1) * perRun);
      const seconds = await timeSeconds(async () => {
        for (const digest of digests) await this.readAll(digest);
      });
      small.push((digests.length * MiB) / 1e6 / seconds);
    }
    this.record(`download 1 MiB blobs (${perRun} sequential)`, 'MB/s', small);
    const large: number[] = [];
    for (let run = 0; run < this.runs; run++) {
      const digest = this.largeUploaded[run % this.largeUploaded.length] as Digest;
      const seconds = await timeSeconds(() => this.readAll(digest));
      large.push(digest.sizeBytes / 1e6 / seconds);
    }
    this.record('download 64 MiB blob', 'MB/s', large, undefined, 'server streams 1 MiB messages');
  }

  async batchUpdate(): Promise<void> {
    this.context.report.section('BatchUpdateBlobs');
    const batchSize = 500;
    const batches = this.context.options.quick ? 8 : 20;
    const rates: number[] = [];
    for (let i = 0; i < batches; i++) {
      const blobs = randomBlobs(batchSize, 4 * KiB);
      const seconds = await timeSeconds(() => this.store.putBatch(requestContext, blobs));
      this.batchUploaded.push(...blobs.map((b) => b.digest));
      rates.push(batchSize / seconds);
    }
    this.record(`4 KiB blobs, batches of ${batchSize}, one batch at a time`, 'blobs/s', rates);
  }

  async findMissing(): Promise<void> {
    this.context.report.section('FindMissingBlobs');
    const requestSize = 10_000;
    const present = this.batchUploaded;
    const requests = this.context.options.quick ? 10 : 30;
    const rates: number[] = [];
    for (let i = 0; i < requests; i++) {
      // Half present (stored by the batch benchmark), half absent, shuffled.
      const digests: Digest[] = [];
      for (let j = 0; j < requestSize / 2; j++) {
        digests.push(present[(i * 1237 + j * 7) % present.length] as Digest, absentDigest(4 * KiB));
      }
      let missing: Digest[] = [];
      const seconds = await timeSeconds(async () => {
        missing = await this.store.findMissing(requestContext, digests);
      });
      if (missing.length !== requestSize / 2) {
        throw new Error(`FindMissingBlobs reported ${missing.length} missing, expected ${requestSize / 2}`);
      }
      rates.push(requestSize / seconds);
    }
    this.record(
      `${requestSize.toLocaleString('en-US')}-digest requests, half present, one at a time`,
      'digests/s',
      rates,
      { minimum: FIND_MISSING_TARGET_DIGESTS_PER_SECOND },
    );
  }

  async getActionResult(address: string): Promise<void> {
    this.context.report.section('GetActionResult');
    const outputs = randomBlobs(4, 2 * KiB);
    await this.store.putBatch(requestContext, outputs);
    const actionDigest = digestOf(`bench action ${Date.now()} ${Math.random()}`);
    const result = ActionResult.fromPartial({
      outputFiles: outputs
        .slice(0, 3)
        .map((o, i) => ({ path: `out/file${i}.o`, digest: o.digest, isExecutable: false })),
      stdoutDigest: outputs[3]?.digest,
      exitCode: 0,
    });
    const clients = 8;
    const connections = Array.from(
      { length: clients },
      // A local subchannel pool gives each client its own HTTP/2 connection.
      () =>
        dial(`grpc://${address}`, { channelOptions: { 'grpc.use_local_subchannel_pool': 1 } }).client(
          ActionCacheClient,
        ),
    );
    try {
      const first = connections[0] as ActionCacheClient;
      await unary((done) =>
        first.updateActionResult(
          { instanceName: '', actionDigest, actionResult: result, resultsCachePolicy: undefined, digestFunction: 1 },
          done,
        ),
      );
      const get = async (worker: number) => {
        const client = connections[worker] as ActionCacheClient;
        const response = await unary<ActionResult>((done) =>
          client.getActionResult(
            {
              instanceName: '',
              actionDigest,
              inlineStdout: false,
              inlineStderr: false,
              inlineOutputFiles: [],
              digestFunction: 1,
            },
            done,
          ),
        );
        if (response.outputFiles.length !== 3) throw new Error('GetActionResult returned an unexpected result');
        return 1;
      };
      // Warm up every connection, then hammer.
      await Promise.all(connections.map((_, worker) => get(worker)));
      await sustained(Math.min(1000, this.durationMs / 2), clients, get);
      const rates: number[] = [];
      const rounds = this.context.options.quick ? 1 : 3;
      for (let round = 0; round < rounds; round++) rates.push(await sustained(this.durationMs / rounds, clients, get));
      this.record(`${clients} concurrent clients, each on its own connection`, 'hits/s', rates);
    } finally {
      for (const client of connections) client.close();
    }
  }

  private async readAll(digest: Digest): Promise<void> {
    let received = 0;
    for await (const chunk of this.store.read(requestContext, digest)) received += chunk.length;
    if (received !== digest.sizeBytes) throw new Error(`read ${received} of ${digest.sizeBytes} bytes`);
  }

  private record(
    name: string,
    unit: Unit,
    rates: number[],
    target?: { minimum: number; relativeToSha256?: boolean },
    note?: string,
  ): void {
    this.context.report.record({
      group: GROUP,
      name,
      unit,
      value: median(rates),
      best: maximum(rates),
      runs: rates.length,
      target,
      note,
    });
  }
}
