/**
 * The operation store of a farm with several frontends: operations, the queue and
 * the workers in PostgreSQL, each method one transaction, so any number of
 * frontends sharing the database schedule as one (see schema.ts for the tables).
 *
 * - Claiming locks queued rows with `SELECT ... FOR UPDATE SKIP LOCKED`, so
 *   frontends claiming at once never hand one operation to two workers and never
 *   wait for each other. Matching and order follow the SchedulingPolicy exactly:
 *   the distinct platforms waiting are few, so the policy judges each (may this
 *   worker take it, how many of its preferences it misses) and the database orders
 *   the rows by priority, those misses, fair sequence and arrival.
 * - In-flight deduplication is a unique index on the dedupe key of unfinished
 *   operations; fairness counters live in two small tables.
 * - Every change is announced with NOTIFY inside its transaction (see
 *   PostgresNotifier): other frontends hear of it exactly when it commits.
 * - Calls survive a database restart (PostgresDatabase retries them), and every
 *   transaction is safe to run again after an attempt whose COMMIT was lost: new
 *   operations have their names and claims their tokens chosen before the first
 *   attempt, and later attempts first look for what an earlier one committed.
 *
 * Times are the callers' clocks (the frontends'), which must agree to well within
 * the worker timeout (NTP). All frontends must use the same --platform-match rules.
 */
