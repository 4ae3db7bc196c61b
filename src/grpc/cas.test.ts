import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../../test/support/grpc.js';
import { rejectsWithCode } from '../../test/support/status.js';
import { unary } from '../client/connection.js';
import { type Digest, digestKey, digestOf, SHA256, SHA512 } from '../digest/digest.js';
import {
  type BatchReadBlobsRequest,
  type BatchReadBlobsResponse,
  type BatchUpdateBlobsRequest,
  type BatchUpdateBlobsResponse,
  DigestFunction_Value,
  Directory,
  type FindMissingBlobsResponse,
  type GetTreeRequest,
  type GetTreeResponse,
  type ServerCapabilities,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { MAXIMUM_BATCH_TOTAL_BYTES, MAXIMUM_MESSAGE_BYTES } from '../server/storageServer.js';
import { Code, StatusError } from '../util/status.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t.close();
});

const key = (d: Digest) => digestKey({ hash: d.hash, sizeBytes: d.sizeBytes });
const sortedKeys = (ds: readonly Digest[]) => ds.map(key).sort();

function findMissing(blobDigests: Digest[], digestFunction = 0, instanceName = ''): Promise<FindMissingBlobsResponse> {
  return unary<FindMissingBlobsResponse>((done) =>
    t.client.cas.findMissingBlobs({ instanceName, blobDigests, digestFunction }, done),
  );
}

function batchUpdate(
  requests: Array<{ digest: Digest | undefined; data: Buffer }>,
  extra: Partial<BatchUpdateBlobsRequest> = {},
): Promise<BatchUpdateBlobsResponse> {
  return unary<BatchUpdateBlobsResponse>((done) =>
    t.client.cas.batchUpdateBlobs(
      { instanceName: '', digestFunction: 0, requests: requests.map((r) => ({ ...r, compressor: 0 })), ...extra },
      done,
    ),
  );
}

function batchRead(digests: Digest[], extra: Partial<BatchReadBlobsRequest> = {}): Promise<BatchReadBlobsResponse> {
  return unary<BatchReadBlobsResponse>((done) =>
    t.client.cas.batchReadBlobs(
      { instanceName: '', digests, acceptableCompressors: [], digestFunction: 0, ...extra },
      done,
    ),
  );
}

function blob(text: string | Buffer): { digest: Digest; data: Buffer } {
  const data = typeof text === 'string' ? Buffer.from(text) : text;
  return { digest: digestOf(data), data };
}

/**
 * Runs GetTree and collects its messages. With `maxMessages`, cancels the call
 * after that many, as a client paging with tokens would.
 */
function getTree(request: Partial<GetTreeRequest>, maxMessages = Number.POSITIVE_INFINITY): Promise<GetTreeResponse[]> {
  const full: GetTreeRequest = {
    instanceName: '',
    rootDigest: undefined,
    pageSize: 0,
    pageToken: '',
    digestFunction: 0,
    ...request,
  };
  return new Promise((resolve, reject) => {
    const messages: GetTreeResponse[] = [];
    const stream = t.client.cas.getTree(full);
    let cancelled = false;
    stream.on('data', (message: GetTreeResponse) => {
      if (cancelled) return;
      messages.push(message);
      if (messages.length >= maxMessages) {
        cancelled = true;
        stream.cancel();
      }
    });
    stream.on('end', () => resolve(messages));
    stream.on('error', (error: { code?: number; details?: string }) => {
      if (cancelled && error.code === Code.CANCELLED) resolve(messages);
      else reject(new StatusError(error.code ?? Code.UNKNOWN, error.details ?? String(error)));
    });
  });
}

const malformedDigests: Array<[string, Digest]> = [
  ['non-hex hash', { hash: 'x'.repeat(64), sizeBytes: 1 }],
  ['uppercase hash', { hash: 'A'.repeat(64), sizeBytes: 1 }],
  ['short hash', { hash: 'a'.repeat(63), sizeBytes: 1 }],
  ['long hash', { hash: 'a'.repeat(65), sizeBytes: 1 }],
  ['empty hash', { hash: '', sizeBytes: 0 }],
  ['negative size', { hash: 'a'.repeat(64), sizeBytes: -1 }],
];

