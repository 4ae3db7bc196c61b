/**
 * The PostgreSQL record store against a real PostgreSQL: it keeps the BlobStore
 * contract (as the action cache and asset records use it), a record written through
 * one frontend's connection is read through another's, and eviction drops the least
 * recently used records of a namespace beyond its bound, and nothing of another
 * namespace.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blobStoreContract } from '../../test/support/blobStoreContract.js';
import { useLocalPostgres } from '../../test/support/localPostgres.js';
import { backgroundContext } from '../context/requestContext.js';
import { PostgresDatabase } from '../database/postgresDatabase.js';
import { digestOf } from '../digest/digest.js';
import { getBuffer, putBuffer } from './blobStore.js';
import { PostgresRecordStore } from './postgresRecordStore.js';

const context = backgroundContext();

const { skip, server } = useLocalPostgres();

async function openRecords(url: string, namespace: string, maximumSizeBytes = 1 << 30, now?: () => number) {
  const database = await PostgresDatabase.open({ url });
  const store = new PostgresRecordStore(database, { namespace, maximumSizeBytes, now });
  return {
    database,
    store,
    close: async () => {
      await store.close();
      await database.close();
    },
  };
}

if (skip) {
  describe('PostgresRecordStore', () => {
    it('runs against a real PostgreSQL', { skip }, () => {});
  });
} else {
  blobStoreContract('PostgresRecordStore', async () => {
    const records = await openRecords(await server().createSchema(), 'contract');
    return { store: records.store, cleanup: records.close };
  });
}

describe('PostgresRecordStore', { skip }, () => {
  it('serves a record written through one frontend to another at once', async (t) => {
    const url = await server().createSchema();
    const one = await openRecords(url, 'action-cache');
    const other = await openRecords(url, 'action-cache');
    const elsewhere = await openRecords(url, 'asset');
    t.after(async () => {
      for (const records of [one, other, elsewhere]) await records.close();
    });
    const key = digestOf('a derived key');
    await putBuffer(context, one.store, key, Buffer.from('result one'));
    assert.equal((await getBuffer(context, other.store, key))?.toString(), 'result one');
    await putBuffer(context, other.store, key, Buffer.from('result two'));
    assert.equal(
      (await getBuffer(context, one.store, key))?.toString(),
      'result two',
      'the later write wins everywhere',
    );
    assert.equal(await getBuffer(context, elsewhere.store, key), undefined, 'namespaces are apart');
    assert.deepEqual(await one.store.list(context), [key]);
  });

  it('evicts the least recently used records past the bound, in its own namespace only', async (t) => {
    const url = await server().createSchema();
    let now = 1_000_000_000;
    const clock = () => now;
    const bounded = await openRecords(url, 'bounded', 250, clock);
    const other = await openRecords(url, 'other', 1 << 30, clock);
    t.after(async () => {
      await bounded.close();
      await other.close();
    });
    const keys = Array.from({ length: 5 }, (_, index) => digestOf(`record ${index}`));
    for (const key of keys) {
      await putBuffer(context, bounded.store, key, Buffer.alloc(100, 1));
      await putBuffer(context, other.store, key, Buffer.alloc(100, 2));
      now += 2 * 60 * 60_000;
    }
    // Reading the oldest record makes it the most recent (reads refresh recency when it is stale).
    assert.ok(await getBuffer(context, bounded.store, keys[0]!));
    assert.equal(await bounded.store.evict(), 3);
    const missing = await bounded.store.findMissing(context, keys);
    assert.deepEqual(missing, [keys[1], keys[2], keys[3]]);
    assert.deepEqual(await other.store.findMissing(context, keys), [], 'the other namespace keeps everything');
  });
});
