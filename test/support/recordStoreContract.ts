/**
 * The behaviour every RecordStore must show (see src/records/recordStore.ts):
 * replace on put, absent keys read as undefined, listings in key order, by
 * prefix, in pages that cover every record once. Each implementation's test
 * file calls recordStoreContract with a factory for a fresh, empty store of
 * plain-text records whose value names its key (the shape every store can hold).
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { backgroundContext } from '../../src/context/requestContext.js';
import { allRecords, type RecordCodec, type RecordStore } from '../../src/records/recordStore.js';

const context = backgroundContext();

/** The records of the contract: a key and a text. */
export interface NoteRecord {
  key: string;
  text: string;
}

/** A codec for NoteRecord (JSON), for implementations that take a codec. */
export const noteCodec: RecordCodec<NoteRecord> = {
  encode: (note) => Buffer.from(JSON.stringify(note)),
  decode: (data) => {
    try {
      const value = JSON.parse(data.toString('utf8')) as NoteRecord;
      return typeof value.key === 'string' && typeof value.text === 'string' ? value : undefined;
    } catch {
      return undefined;
    }
  },
  keyOf: (note) => note.key,
};

export interface ContractRecordStore {
  store: RecordStore<NoteRecord>;
  cleanup(): Promise<void>;
}

export function recordStoreContract(name: string, open: () => Promise<ContractRecordStore>): void {
  describe(`${name} (RecordStore contract)`, () => {
    let opened: ContractRecordStore;
    let store: RecordStore<NoteRecord>;
    beforeEach(async () => {
      opened = await open();
      store = opened.store;
    });
    afterEach(async () => opened.cleanup());

    const put = (key: string, text = `text of ${key}`) => store.put(context, key, { key, text });

    it('reads back what was put, and undefined for a key never put', async () => {
      await put('a/1');
      assert.deepEqual(await store.get(context, 'a/1'), { key: 'a/1', text: 'text of a/1' });
      assert.equal(await store.get(context, 'a/2'), undefined);
    });

    it('replaces a record put again under the same key', async () => {
      await put('k', 'old');
      await put('k', 'new');
      assert.equal((await store.get(context, 'k'))?.text, 'new');
      const listed = await store.list(context);
      assert.deepEqual(
        listed.records.map((r) => r.value.text),
        ['new'],
      );
    });

    it('lists every record in ascending key order, and only those under a prefix when asked', async () => {
      for (const key of ['b/2', 'a/1', 'b/1', 'c', 'b/10']) await put(key);
      const all = await store.list(context);
      assert.deepEqual(
        all.records.map((r) => r.key),
        ['a/1', 'b/1', 'b/10', 'b/2', 'c'],
      );
      assert.equal(all.nextPageToken, undefined);
      const underB = await store.list(context, { prefix: 'b/' });
      assert.deepEqual(
        underB.records.map((r) => r.key),
        ['b/1', 'b/10', 'b/2'],
      );
      assert.deepEqual((await store.list(context, { prefix: 'z' })).records, []);
    });

    it('pages through a listing: every record once, in order, the last page without a token', async () => {
      const keys = Array.from({ length: 7 }, (_, i) => `p/${i}`);
      for (const key of keys) await put(key);
      const first = await store.list(context, { pageSize: 3 });
      assert.equal(first.records.length, 3);
      assert.notEqual(first.nextPageToken, undefined);
      const seen: string[] = [];
      for await (const record of allRecords(context, store, { pageSize: 3 })) seen.push(record.key);
      assert.deepEqual(seen, keys);
    });

    it('lists an empty store as one empty last page', async () => {
      const page = await store.list(context);
      assert.deepEqual(page.records, []);
      assert.equal(page.nextPageToken, undefined);
    });
  });
}