describe('FindMissingBlobs', () => {
  it('returns only the digests the CAS does not hold', async () => {
    const [a, b] = [blob('find-missing a'), blob('find-missing b')];
    const [c, d] = [blob('find-missing c'), blob('find-missing d')];
    await batchUpdate([a, b]);
    const response = await findMissing([a.digest, c.digest, b.digest, d.digest]);
    assert.deepEqual(sortedKeys(response.missingBlobDigests), sortedKeys([c.digest, d.digest]));
  });

  it('never reports the empty blob as missing', async () => {
    assert.deepEqual((await findMissing([digestOf('')])).missingBlobDigests, []);
    assert.deepEqual((await findMissing([digestOf('')], DigestFunction_Value.SHA256)).missingBlobDigests, []);
    assert.deepEqual((await findMissing([digestOf('', SHA512)], DigestFunction_Value.SHA512)).missingBlobDigests, []);
  });

  it('answers an empty request with an empty list', async () => {
    assert.deepEqual((await findMissing([])).missingBlobDigests, []);
  });

  it('rejects a malformed digest with INVALID_ARGUMENT', async () => {
    for (const [why, digest] of malformedDigests) {
      await rejectsWithCode(findMissing([blob('fine').digest, digest]), Code.INVALID_ARGUMENT, why);
      await rejectsWithCode(findMissing([digest]), Code.INVALID_ARGUMENT, why);
    }
  });

  it('rejects a hash whose length does not match the requested digest function', async () => {
    await rejectsWithCode(findMissing([digestOf('x')], DigestFunction_Value.SHA512), Code.INVALID_ARGUMENT);
  });

  it('rejects an unsupported digest function with INVALID_ARGUMENT', async () => {
    await rejectsWithCode(findMissing([digestOf('x')], DigestFunction_Value.BLAKE3), Code.INVALID_ARGUMENT, 'BLAKE3');
    await rejectsWithCode(
      findMissing([digestOf('x')], DigestFunction_Value.SHA256TREE),
      Code.INVALID_ARGUMENT,
      'SHA256TREE',
    );
    await rejectsWithCode(findMissing([digestOf('x')], 42), Code.INVALID_ARGUMENT, 'value 42');
  });

  it('supports sha512 digests when the request names SHA512', async () => {
    const data = Buffer.from('sha512 blob');
    const digest = digestOf(data, SHA512);
    assert.deepEqual(sortedKeys((await findMissing([digest], DigestFunction_Value.SHA512)).missingBlobDigests), [
      key(digest),
    ]);
    const response = await batchUpdate([{ digest, data }], { digestFunction: DigestFunction_Value.SHA512 });
    assert.equal(response.responses[0]?.status?.code, Code.OK);
    assert.deepEqual((await findMissing([digest], DigestFunction_Value.SHA512)).missingBlobDigests, []);
  });
});

describe('BatchUpdateBlobs', () => {
  it('reports a status per blob and stores only the blobs whose data matches', async () => {
    const good1 = blob('batch good 1');
    const good2 = blob('batch good 2');
    const wrongHash = { digest: blob('batch claimed').digest, data: Buffer.from('batch actual!') };
    assert.equal(wrongHash.data.length, wrongHash.digest.sizeBytes);
    const wrongSize = { digest: blob('batch size').digest, data: Buffer.from('batch size, longer') };
    const response = await batchUpdate([good1, wrongHash, good2, wrongSize]);
    assert.equal(response.responses.length, 4);
    assert.deepEqual(
      response.responses.map((r) => Code[r.status?.code ?? -1]),
      ['OK', 'INVALID_ARGUMENT', 'OK', 'INVALID_ARGUMENT'],
    );
    assert.deepEqual(
      response.responses.map((r) => key(r.digest as Digest)),
      [good1, wrongHash, good2, wrongSize].map((b) => key(b.digest)),
      'each response names the digest of its request',
    );
    const missing = await findMissing([good1.digest, wrongHash.digest, good2.digest, wrongSize.digest]);
    assert.deepEqual(sortedKeys(missing.missingBlobDigests), sortedKeys([wrongHash.digest, wrongSize.digest]));
    const read = await batchRead([good1.digest, good2.digest]);
    assert.deepEqual(
      read.responses.map((r) => r.data.toString()),
      ['batch good 1', 'batch good 2'],
    );
  });

  it('reports INVALID_ARGUMENT for a malformed digest in one entry without failing the others', async () => {
    const good = blob('batch with a malformed neighbour');
    const response = await batchUpdate([{ digest: { hash: 'nothex', sizeBytes: 3 }, data: Buffer.from('abc') }, good]);
    assert.deepEqual(
      response.responses.map((r) => Code[r.status?.code ?? -1]),
      ['INVALID_ARGUMENT', 'OK'],
    );
    assert.deepEqual((await findMissing([good.digest])).missingBlobDigests, []);
  });

  it('accepts the empty blob', async () => {
    const response = await batchUpdate([blob('')]);
    assert.equal(response.responses[0]?.status?.code, Code.OK);
  });

  it('rejects the whole call with INVALID_ARGUMENT when the total exceeds max_batch_total_size_bytes, storing nothing', async () => {
    const half = MAXIMUM_BATCH_TOTAL_BYTES / 2;
    const items = [blob(randomBytes(half)), blob(randomBytes(half)), blob(randomBytes(1))];
    await rejectsWithCode(batchUpdate(items), Code.INVALID_ARGUMENT);
    const missing = await findMissing(items.map((i) => i.digest));
    assert.deepEqual(sortedKeys(missing.missingBlobDigests), sortedKeys(items.map((i) => i.digest)));
  });

  it('accepts a batch of exactly max_batch_total_size_bytes', async () => {
    const half = MAXIMUM_BATCH_TOTAL_BYTES / 2;
    const items = [blob(randomBytes(half)), blob(randomBytes(half))];
    const response = await batchUpdate(items);
    assert.deepEqual(
      response.responses.map((r) => r.status?.code),
      [Code.OK, Code.OK],
    );
  });

  it('rejects an unsupported digest function with INVALID_ARGUMENT', async () => {
    await rejectsWithCode(
      batchUpdate([blob('blake3?')], { digestFunction: DigestFunction_Value.BLAKE3 }),
      Code.INVALID_ARGUMENT,
    );
  });
});