import { randomUUID } from 'node:crypto';
import type { RequestContext } from '../context/requestContext.js';
import type { PostgresDatabase, Transaction } from '../database/postgresDatabase.js';
import { ADVISORY_LOCKS, CHANNELS } from '../database/schema.js';
import { ExecuteResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { decodePageToken, encodePageToken } from './operationQuery.js';
import type { Enqueued, OperationPage, OperationQuery, OperationStore, PlatformQueue } from './operationStore.js';
import type { SchedulingPolicy } from './schedulingPolicy.js';
import type { ActionRequest, OperationRecord, PlatformProperty, Stage, WorkerRecord } from './types.js';

/** A row of granary_operations as read back. */
interface OperationRow {
  name: string;
  stage: Stage;
  request: ActionRequest;
  queued_at_ms: string;
  worker_id: string | null;
  attempts: number;
  started_at_ms: string | null;
  completed_at_ms: string | null;
  response: Buffer | null;
  version: number;
  fair_sequence: string;
}

interface WorkerRow {
  id: string;
  bot_id: string | null;
  properties: PlatformProperty[];
  slots: number | null;
  last_seen_ms: string;
  draining: boolean;
  gone_at_ms: string | null;
}

const OPERATION_COLUMNS =
  'name, stage, request, queued_at_ms, worker_id, attempts, started_at_ms, completed_at_ms, response, version, fair_sequence';

/** Most operations one listing page returns. */
const MAXIMUM_PAGE_SIZE = 10_000;

export class PostgresOperationStore implements OperationStore {
  constructor(
    private readonly database: PostgresDatabase,
    private readonly policy: SchedulingPolicy,
  ) {}

  async enqueue(context: RequestContext, request: ActionRequest, nowMs: number): Promise<Enqueued> {
    const name = newOperationName();
    // The policy's key separates its parts with NUL, which text columns refuse: stored as bytes.
    const policyKey = this.policy.dedupeKey(request);
    const dedupeKey = policyKey === undefined ? null : Buffer.from(policyKey);
    return this.database.transaction(context, async (tx) => {
      if (tx.attempt > 0) {
        const mine = await selectOperation(tx, name);
        if (mine) return { operation: mine, created: true };
      }
      // Normally one pass; another one only if an identical action was queued by another frontend meanwhile.
      for (let pass = 0; pass < 3; pass++) {
        if (dedupeKey !== null) {
          const joined = await this.join(tx, dedupeKey, request.priority);
          if (joined) return { operation: joined, created: false };
        }
        const fairSequence = await this.takeFairSequence(tx, request.clientKey);
        const rows = await tx.query<OperationRow>(
          `INSERT INTO granary_operations
             (name, stage, request, platform_key, priority, client_key, dedupe_key, queued_at_ms, version, fair_sequence)
           VALUES ($1, 'QUEUED', $2, $3, $4, $5, $6, $7, 1, $8)
           ON CONFLICT (dedupe_key) WHERE stage <> 'COMPLETED' DO NOTHING
           RETURNING ${OPERATION_COLUMNS}`,
          [
            name,
            JSON.stringify(request),
            platformKey(request.platform),
            request.priority,
            request.clientKey,
            dedupeKey,
            nowMs,
            fairSequence,
          ],
        );
        const created = rows[0];
        if (created) {
          const operation = recordOf(created);
          await announce(tx, [operation], true);
          return { operation, created: true };
        }
      }
      throw new Error(`could not queue or join the action ${policyKey}`);
    });
  }

  async insertCompleted(
    context: RequestContext,
    request: ActionRequest,
    response: ExecuteResponse,
    nowMs: number,
  ): Promise<OperationRecord> {
    const name = newOperationName();
    return this.database.transaction(context, async (tx) => {
      if (tx.attempt > 0) {
        const mine = await selectOperation(tx, name);
        if (mine) return mine;
      }
      // A cache hit never waits in the queue: no fair sequence, no dedupe key.
      const rows = await tx.query<OperationRow>(
        `INSERT INTO granary_operations
           (name, stage, request, platform_key, priority, client_key, dedupe_key, queued_at_ms,
            completed_at_ms, response, version, fair_sequence)
         VALUES ($1, 'COMPLETED', $2, $3, $4, $5, NULL, $6, $6, $7, 1, 0)
         RETURNING ${OPERATION_COLUMNS}`,
        [
          name,
          JSON.stringify(request),
          platformKey(request.platform),
          request.priority,
          request.clientKey,
          nowMs,
          encodeResponse(response),
        ],
      );
      const operation = recordOf(rows[0] as OperationRow);
      await announce(tx, [operation], false);
      return operation;
    });
  }

  async get(context: RequestContext, name: string): Promise<OperationRecord | undefined> {
    const rows = await this.database.query<OperationRow>(
      context,
      `SELECT ${OPERATION_COLUMNS} FROM granary_operations WHERE name = $1`,
      [name],
    );
    return rows[0] ? recordOf(rows[0]) : undefined;
  }

  async list(context: RequestContext, query: OperationQuery): Promise<OperationPage> {
    const after = decodePageToken(query.pageToken);
    const conditions: string[] = [];
    const params: unknown[] = [];
    const parameter = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    if (query.stage !== undefined) conditions.push(`stage = ${parameter(query.stage)}`);
    if (query.workerId !== undefined) conditions.push(`worker_id = ${parameter(query.workerId)}`);
    if (query.toolName !== undefined) {
      conditions.push(`request->'clientMetadata'->>'toolName' = ${parameter(query.toolName)}`);
    }
    if (query.invocationId !== undefined) {
      const id = parameter(query.invocationId);
      conditions.push(
        `(request->'clientMetadata'->>'toolInvocationId' = ${id} OR request->'clientMetadata'->>'correlatedInvocationsId' = ${id})`,
      );
    }
    if (after) conditions.push(`(queued_at_ms, name) > (${parameter(after.queuedAtMs)}, ${parameter(after.name)})`);
    // Without a page size, everything (as the interface says); with one, at most MAXIMUM_PAGE_SIZE.
    const size = query.pageSize && query.pageSize > 0 ? Math.min(query.pageSize, MAXIMUM_PAGE_SIZE) : undefined;
    const rows = await this.database.query<OperationRow>(
      context,
      `SELECT ${OPERATION_COLUMNS} FROM granary_operations
       ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''}
       ORDER BY queued_at_ms, name ${size === undefined ? '' : `LIMIT ${parameter(size + 1)}`}`,
      params,
    );
    const operations = rows.slice(0, size).map(recordOf);
    const last = operations.at(-1);
    return { operations, nextPageToken: size !== undefined && rows.length > size && last ? encodePageToken(last) : '' };
  }

  async claim(context: RequestContext, workerId: string, maximum: number, nowMs: number): Promise<OperationRecord[]> {
    if (maximum <= 0) return [];
    const claimToken = randomUUID();
    return this.database.transaction(context, async (tx) => {
      if (tx.attempt > 0) {
        const earlier = await tx.query<OperationRow>(
          `SELECT ${OPERATION_COLUMNS} FROM granary_operations WHERE claim_token = $1 ORDER BY started_at_ms, arrival`,
          [claimToken],
        );
        if (earlier.length > 0) return earlier.map(recordOf);
      }
      const [workerRow] = await tx.query<WorkerRow>('SELECT * FROM granary_workers WHERE id = $1', [workerId]);
      if (!workerRow) return [];
      const worker = workerOf(workerRow);
      // The policy judges each distinct waiting platform; the database orders and locks the rows.
      const platforms = await tx.query<{ platform_key: string }>(
        `SELECT DISTINCT platform_key FROM granary_operations WHERE stage = 'QUEUED'`,
      );
      const eligible: string[] = [];
      const misses: number[] = [];
      for (const { platform_key } of platforms) {
        const platform = platformOf(platform_key);
        if (!this.policy.mayTake(worker, platform)) continue;
        eligible.push(platform_key);
        misses.push(this.policy.matcher.preferenceMisses(worker.properties, platform));
      }
      if (eligible.length === 0) return [];
      const chosen = await tx.query<{ name: string; fair_sequence: string }>(
        `SELECT o.name, o.fair_sequence
           FROM granary_operations o
           JOIN unnest($1::text[], $2::integer[]) AS judged(platform_key, misses) USING (platform_key)
          WHERE o.stage = 'QUEUED'
          ORDER BY o.priority, judged.misses, o.fair_sequence, o.arrival
          LIMIT $3
          FOR UPDATE OF o SKIP LOCKED`,
        [eligible, misses, maximum],
      );
      if (chosen.length === 0) return [];
      const names = chosen.map((row) => row.name);
      const updated = await tx.query<OperationRow>(
        `UPDATE granary_operations
            SET stage = 'EXECUTING', worker_id = $2, attempts = attempts + 1, started_at_ms = $3,
                version = version + 1, claim_token = $4
          WHERE name = ANY($1::text[])
          RETURNING ${OPERATION_COLUMNS}`,
        [names, workerId, nowMs, claimToken],
      );
      const served = Math.max(...chosen.map((row) => Number(row.fair_sequence)));
      await tx.query(
        'UPDATE granary_scheduler_state SET served_sequence = $1 WHERE singleton AND served_sequence < $1',
        [served],
      );
      const byName = new Map(updated.map((row) => [row.name, recordOf(row)]));
      const claimed = names.map((name) => byName.get(name)).filter((r): r is OperationRecord => r !== undefined);
      await announce(tx, claimed, false);
      return claimed;
    });
  }

  async complete(
    context: RequestContext,
    name: string,
    response: ExecuteResponse,
    workerId: string | undefined,
    nowMs: number,
  ): Promise<OperationRecord | undefined> {
    return this.database.transaction(context, async (tx) => {
      const [row] = await tx.query<{ stage: Stage; worker_id: string | null }>(
        'SELECT stage, worker_id FROM granary_operations WHERE name = $1 FOR UPDATE',
        [name],
      );
      if (!row || row.stage === 'COMPLETED') return undefined;
      if (workerId !== undefined && (row.stage !== 'EXECUTING' || row.worker_id !== workerId)) return undefined;
      const operation = await finish(tx, name, response, nowMs);
      // A cancelled running action: its worker, long-polling somewhere, must hear that it should stop.
      await announce(tx, [operation], row.stage === 'EXECUTING' && workerId === undefined);
      return operation;
    });
  }

  async requeue(
    context: RequestContext,
    name: string,
    workerId: string,
    countAttempt: boolean,
    nowMs: number,
  ): Promise<OperationRecord | undefined> {
    return this.database.transaction(context, async (tx) => {
      const [row] = await tx.query<{ stage: Stage; worker_id: string | null; attempts: number }>(
        'SELECT stage, worker_id, attempts FROM granary_operations WHERE name = $1 FOR UPDATE',
        [name],
      );
      if (row?.stage !== 'EXECUTING' || row.worker_id !== workerId) return undefined;
      // Given back unstarted: not a failed attempt.
      const attempts = countAttempt ? row.attempts : row.attempts - 1;
      const changed = await this.returnToQueue(tx, name, attempts, nowMs);
      await announce(tx, [changed], changed.stage === 'QUEUED');
      return changed;
    });
  }

  async requeueWorker(context: RequestContext, workerId: string, nowMs: number): Promise<OperationRecord[]> {
    return this.database.transaction(context, async (tx) => {
      const changed = await this.requeueHeldBy(tx, workerId, nowMs);
      await announce(
        tx,
        changed,
        changed.some((operation) => operation.stage === 'QUEUED'),
      );
      return changed;
    });
  }

  async expireLeases(
    context: RequestContext,
    silentSinceMs: number,
    forgetBeforeMs: number,
    nowMs: number,
  ): Promise<OperationRecord[]> {
    return this.database.transaction(context, async (tx) => {
      // Every frontend sweeps; one at a time does it, the others find the lock taken and move on.
      const [lock] = await tx.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS locked', [
        ADVISORY_LOCKS.expireLeases,
      ]);
      if (!lock?.locked) return [];
      const silent = await tx.query<{ id: string; last_seen_ms: string }>(
        `SELECT w.id, w.last_seen_ms FROM granary_workers w
          WHERE w.last_seen_ms < $1
            AND (w.last_seen_ms < $2 OR EXISTS (
                  SELECT 1 FROM granary_operations o WHERE o.stage = 'EXECUTING' AND o.worker_id = w.id))
          ORDER BY w.id
          FOR UPDATE OF w SKIP LOCKED`,
        [silentSinceMs, forgetBeforeMs],
      );
      const changed: OperationRecord[] = [];
      for (const worker of silent) {
        changed.push(...(await this.requeueHeldBy(tx, worker.id, nowMs)));
        // Kept a while longer for couldRun(); it holds no work now.
        if (Number(worker.last_seen_ms) < forgetBeforeMs) {
          await tx.query('DELETE FROM granary_workers WHERE id = $1', [worker.id]);
        }
      }
      await announce(
        tx,
        changed,
        changed.some((operation) => operation.stage === 'QUEUED'),
      );
      return changed;
    });
  }

  async delete(context: RequestContext, name: string): Promise<OperationRecord | undefined> {
    const rows = await this.database.query<OperationRow>(
      context,
      `DELETE FROM granary_operations WHERE name = $1 RETURNING ${OPERATION_COLUMNS}`,
      [name],
    );
    return rows[0] ? recordOf(rows[0]) : undefined;
  }

  async forgetCompleted(context: RequestContext, completedBeforeMs: number, keep: ReadonlySet<string>): Promise<void> {
    await this.database.transaction(context, async (tx) => {
      await tx.query(
        `DELETE FROM granary_operations
          WHERE stage = 'COMPLETED' AND completed_at_ms < $1 AND NOT (name = ANY($2::text[]))`,
        [completedBeforeMs, [...keep]],
      );
      // A client whose last sequence is behind the served one gains nothing from its row.
      await tx.query(
        `DELETE FROM granary_fair_clients
          WHERE last_sequence <= (SELECT served_sequence FROM granary_scheduler_state WHERE singleton)`,
      );
    });
  }

  async putWorker(
    context: RequestContext,
    worker: Omit<WorkerRecord, 'draining' | 'goneAtMs'>,
    _nowMs: number,
  ): Promise<void> {
    await this.database.query(
      context,
      `INSERT INTO granary_workers (id, bot_id, properties, slots, last_seen_ms)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO UPDATE
         SET bot_id = EXCLUDED.bot_id, properties = EXCLUDED.properties, slots = EXCLUDED.slots,
             last_seen_ms = EXCLUDED.last_seen_ms, gone_at_ms = NULL`,
      [worker.id, worker.botId ?? null, JSON.stringify(worker.properties), worker.slots ?? null, worker.lastSeenMs],
    );
  }

  async markWorkerGone(context: RequestContext, workerId: string, nowMs: number): Promise<boolean> {
    const rows = await this.database.query(
      context,
      'UPDATE granary_workers SET gone_at_ms = COALESCE(gone_at_ms, $2) WHERE id = $1 RETURNING id',
      [workerId, nowMs],
    );
    return rows.length > 0;
  }

  async setDraining(context: RequestContext, workerId: string, draining: boolean): Promise<boolean> {
    const rows = await this.database.query(
      context,
      'UPDATE granary_workers SET draining = $2 WHERE id = $1 RETURNING id',
      [workerId, draining],
    );
    return rows.length > 0;
  }

  async listWorkers(context: RequestContext): Promise<WorkerRecord[]> {
    const rows = await this.database.query<WorkerRow>(context, 'SELECT * FROM granary_workers ORDER BY id');
    return rows.map(workerOf);
  }

  async queues(context: RequestContext): Promise<PlatformQueue[]> {
    const rows = await this.database.query<{
      platform_key: string;
      queued: string;
      executing: string;
      oldest: string | null;
    }>(
      context,
      `SELECT platform_key,
              count(*) FILTER (WHERE stage = 'QUEUED') AS queued,
              count(*) FILTER (WHERE stage = 'EXECUTING') AS executing,
              min(queued_at_ms) FILTER (WHERE stage = 'QUEUED') AS oldest
         FROM granary_operations WHERE stage <> 'COMPLETED'
        GROUP BY platform_key ORDER BY platform_key`,
    );
    // Spellings of one platform are distinct rows here and one queue for the policy.
    const queues = new Map<string, PlatformQueue>();
    for (const row of rows) {
      const platform = platformOf(row.platform_key);
      const queueKey = this.policy.matcher.queueKey(platform);
      let queue = queues.get(queueKey);
      if (!queue) {
        queue = { queueKey, platform, queued: 0, executing: 0 };
        queues.set(queueKey, queue);
      }
      queue.queued += Number(row.queued);
      queue.executing += Number(row.executing);
      if (row.oldest !== null) {
        const oldest = Number(row.oldest);
        if (queue.oldestQueuedAtMs === undefined || oldest < queue.oldestQueuedAtMs) queue.oldestQueuedAtMs = oldest;
      }
    }
    return [...queues.values()].sort((a, b) => a.queueKey.localeCompare(b.queueKey));
  }

  /** The database belongs to whoever opened it; nothing of the store's own to release. */
  async close(): Promise<void> {}

  /** The unfinished operation with this dedupe key, its priority raised to the more urgent one; undefined when none. */
  private async join(tx: Transaction, dedupeKey: Buffer, priority: number): Promise<OperationRecord | undefined> {
    const [row] = await tx.query<OperationRow>(
      `SELECT ${OPERATION_COLUMNS} FROM granary_operations
        WHERE dedupe_key = $1 AND stage <> 'COMPLETED' FOR UPDATE`,
      [dedupeKey],
    );
    if (!row) return undefined;
    const shared = this.policy.sharedPriority(row.request.priority, priority);
    // Only a waiting operation moves up the queue; a running one is past it.
    if (row.stage !== 'QUEUED' || shared === row.request.priority) return recordOf(row);
    const [raised] = await tx.query<OperationRow>(
      `UPDATE granary_operations
          SET priority = $2, request = jsonb_set(request, '{priority}', to_jsonb($2::integer)), version = version + 1
        WHERE name = $1
        RETURNING ${OPERATION_COLUMNS}`,
      [row.name, shared],
    );
    const operation = recordOf(raised as OperationRow);
    await announce(tx, [operation], true);
    return operation;
  }

  /** The client's next fair sequence number (see SchedulingPolicy.nextFairSequence), recorded. */
  private async takeFairSequence(tx: Transaction, clientKey: string): Promise<number> {
    const [state] = await tx.query<{ served_sequence: string }>(
      'SELECT served_sequence FROM granary_scheduler_state WHERE singleton',
    );
    const [client] = await tx.query<{ last_sequence: string }>(
      'SELECT last_sequence FROM granary_fair_clients WHERE client_key = $1 FOR UPDATE',
      [clientKey],
    );
    const sequence = this.policy.nextFairSequence(
      client ? Number(client.last_sequence) : undefined,
      Number(state?.served_sequence ?? 0),
    );
    await tx.query(
      `INSERT INTO granary_fair_clients (client_key, last_sequence) VALUES ($1, $2)
       ON CONFLICT (client_key) DO UPDATE
         SET last_sequence = GREATEST(granary_fair_clients.last_sequence, EXCLUDED.last_sequence)`,
      [clientKey, sequence],
    );
    return sequence;
  }

  /** Gives back (as lost) everything the worker holds, in name order (so concurrent callers never deadlock). */
  private async requeueHeldBy(tx: Transaction, workerId: string, nowMs: number): Promise<OperationRecord[]> {
    const held = await tx.query<{ name: string; attempts: number }>(
      `SELECT name, attempts FROM granary_operations
        WHERE stage = 'EXECUTING' AND worker_id = $1 ORDER BY name FOR UPDATE`,
      [workerId],
    );
    const changed: OperationRecord[] = [];
    for (const row of held) changed.push(await this.returnToQueue(tx, row.name, row.attempts, nowMs));
    return changed;
  }

  /** Queues a locked operation again with `attempts`, or gives it up when the policy says so. */
  private async returnToQueue(
    tx: Transaction,
    name: string,
    attempts: number,
    nowMs: number,
  ): Promise<OperationRecord> {
    const outcome = this.policy.afterLostLease(attempts);
    if (!outcome.requeue) {
      await tx.query('UPDATE granary_operations SET attempts = $2 WHERE name = $1', [name, attempts]);
      return finish(tx, name, outcome.response, nowMs);
    }
    const [row] = await tx.query<OperationRow>(
      `UPDATE granary_operations
          SET stage = 'QUEUED', worker_id = NULL, attempts = $2, version = version + 1, claim_token = NULL
        WHERE name = $1
        RETURNING ${OPERATION_COLUMNS}`,
      [name, attempts],
    );
    return recordOf(row as OperationRow);
  }
}

