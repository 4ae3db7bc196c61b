/**
 * The farm's connection to PostgreSQL against a real server: frontends starting
 * together migrate the schema once; a schema newer than the program is refused; calls
 * wait out a restart and fail with UNAVAILABLE (never a crash) when the database stays
 * away; mistakes in SQL are not retried; the LISTEN connection comes back by itself and
 * says so, so its owner can re-read what it may have missed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useLocalPostgres } from '../../test/support/localPostgres.js';
import { rejectsWithCode } from '../../test/support/status.js';
import { quietly, until } from '../../test/support/waiting.js';
import { backgroundContext } from '../context/requestContext.js';
import { Code } from '../util/status.js';
import { PostgresDatabase } from './postgresDatabase.js';
import { PostgresListener } from './postgresListener.js';
import { MIGRATIONS } from './schema.js';

const ctx = backgroundContext();
const { skip, server } = useLocalPostgres();

describe('PostgresDatabase', { skip }, () => {
  it('migrates a new database once when several frontends start at the same moment', async () => {
    const url = await server().createSchema();
    const databases = await Promise.all(Array.from({ length: 5 }, () => PostgresDatabase.open({ url })));
    try {
      const [first] = databases;
      const applied = await first!.query<{ version: number }>(ctx, 'SELECT version FROM granary_schema_migrations');
      assert.deepEqual(
        applied.map((row) => row.version),
        MIGRATIONS.map((migration) => migration.version),
      );
      const tables = await first!.query(ctx, 'SELECT 1 FROM granary_scheduler_state WHERE singleton');
      assert.equal(tables.length, 1, 'the seed row was inserted once');
    } finally {
      for (const database of databases) await database.close();
    }
  });

  it('refuses to start on a schema newer than it knows', async () => {
    const url = await server().createSchema();
    const newer = [...MIGRATIONS, { version: 999, description: 'from the future', sql: 'SELECT 1' }];
    const future = await PostgresDatabase.open({ url, migrations: newer });
    await future.close();
    await rejectsWithCode(PostgresDatabase.open({ url }), Code.FAILED_PRECONDITION);
  });

  it('throws mistakes in SQL at once instead of retrying them', async () => {
    const database = await PostgresDatabase.open({ url: await server().createSchema(), retryWindowMs: 60_000 });
    try {
      const started = Date.now();
      await assert.rejects(database.query(ctx, 'SELEC 1'), /syntax error/);
      await assert.rejects(
        database.transaction(ctx, (tx) => tx.query('INSERT INTO granary_workers (id) VALUES (NULL)')),
        /null value/,
      );
      assert.ok(Date.now() - started < 30_000);
      assert.deepEqual(await database.query(ctx, 'SELECT 1 AS one'), [{ one: 1 }], 'the pool still works');
    } finally {
      await database.close();
    }
  });

  describe('while the server restarts', () => {
    it('waits out a restart: a call made while the database is down completes once it is back', async () => {
      const database = await PostgresDatabase.open({
        url: await server().createSchema(),
        retryWindowMs: 120_000,
        log: () => {},
      });
      try {
        await database.query(ctx, 'SELECT 1');
        await server().stop();
        const call = database.transaction(ctx, async (tx) => {
          await tx.query("INSERT INTO granary_fair_clients VALUES ('during the outage', 1)");
          return tx.attempt;
        });
        await new Promise((resolve) => setTimeout(resolve, 500));
        await server().start();
        assert.ok((await call) > 0, 'it was retried');
        const rows = await database.query(ctx, 'SELECT client_key FROM granary_fair_clients');
        assert.deepEqual(rows, [{ client_key: 'during the outage' }]);
      } finally {
        await database.close();
        if (!server().running) await server().start();
      }
    });

    it('fails with UNAVAILABLE once the database has been away for the retry window', async () => {
      const database = await PostgresDatabase.open({
        url: await server().createSchema(),
        retryWindowMs: 300,
        log: () => {},
      });
      try {
        await server().stop();
        await rejectsWithCode(database.query(ctx, 'SELECT 1'), Code.UNAVAILABLE);
        await rejectsWithCode(
          database.transaction(ctx, (tx) => tx.query('SELECT 1')),
          Code.UNAVAILABLE,
        );
      } finally {
        if (!server().running) await server().start();
        await database.close();
      }
    });

    it('keeps listening: the LISTEN connection comes back after a restart and says it subscribed again', async () => {
      const database = await PostgresDatabase.open({ url: await server().createSchema(), log: () => {} });
      const received: string[] = [];
      let subscriptions = 0;
      const listener = new PostgresListener(
        database,
        ['granary_test_channel'],
        {
          onNotification: (_channel, payload) => received.push(payload),
          onSubscribed: () => subscriptions++,
        },
        { healthCheckIntervalMs: 200 },
      );
      try {
        await until(() => listener.connected, 30_000);
        await database.query(ctx, "SELECT pg_notify('granary_test_channel', 'before')");
        await until(() => received.includes('before'), 30_000);
        await quietly(async () => {
          await server().stop();
          await until(() => !listener.connected, 30_000);
          await server().start();
          await until(() => listener.connected, 60_000);
        });
        assert.equal(subscriptions, 2, 'onSubscribed after the first subscription and after the reconnection');
        await database.query(ctx, "SELECT pg_notify('granary_test_channel', 'after')");
        await until(() => received.includes('after'), 30_000);
      } finally {
        await listener.close();
        await database.close();
        if (!server().running) await server().start();
      }
    });
  });
});