describe('BatchReadBlobs', () => {
  it('returns the data of present blobs and NOT_FOUND for each missing one', async () => {
    const present = blob('batch read present');
    const absent = blob('batch read absent');
    await batchUpdate([present]);
    const response = await batchRead([absent.digest, present.digest, digestOf('')]);
    assert.deepEqual(
      response.responses.map((r) => Code[r.status?.code ?? -1]),
      ['NOT_FOUND', 'OK', 'OK'],
    );
    assert.deepEqual(
      response.responses.map((r) => key(r.digest as Digest)),
      [absent.digest, present.digest, digestOf('')].map(key),
    );
    assert.equal(response.responses[1]?.data.toString(), 'batch read present');
    assert.equal(response.responses[2]?.data.length, 0);
  });

  it('rejects a request for more than max_batch_total_size_bytes with INVALID_ARGUMENT', async () => {
    const huge = {
      hash: SHA256.createHasher().update('not stored').digest('hex'),
      sizeBytes: MAXIMUM_BATCH_TOTAL_BYTES + 1,
    };
    await rejectsWithCode(batchRead([huge]), Code.INVALID_ARGUMENT);
    const small = blob('batch read small');
    await rejectsWithCode(batchRead([small.digest, huge]), Code.INVALID_ARGUMENT);
  });

  it('rejects a malformed digest with INVALID_ARGUMENT', async () => {
    for (const [why, digest] of malformedDigests) {
      await rejectsWithCode(batchRead([digest]), Code.INVALID_ARGUMENT, why);
    }
  });
});