/** A new operation's name: the same on every frontend, so a client may resume on any. */
function newOperationName(): string {
  return `operations/${randomUUID()}`;
}

async function selectOperation(tx: Transaction, name: string): Promise<OperationRecord | undefined> {
  const [row] = await tx.query<OperationRow>(`SELECT ${OPERATION_COLUMNS} FROM granary_operations WHERE name = $1`, [
    name,
  ]);
  return row ? recordOf(row) : undefined;
}

/** Completes a locked operation with `response`. */
async function finish(
  tx: Transaction,
  name: string,
  response: ExecuteResponse,
  nowMs: number,
): Promise<OperationRecord> {
  const [row] = await tx.query<OperationRow>(
    `UPDATE granary_operations
        SET stage = 'COMPLETED', response = $2, completed_at_ms = $3, version = version + 1
      WHERE name = $1
      RETURNING ${OPERATION_COLUMNS}`,
    [name, encodeResponse(response), nowMs],
  );
  return recordOf(row as OperationRow);
}

/** Tells every frontend (on commit) which operations changed, and whether work may now be available. */
async function announce(tx: Transaction, operations: readonly OperationRecord[], work: boolean): Promise<void> {
  if (operations.length > 0) {
    await tx.query('SELECT pg_notify($1, change) FROM unnest($2::text[]) AS change', [
      CHANNELS.operation,
      operations.map((operation) => `${operation.version} ${operation.name}`),
    ]);
  }
  if (work) await tx.query('SELECT pg_notify($1, $2)', [CHANNELS.work, '']);
}

