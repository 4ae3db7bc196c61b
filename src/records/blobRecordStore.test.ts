import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { noteCodec, recordStoreContract } from '../../test/support/recordStoreContract.js';
import { rejectsWithCode } from '../../test/support/status.js';
import { backgroundContext } from '../context/requestContext.js';
import { putBuffer } from '../storage/blobStore.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { Code } from '../util/status.js';
import { BlobRecordStore, recordBlobKey } from './blobRecordStore.js';

const context = backgroundContext();

recordStoreContract('BlobRecordStore over a MemoryBlobStore', async () => ({
  store: new BlobRecordStore(new MemoryBlobStore(), noteCodec),
  cleanup: async () => {},
}));

describe('BlobRecordStore', () => {
  it('stores a record under the SHA-256 of its key, so records written by earlier versions still read', async () => {
    const blobs = new MemoryBlobStore();
    await putBuffer(context, blobs, recordBlobKey('old'), Buffer.from(JSON.stringify({ key: 'old', text: 'kept' })));
    const store = new BlobRecordStore(blobs, noteCodec);
    assert.deepEqual(await store.get(context, 'old'), { key: 'old', text: 'kept' });
  });

  it('reads a record that does not decode, or names another key, as absent and leaves it out of listings', async () => {
    const blobs = new MemoryBlobStore();
    await putBuffer(context, blobs, recordBlobKey('garbage'), Buffer.from('not json'));
    await putBuffer(context, blobs, recordBlobKey('here'), Buffer.from(JSON.stringify({ key: 'there', text: 'x' })));
    const store = new BlobRecordStore(blobs, noteCodec);
    assert.equal(await store.get(context, 'garbage'), undefined);
    assert.equal(await store.get(context, 'here'), undefined);
    assert.deepEqual((await store.list(context)).records, []);
  });

  it('refuses to store a record under a key other than its own', async () => {
    const store = new BlobRecordStore(new MemoryBlobStore(), noteCodec);
    await rejectsWithCode(store.put(context, 'a', { key: 'b', text: '' }), Code.INVALID_ARGUMENT);
  });

  it('reports UNIMPLEMENTED for a listing when the codec cannot name keys', async () => {
    const store = new BlobRecordStore(new MemoryBlobStore(), { encode: noteCodec.encode, decode: noteCodec.decode });
    await store.put(context, 'a', { key: 'a', text: '' });
    assert.equal((await store.get(context, 'a'))?.key, 'a');
    await rejectsWithCode(store.list(context), Code.UNIMPLEMENTED);
  });
});
