/**
 * An in-process farm (memory stores) with one real worker and a client
 * connection: for the tests of what reaches a worker through its leases
 * (timeouts, cancellation, platform properties).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Connection, connect } from '../../src/client/connection.js';
import { GrpcBlobStore } from '../../src/client/grpcBlobStore.js';
import { type FarmConfig, type RunningFarm, startFarm } from '../../src/server/farm.js';
import { type RunningWorker, startWorker, type WorkerConfig } from '../../src/worker/workerProcess.js';

export interface FarmWithWorker {
  farm: RunningFarm;
  worker: RunningWorker;
  connection: Connection;
  /** The farm's CAS, through the connection. */
  cas: GrpcBlobStore;
  close(): Promise<void>;
}

/** Starts the farm (`farm` adds to its memory stores) and its worker (`worker` overrides one slot, no sandbox, a minute's default timeout). */
export async function startFarmWithWorker(
  name: string,
  options: { farm?: Partial<FarmConfig>; worker?: Partial<WorkerConfig> } = {},
): Promise<FarmWithWorker> {
  const scratch = mkdtempSync(join(tmpdir(), `granary-${name}-`));
  const farm = await startFarm({
    listen: '127.0.0.1:0',
    cas: { memory: { maxSizeBytes: 1 << 28 } },
    actionCache: { memory: { maxSizeBytes: 1 << 24 } },
    ...options.farm,
  });
  const worker = await startWorker({
    server: `grpc://${farm.address}`,
    instanceName: '',
    botId: name,
    slots: 1,
    platform: [],
    workDirectory: join(scratch, 'worker'),
    cacheSizeBytes: 1 << 28,
    sandbox: 'none',
    defaultTimeoutMs: 60_000,
    log: () => {},
    ...options.worker,
  }).catch(async (error: unknown) => {
    await farm.close();
    rmSync(scratch, { recursive: true, force: true });
    throw error;
  });
  const connection = connect(`grpc://${farm.address}`);
  return {
    farm,
    worker,
    connection,
    cas: new GrpcBlobStore(connection),
    close: async () => {
      connection.close();
      await worker.stop();
      await farm.close();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
