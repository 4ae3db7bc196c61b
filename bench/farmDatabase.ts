/**
 * `node dist-test/bench/farmDatabase.js --url postgresql://...`: what one action costs the
 * farm's PostgreSQL, the one part every frontend shares, for the capacity model in
 * docs/scaling.md. Through the scheduler a frontend uses (openScheduler over a
 * PostgresDatabase), it runs the database's share of each action's life: submit, a worker
 * taking it, completion, then an action-cache write and read (PostgresRecordStore), with
 * `--concurrency` actions in flight, and reports actions/s, committed transactions per
 * action (pg_stat_database) and bytes per operation and per action-cache record (table
 * sizes over row counts). Use an empty database: it creates the tables. Not a test.
 *
 * Flags: --url URL (required), --actions N (2000), --concurrency C (16), --record-bytes B (300).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { backgroundContext } from '../src/context/requestContext.js';
import { PostgresDatabase } from '../src/database/postgresDatabase.js';
import { digestOf } from '../src/digest/digest.js';
import { openScheduler } from '../src/execution/openScheduler.js';
import { ExecuteResponse } from '../src/gen/build/bazel/remote/execution/v2/remote_execution.js';
import { getBuffer, putBuffer } from '../src/storage/blobStore.js';
import { PostgresRecordStore } from '../src/storage/postgresRecordStore.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    actions: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '16' },
    'record-bytes': { type: 'string', default: '300' },
  },
});
if (!values.url) throw new Error('--url postgresql://... is required');
const actions = Number(values.actions);
const concurrency = Number(values.concurrency);
const recordBytes = Number(values['record-bytes']);
const context = backgroundContext();

const database = await PostgresDatabase.open({ url: values.url });
const scheduler = await openScheduler({ database, workerTimeoutMs: 600_000 });
const records = new PostgresRecordStore(database, { namespace: 'action-cache', maximumSizeBytes: 1 << 30 });
const runId = randomBytes(4).toString('hex');

async function commits(): Promise<number> {
  const [row] = await database.query<{ commits: string }>(
    context,
    'SELECT xact_commit AS commits FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number(row?.commits ?? 0);
}

/** The database's part of one action: queued, taken by a worker, completed, its result cached and read back. */
async function oneAction(index: number, workerId: string): Promise<void> {
  const actionDigest = digestOf(`action ${runId} ${index}`);
  await scheduler.submit(context, {
    instanceName: '',
    digestFunction: 1,
    actionDigest,
    platform: [],
    priority: 0,
    clientKey: `client ${index % 4}`,
    doNotCache: false,
    timeoutMs: 60_000,
  });
  const [assignment] = await scheduler.take(context, workerId, 1);
  if (!assignment) throw new Error('the worker was given nothing');
  const response = ExecuteResponse.fromPartial({
    result: { exitCode: 0, stdoutDigest: digestOf(`stdout ${index}`) },
    status: { code: 0, message: '', details: [] },
  });
  await scheduler.complete(context, workerId, assignment.operationName, response);
  await putBuffer(context, records, actionDigest, randomBytes(recordBytes));
  if (!(await getBuffer(context, records, actionDigest))) throw new Error('the cached result is gone');
}

for (let lane = 0; lane < concurrency; lane++) await scheduler.heartbeat(context, `worker-${lane}`, []);
const commitsBefore = await commits();
const startedMs = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async (_, lane) => {
    while (next < actions) await oneAction(next++, `worker-${lane}`);
  }),
);
const elapsedSeconds = (performance.now() - startedMs) / 1000;
const committed = (await commits()) - commitsBefore;
const [sizes] = await database.query<{
  operations: string;
  operation_rows: string;
  records: string;
  record_rows: string;
}>(
  context,
  `SELECT pg_total_relation_size('granary_operations') AS operations,
          (SELECT count(*) FROM granary_operations) AS operation_rows,
          pg_total_relation_size('granary_records') AS records,
          (SELECT count(*) FROM granary_records) AS record_rows`,
);
console.log(`actions: ${actions}, ${concurrency} in flight, ${elapsedSeconds.toFixed(1)} s`);
console.log(`actions/s: ${(actions / elapsedSeconds).toFixed(0)}`);
console.log(`committed transactions per action: ${(committed / actions).toFixed(1)}`);
console.log(
  `bytes per operation (table + indexes): ${(Number(sizes?.operations) / Number(sizes?.operation_rows)).toFixed(0)}`,
);
console.log(
  `bytes per action-cache record of ${recordBytes} B (table + indexes): ${(Number(sizes?.records) / Number(sizes?.record_rows)).toFixed(0)}`,
);
await records.close();
await scheduler.close();
await database.close();
