/**
 * The farm's tables in PostgreSQL, as numbered migrations. A frontend applies the
 * ones the database lacks when it starts (see PostgresDatabase.open), holding an
 * advisory lock so that frontends starting together migrate once, one after the
 * other. A migration is never edited once released: a change is a new migration.
 *
 * Tables: operations (the queue, running and finished operations, with their
 * place in the queue), workers (bot sessions and their heartbeats), fair_clients
 * and scheduler_state (the fair-share counters), and records (small keyed values:
 * action cache entries and Remote Asset records).
 */

/** One schema step. */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'operations, workers, fair-share counters and records',
    sql: `
      CREATE TABLE granary_operations (
        name text COLLATE "C" PRIMARY KEY,
        stage text NOT NULL CHECK (stage IN ('QUEUED', 'EXECUTING', 'COMPLETED')),
        request jsonb NOT NULL,
        platform_key text NOT NULL,
        priority integer NOT NULL,
        client_key text NOT NULL,
        dedupe_key bytea,
        queued_at_ms bigint NOT NULL,
        worker_id text,
        attempts integer NOT NULL DEFAULT 0,
        started_at_ms bigint,
        completed_at_ms bigint,
        response bytea,
        version integer NOT NULL,
        fair_sequence bigint NOT NULL,
        arrival bigserial NOT NULL,
        claim_token text
      );
      CREATE UNIQUE INDEX granary_operations_in_flight ON granary_operations (dedupe_key) WHERE stage <> 'COMPLETED';
      CREATE INDEX granary_operations_queue ON granary_operations (priority, fair_sequence, arrival) WHERE stage = 'QUEUED';
      CREATE INDEX granary_operations_queued_platforms ON granary_operations (platform_key) WHERE stage = 'QUEUED';
      CREATE INDEX granary_operations_leases ON granary_operations (worker_id) WHERE stage = 'EXECUTING';
      CREATE INDEX granary_operations_listing ON granary_operations (queued_at_ms, name);
      CREATE INDEX granary_operations_completed ON granary_operations (completed_at_ms) WHERE stage = 'COMPLETED';
      CREATE INDEX granary_operations_claims ON granary_operations (claim_token) WHERE claim_token IS NOT NULL;

      CREATE TABLE granary_workers (
        id text PRIMARY KEY,
        bot_id text,
        properties jsonb NOT NULL,
        slots integer,
        last_seen_ms bigint NOT NULL,
        draining boolean NOT NULL DEFAULT false,
        gone_at_ms bigint
      );

      CREATE TABLE granary_fair_clients (
        client_key text PRIMARY KEY,
        last_sequence bigint NOT NULL
      );
      CREATE TABLE granary_scheduler_state (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        served_sequence bigint NOT NULL
      );
      INSERT INTO granary_scheduler_state (served_sequence) VALUES (0);

      CREATE TABLE granary_records (
        namespace text NOT NULL,
        key text COLLATE "C" NOT NULL,
        value bytea NOT NULL,
        size_bytes integer NOT NULL,
        accessed_at_ms bigint NOT NULL,
        PRIMARY KEY (namespace, key)
      );
      CREATE INDEX granary_records_recency ON granary_records (namespace, accessed_at_ms);
    `,
  },
];

/**
 * Keys of the advisory locks frontends take so that one of them at a time does a
 * job that any of them may do (arbitrary numbers, unique within the database).
 */
export const ADVISORY_LOCKS = {
  migrate: 0x6772_0001,
  expireLeases: 0x6772_0002,
  evictRecords: 0x6772_0003,
} as const;

/** Notification channels: changed operations (payload `VERSION NAME`) and available work. */
export const CHANNELS = {
  operation: 'granary_operation',
  work: 'granary_work',
} as const;
