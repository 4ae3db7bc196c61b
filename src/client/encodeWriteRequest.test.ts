import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WriteRequest } from '../gen/google/bytestream/bytestream.js';
import { encodeWriteRequest } from './grpcBlobStore.js';

describe('encodeWriteRequest', () => {
  const cases: WriteRequest[] = [
    { resourceName: '', writeOffset: 0, finishWrite: false, data: Buffer.alloc(0) },
    { resourceName: 'uploads/u/blobs/ab/3', writeOffset: 0, finishWrite: false, data: Buffer.from('abc') },
    {
      resourceName: 'inst/ünï/uploads/x/blobs/cd/200',
      writeOffset: 127,
      finishWrite: true,
      data: Buffer.alloc(200, 7),
    },
    { resourceName: '', writeOffset: 128, finishWrite: true, data: Buffer.alloc(0) },
    { resourceName: '', writeOffset: 2 ** 40 + 5, finishWrite: false, data: Buffer.alloc(16384, 1) },
    { resourceName: '', writeOffset: Number.MAX_SAFE_INTEGER, finishWrite: false, data: Buffer.alloc(1) },
    { resourceName: '', writeOffset: -1, finishWrite: false, data: Buffer.alloc(1) },
  ];
  it('produces the same bytes as the generated encoder', () => {
    for (const request of cases) {
      assert.deepEqual(
        encodeWriteRequest(request),
        Buffer.from(WriteRequest.encode(request).finish()),
        JSON.stringify({ ...request, data: request.data.length }),
      );
    }
  });
  it('round-trips through the generated decoder', () => {
    const request = { resourceName: 'a/b', writeOffset: 1 << 20, finishWrite: true, data: Buffer.alloc(1 << 20, 3) };
    const decoded = WriteRequest.decode(encodeWriteRequest(request));
    assert.equal(decoded.resourceName, 'a/b');
    assert.equal(decoded.writeOffset, 1 << 20);
    assert.equal(decoded.finishWrite, true);
    assert.ok(decoded.data.equals(request.data));
  });
});
