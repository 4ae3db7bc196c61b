import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CountingBlobStore, newCas, putBlob } from '../../test/support/worker.js';
import { backgroundContext } from '../context/requestContext.js';
import { digestOf } from '../digest/digest.js';
import { RecentBlobs } from './recentBlobs.js';

const context = backgroundContext();

describe('RecentBlobs', () => {
  test('serves a blob it kept without reading the CAS again, and reads what it does not hold', async () => {
    const cas = newCas();
    const kept = await putBlob(cas, 'an Action');
    const other = await putBlob(cas, 'a Command');
    const counting = new CountingBlobStore(cas);
    const recent = new RecentBlobs();
    recent.keep(kept, Buffer.from('an Action'));
    assert.equal((await recent.read(context, counting, kept))?.toString(), 'an Action');
    assert.equal(counting.gets, 0);
    assert.equal((await recent.read(context, counting, other))?.toString(), 'a Command');
    assert.equal((await recent.read(context, counting, other))?.toString(), 'a Command');
    assert.equal(counting.gets, 1, 'read once, then kept');
    assert.equal(await recent.read(context, counting, digestOf('absent')), undefined);
  });

  test('forgets the least recently used blobs beyond its byte bound', async () => {
    const cas = newCas();
    const recent = new RecentBlobs(10);
    const first = digestOf('aaaaaa');
    const second = digestOf('bbbbbb');
    recent.keep(first, Buffer.from('aaaaaa'));
    recent.keep(second, Buffer.from('bbbbbb'));
    const counting = new CountingBlobStore(cas);
    assert.equal(await recent.read(context, counting, first), undefined, 'gone from memory and absent from the CAS');
    assert.equal((await recent.read(context, counting, second))?.toString(), 'bbbbbb');
  });
});