describe('GetTree', () => {
  // root ── a ── shared ── deep
  //      │    └─ leafA
  //      └─ b ── shared (the same directory again)
  const file = (name: string) => ({
    name,
    digest: digestOf(name),
    isExecutable: false,
    nodeProperties: undefined,
  });
  const dirNode = (name: string, digest: Digest) => ({ name, digest });
  const directory = (partial: Partial<Directory>): { message: Directory; digest: Digest; data: Buffer } => {
    const message = Directory.fromPartial(partial);
    const data = Buffer.from(Directory.encode(message).finish());
    return { message, digest: digestOf(data), data };
  };
  const deep = directory({ files: [file('deep.txt')] });
  const shared = directory({ files: [file('shared.txt')], directories: [dirNode('deep', deep.digest)] });
  const leafA = directory({ files: [file('leaf-a.txt')] });
  const a = directory({ directories: [dirNode('leafA', leafA.digest), dirNode('shared', shared.digest)] });
  const b = directory({ files: [file('b.txt')], directories: [dirNode('shared', shared.digest)] });
  const root = directory({ directories: [dirNode('a', a.digest), dirNode('b', b.digest)] });
  const all = [root, a, b, leafA, shared, deep];
  const expected = all.map((d) => key(d.digest)).sort();
  const keysOf = (messages: GetTreeResponse[]) =>
    messages.flatMap((m) => m.directories).map((d) => key(digestOf(Buffer.from(Directory.encode(d).finish()))));

  before(async () => {
    const response = await batchUpdate(all);
    assert.ok(response.responses.every((r) => r.status?.code === Code.OK));
  });

  it('returns every directory of the tree once, the shared subdirectory deduplicated', async () => {
    const messages = await getTree({ rootDigest: root.digest });
    const keys = keysOf(messages);
    assert.deepEqual([...keys].sort(), expected);
    assert.equal(keys[0], key(root.digest), 'the root comes first');
    assert.equal(messages.at(-1)?.nextPageToken, '', 'the last page has no next token');
  });

  it('streams one directory per message with page_size 1, each carrying the token of the next page', async () => {
    const messages = await getTree({ rootDigest: root.digest, pageSize: 1 });
    assert.equal(messages.length, all.length);
    assert.ok(messages.every((m) => m.directories.length === 1));
    assert.deepEqual(keysOf(messages).sort(), expected);
    assert.ok(messages.slice(0, -1).every((m) => m.nextPageToken !== ''));
    assert.equal(messages.at(-1)?.nextPageToken, '');
  });

  it('yields every directory exactly once when paging through page tokens with page_size 1', async () => {
    const seen: string[] = [];
    let token = '';
    for (let calls = 0; ; calls++) {
      assert.ok(calls <= all.length, 'paging terminates');
      const [page] = await getTree({ rootDigest: root.digest, pageSize: 1, pageToken: token }, 1);
      assert.ok(page, 'each call returns a page');
      assert.equal(page.directories.length, 1);
      seen.push(...keysOf([page]));
      token = page.nextPageToken;
      if (token === '') break;
    }
    assert.deepEqual(seen.sort(), expected);
  });

  it('resumes from a page token with the remaining directories only', async () => {
    const first = await getTree({ rootDigest: root.digest, pageSize: 2 }, 1);
    assert.equal(first[0]?.directories.length, 2);
    const rest = await getTree({ rootDigest: root.digest, pageSize: 2, pageToken: first[0]?.nextPageToken ?? '' });
    assert.deepEqual([...keysOf(first), ...keysOf(rest)].sort(), expected);
  });

  it('fails with NOT_FOUND when the root directory is missing', async () => {
    await rejectsWithCode(getTree({ rootDigest: digestOf('no such directory') }), Code.NOT_FOUND);
  });

  it('rejects a malformed root digest or page token with INVALID_ARGUMENT', async () => {
    await rejectsWithCode(getTree({ rootDigest: { hash: 'zz', sizeBytes: 1 } }), Code.INVALID_ARGUMENT);
    await rejectsWithCode(getTree({}), Code.INVALID_ARGUMENT, 'missing root digest');
    await rejectsWithCode(getTree({ rootDigest: root.digest, pageToken: 'not-a-token' }), Code.INVALID_ARGUMENT);
    await rejectsWithCode(getTree({ rootDigest: root.digest, pageSize: -1 }), Code.INVALID_ARGUMENT);
  });
});

describe('Capabilities', () => {
  it('advertises SHA256, action cache updates, a batch limit below the message limit and API 2.0 to at least 2.2', async () => {
    const capabilities = await unary<ServerCapabilities>((done) =>
      t.client.capabilities.getCapabilities({ instanceName: '' }, done),
    );
    const cache = capabilities.cacheCapabilities;
    assert.ok(cache);
    assert.ok(cache.digestFunctions.includes(DigestFunction_Value.SHA256));
    assert.equal(cache.actionCacheUpdateCapabilities?.updateEnabled, true);
    assert.ok(cache.maxBatchTotalSizeBytes > 0);
    assert.ok(cache.maxBatchTotalSizeBytes < MAXIMUM_MESSAGE_BYTES);
    assert.deepEqual(
      { major: capabilities.lowApiVersion?.major, minor: capabilities.lowApiVersion?.minor },
      { major: 2, minor: 0 },
    );
    const high = capabilities.highApiVersion;
    assert.ok(
      high && (high.major > 2 || (high.major === 2 && high.minor >= 2)),
      `high API version ${JSON.stringify(high)}`,
    );
  });

  it('answers for any instance name', async () => {
    const capabilities = await unary<ServerCapabilities>((done) =>
      t.client.capabilities.getCapabilities({ instanceName: 'some/instance' }, done),
    );
    assert.ok(capabilities.cacheCapabilities?.digestFunctions.includes(DigestFunction_Value.SHA256));
  });
});