/** The key grouping operations by platform: the properties as given, sorted (so order does not matter). */
function platformKey(platform: readonly PlatformProperty[]): string {
  return JSON.stringify(platform.map((p) => [p.name, p.value]).sort(compareProperty));
}

function platformOf(key: string): PlatformProperty[] {
  return (JSON.parse(key) as Array<[string, string]>).map(([name, value]) => ({ name, value }));
}

function compareProperty(a: string[], b: string[]): number {
  const [an = '', av = ''] = a;
  const [bn = '', bv = ''] = b;
  return an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0;
}

function encodeResponse(response: ExecuteResponse): Buffer {
  return Buffer.from(ExecuteResponse.encode(response).finish());
}

function optionalNumber(value: string | null): number | undefined {
  return value === null ? undefined : Number(value);
}

function recordOf(row: OperationRow): OperationRecord {
  return {
    name: row.name,
    request: row.request,
    stage: row.stage,
    queuedAtMs: Number(row.queued_at_ms),
    workerId: row.worker_id ?? undefined,
    attempts: row.attempts,
    startedAtMs: optionalNumber(row.started_at_ms),
    completedAtMs: optionalNumber(row.completed_at_ms),
    response: row.response ? ExecuteResponse.decode(row.response) : undefined,
    version: row.version,
  };
}

function workerOf(row: WorkerRow): WorkerRecord {
  return {
    id: row.id,
    botId: row.bot_id ?? undefined,
    properties: row.properties,
    slots: row.slots ?? undefined,
    lastSeenMs: Number(row.last_seen_ms),
    draining: row.draining,
    goneAtMs: optionalNumber(row.gone_at_ms),
  };
}
