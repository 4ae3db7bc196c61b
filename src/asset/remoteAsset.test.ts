/**
 * The Fetch and Push services through a real grpc-js client against an
 * in-process server, including the downloader against a local HTTP origin.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ServiceError } from '@grpc/grpc-js';
import { type AssetCalls, assetCalls, type Origin, sriOf, startOrigin } from '../../test/support/asset.js';
import { readResource, startTestServer, type TestServer } from '../../test/support/grpc.js';
import { rejectsWithCode } from '../../test/support/status.js';
import { unary } from '../client/connection.js';
import { type Digest, digestOf, SHA512 } from '../digest/digest.js';
import { PushClient } from '../gen/build/bazel/remote/asset/v1/remote_asset.js';
import {
  type BatchUpdateBlobsResponse,
  DigestFunction_Value,
  Directory,
  type FindMissingBlobsResponse,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { PreconditionFailure } from '../gen/google/rpc/error_details.js';
import { Status } from '../gen/google/rpc/status.js';
import { Code } from '../util/status.js';
import { FetchPolicy } from './fetchPolicy.js';

let t: TestServer;
let calls: AssetCalls;
before(async () => {
  // The tests' origin is on loopback, which the downloader refuses unless opened.
  t = await startTestServer(undefined, { fetchPolicy: new FetchPolicy(['127.0.0.1']) });
  calls = assetCalls(t.client);
});
after(async () => {
  await t.close();
});

async function upload(...contents: Buffer[]): Promise<Digest[]> {
  const requests = contents.map((data) => ({ digest: digestOf(data), data, compressor: 0 }));
  const response = await unary<BatchUpdateBlobsResponse>((done) =>
    t.client.cas.batchUpdateBlobs({ instanceName: '', requests, digestFunction: 0 }, done),
  );
  for (const r of response.responses) assert.equal(r.status?.code, 0);
  return requests.map((r) => r.digest);
}

async function missing(digests: Digest[]): Promise<Digest[]> {
  const response = await unary<FindMissingBlobsResponse>((done) =>
    t.client.cas.findMissingBlobs({ instanceName: '', blobDigests: digests, digestFunction: 0 }, done),
  );
  return response.missingBlobDigests;
}

type Node = { name: string; digest: Digest };
const encode = (d: { files?: Node[]; directories?: Node[] }) =>
  Buffer.from(
    Directory.encode({
      ...Directory.fromPartial({}),
      files: (d.files ?? []).map((f) => ({ ...f, isExecutable: false, nodeProperties: undefined })),
      directories: d.directories ?? [],
    }).finish(),
  );
const q = (name: string, value: string) => ({ name, value });
const unique = (label: string) => `urn:test:${label}:${randomBytes(6).toString('hex')}`;

describe('Remote Asset API: validation', () => {
  it('answers the empty requests BuildStream probes with INVALID_ARGUMENT', async () => {
    await rejectsWithCode(calls.fetchBlob({}), Code.INVALID_ARGUMENT, 'FetchBlob');
    await rejectsWithCode(calls.fetchDirectory({}), Code.INVALID_ARGUMENT, 'FetchDirectory');
    await rejectsWithCode(calls.pushBlob({}), Code.INVALID_ARGUMENT, 'PushBlob');
    await rejectsWithCode(calls.pushDirectory({}), Code.INVALID_ARGUMENT, 'PushDirectory');
  });

  it('rejects malformed digests, empty URIs, repeated qualifiers and bad checksums with INVALID_ARGUMENT', async () => {
    const uris = [unique('bad')];
    await rejectsWithCode(calls.pushBlob({ uris }), Code.INVALID_ARGUMENT, 'no digest');
    await rejectsWithCode(calls.pushBlob({ uris, blobDigest: { hash: 'xyz', sizeBytes: 1 } }), Code.INVALID_ARGUMENT);
    await rejectsWithCode(
      calls.pushBlob({ uris, blobDigest: { hash: 'a'.repeat(64), sizeBytes: -1 } }),
      Code.INVALID_ARGUMENT,
    );
    const [ok] = await upload(Buffer.from('fine'));
    await rejectsWithCode(
      calls.pushBlob({ uris, blobDigest: ok, referencesBlobs: [{ hash: 'A'.repeat(64), sizeBytes: 1 }] }),
      Code.INVALID_ARGUMENT,
    );
    await rejectsWithCode(calls.pushBlob({ uris: [''], blobDigest: ok }), Code.INVALID_ARGUMENT, 'empty URI');
    await rejectsWithCode(
      calls.fetchBlob({ uris, qualifiers: [q('a', '1'), q('a', '2')] }),
      Code.INVALID_ARGUMENT,
      'repeated qualifier',
    );
    await rejectsWithCode(
      calls.fetchBlob({ uris, qualifiers: [q('checksum.sri', 'sha1-abc')] }),
      Code.INVALID_ARGUMENT,
    );
    await rejectsWithCode(
      calls.fetchBlob({ uris, digestFunction: DigestFunction_Value.BLAKE3 }),
      Code.INVALID_ARGUMENT,
    );
    // A root that is not a Directory message.
    await rejectsWithCode(calls.pushDirectory({ uris, rootDirectoryDigest: ok }), Code.INVALID_ARGUMENT);
  });

  it('refuses to push content that is not in the CAS with FAILED_PRECONDITION listing what is missing', async () => {
    const absent = digestOf('not uploaded');
    const error = await rejectsWithCode(
      calls.pushBlob({ uris: [unique('absent')], blobDigest: absent }),
      Code.FAILED_PRECONDITION,
    );
    assert.match(error.message, /not in the CAS/);
    // Directory whose nested file is missing; check the PreconditionFailure detail on the wire.
    const leaf = digestOf('leaf not uploaded');
    const [root] = await upload(encode({ files: [{ name: 'leaf', digest: leaf }] }));
    // Read the PreconditionFailure detail with a raw client (unary() keeps only code and message).
    const client = t.client.channel.client(PushClient);
    const raw = await new Promise<ServiceError>((resolve) => {
      client.pushDirectory(
        {
          instanceName: '',
          uris: [unique('absent-tree')],
          qualifiers: [],
          expireAt: undefined,
          rootDirectoryDigest: root,
          referencesBlobs: [],
          referencesDirectories: [],
          digestFunction: 0,
        },
        (error) => resolve(error as ServiceError),
      );
    });
    assert.equal(raw.code, Code.FAILED_PRECONDITION);
    const status = Status.decode(raw.metadata.get('grpc-status-details-bin')[0] as Buffer);
    const violations = PreconditionFailure.decode(status.details[0]?.value ?? Buffer.alloc(0)).violations;
    assert.deepEqual(
      violations.map((v) => [v.type, v.subject]),
      [['MISSING', `blobs/${leaf.hash}/${leaf.sizeBytes}`]],
    );
  });
});

describe('Remote Asset API: push and fetch', () => {
  it('a pushed blob is found by any of its URIs with the same qualifiers in any order, and only then', async () => {
    const [digest] = (await upload(Buffer.from('pushed blob'))) as [Digest];
    const [u1, u2] = [unique('one'), unique('two')];
    const qualifiers = [q('resource_type', 'text/plain'), q('vcs.commit', 'abc')];
    await calls.pushBlob({ uris: [u1, u2], qualifiers, blobDigest: digest });
    const hit = await calls.fetchBlob({ uris: ['urn:other', u2], qualifiers: [...qualifiers].reverse() });
    assert.equal(hit.status?.code ?? 0, 0);
    assert.deepEqual(hit.blobDigest, digest);
    assert.equal(hit.uri, u2);
    assert.equal(hit.digestFunction, DigestFunction_Value.SHA256);
    assert.deepEqual((await calls.fetchBlob({ uris: [u1], qualifiers })).blobDigest, digest);
    // Different, fewer or more qualifiers, another instance, or the directory namespace: a miss.
    await rejectsWithCode(
      calls.fetchBlob({ uris: [u1], qualifiers: [q('resource_type', 'text/plain')] }),
      Code.NOT_FOUND,
    );
    await rejectsWithCode(calls.fetchBlob({ uris: [u1], qualifiers: [...qualifiers, q('x', 'y')] }), Code.NOT_FOUND);
    await rejectsWithCode(
      calls.fetchBlob({ uris: [u1], qualifiers: [q('resource_type', 'text/html'), q('vcs.commit', 'abc')] }),
      Code.NOT_FOUND,
    );
    await rejectsWithCode(calls.fetchBlob({ instanceName: 'other', uris: [u1], qualifiers }), Code.NOT_FOUND);
    await rejectsWithCode(calls.fetchDirectory({ uris: [u1], qualifiers }), Code.NOT_FOUND);
  });

  it('a pushed directory is served with its tree; a later push replaces it', async () => {
    const [a, b] = (await upload(Buffer.from('file a'), Buffer.from('file b'))) as [Digest, Digest];
    const [sub] = (await upload(encode({ files: [{ name: 'b', digest: b }] }))) as [Digest];
    const [root] = (await upload(
      encode({ files: [{ name: 'a', digest: a }], directories: [{ name: 'sub', digest: sub }] }),
    )) as [Digest];
    const uri = unique('dir');
    await calls.pushDirectory({ uris: [uri], rootDirectoryDigest: root });
    const hit = await calls.fetchDirectory({ uris: [uri] });
    assert.deepEqual(hit.rootDirectoryDigest, root);
    assert.equal(hit.expiresAt, undefined);
    const [root2] = (await upload(encode({ files: [{ name: 'only', digest: a }] }))) as [Digest];
    await calls.pushDirectory({ uris: [uri], rootDirectoryDigest: root2 });
    assert.deepEqual((await calls.fetchDirectory({ uris: [uri] })).rootDirectoryDigest, root2);
  });

  it('honours oldest_content_accepted and expire_at', async () => {
    const [digest] = (await upload(Buffer.from('timed'))) as [Digest];
    const uri = unique('timed');
    const nowSeconds = Math.floor(Date.now() / 1000);
    await calls.pushBlob({ uris: [uri], blobDigest: digest, expireAt: { seconds: nowSeconds + 3600, nanos: 0 } });
    const hit = await calls.fetchBlob({ uris: [uri], oldestContentAccepted: { seconds: nowSeconds - 60, nanos: 0 } });
    assert.deepEqual(hit.blobDigest, digest);
    assert.equal(hit.expiresAt?.seconds, nowSeconds + 3600);
    await rejectsWithCode(
      calls.fetchBlob({ uris: [uri], oldestContentAccepted: { seconds: nowSeconds + 3600, nanos: 0 } }),
      Code.NOT_FOUND,
    );
    // Pushing again with an expiry in the past retires the asset.
    await calls.pushBlob({ uris: [uri], blobDigest: digest, expireAt: { seconds: nowSeconds - 1, nanos: 0 } });
    await rejectsWithCode(calls.fetchBlob({ uris: [uri] }), Code.NOT_FOUND);
  });

  it('keeps digest functions apart', async () => {
    const data = Buffer.from('sha512 content');
    const digest = digestOf(data, SHA512);
    const response = await unary<BatchUpdateBlobsResponse>((done) =>
      t.client.cas.batchUpdateBlobs(
        { instanceName: '', requests: [{ digest, data, compressor: 0 }], digestFunction: DigestFunction_Value.SHA512 },
        done,
      ),
    );
    assert.equal(response.responses[0]?.status?.code, 0);
    const uri = unique('sha512');
    await calls.pushBlob({ uris: [uri], blobDigest: digest }); // inferred from the hash length
    const hit = await calls.fetchBlob({ uris: [uri], digestFunction: DigestFunction_Value.SHA512 });
    assert.deepEqual(hit.blobDigest, digest);
    assert.equal(hit.digestFunction, DigestFunction_Value.SHA512);
    await rejectsWithCode(calls.fetchBlob({ uris: [uri] }), Code.NOT_FOUND);
  });
});

describe('Remote Asset API: downloading from origin', () => {
  let origin: Origin;
  const tarball = randomBytes(300 * 1024);
  const big = randomBytes(9 * 1024 * 1024);
  let stall: (() => void) | undefined;

  before(async () => {
    origin = await startOrigin({
      '/file.tar.gz': tarball,
      '/big.bin': big,
      '/other.bin': Buffer.from('other'),
      '/broken': (response) => response.writeHead(500, 'Internal Server Error').end('boom'),
      '/secret': (response, request) => {
        if (request.headers.authorization === 'Bearer token') response.writeHead(200).end('secret content');
        else response.writeHead(401, 'Unauthorized').end();
      },
      '/slow': (response) => {
        response.writeHead(200, { 'content-length': 100 });
        response.write('partial');
        stall = () => response.destroy();
      },
    });
  });
  after(async () => {
    stall?.();
    await origin.close();
  });

  it('downloads, verifies and caches; a second fetch does not touch the origin', async () => {
    const uri = `${origin.url}/file.tar.gz`;
    const qualifiers = [q('checksum.sri', sriOf(tarball))];
    const first = await calls.fetchBlob({ uris: [uri], qualifiers });
    assert.equal(first.status?.code, 0, first.status?.message);
    assert.deepEqual(first.blobDigest, digestOf(tarball));
    assert.equal(first.uri, uri);
    assert.equal(origin.count('/file.tar.gz'), 1);
    const read = await readResource(t.client, `blobs/${first.blobDigest?.hash}/${first.blobDigest?.sizeBytes}`);
    assert.ok(read.equals(tarball));
    const second = await calls.fetchBlob({ uris: [uri], qualifiers });
    assert.deepEqual(second.blobDigest, digestOf(tarball));
    assert.equal(origin.count('/file.tar.gz'), 1, 'served from the cache');
    // Bazel without a checksum asks for content newer than the future: a fresh download.
    const future = { seconds: Math.floor(Date.now() / 1000) + 3600, nanos: 0 };
    const fresh = await calls.fetchBlob({ uris: [uri], oldestContentAccepted: future });
    assert.deepEqual(fresh.blobDigest, digestOf(tarball));
    assert.equal(origin.count('/file.tar.gz'), 2);
    // Without a checksum the server reports the sha256 it computed.
    assert.deepEqual(fresh.qualifiers, [q('checksum.sri', sriOf(tarball))]);
  });

  it('a checksum mismatch fails with ABORTED in the response status and stores nothing', async () => {
    const data = Buffer.from('other');
    const uri = `${origin.url}/other.bin`;
    const wrong = [q('checksum.sri', sriOf(Buffer.from('something else'), 'sha384'))];
    const response = await calls.fetchBlob({ uris: [uri], qualifiers: wrong });
    assert.equal(response.status?.code, Code.ABORTED);
    assert.match(response.status?.message ?? '', /checksum mismatch/);
    assert.equal(response.blobDigest, undefined);
    assert.deepEqual(await missing([digestOf(data)]), [digestOf(data)]);
    const again = await calls.fetchBlob({ uris: [uri], qualifiers: wrong });
    assert.equal(again.status?.code, Code.ABORTED);
    assert.equal(origin.count('/other.bin'), 2, 'a failure is not cached');
  });

  it('reports origin failures in the response status, tries mirrors in order', async () => {
    const notFound = await calls.fetchBlob({ uris: [`${origin.url}/nope`] });
    assert.equal(notFound.status?.code, Code.NOT_FOUND);
    assert.match(notFound.status?.message ?? '', /HTTP 404/);
    const unavailable = await calls.fetchBlob({ uris: [`${origin.url}/broken`] });
    assert.equal(unavailable.status?.code, Code.UNAVAILABLE);
    assert.match(unavailable.status?.message ?? '', /HTTP 500/);
    const refused = await calls.fetchBlob({ uris: ['http://127.0.0.1:1/x'] });
    assert.equal(refused.status?.code, Code.UNAVAILABLE);

    const before = origin.count('/broken');
    const mirrored = await calls.fetchBlob({
      uris: ['urn:not-downloadable', `${origin.url}/broken`, `${origin.url}/other.bin`],
      qualifiers: [q('checksum.sri', sriOf(Buffer.from('other')))],
    });
    assert.equal(mirrored.status?.code, 0);
    assert.equal(mirrored.uri, `${origin.url}/other.bin`);
    assert.equal(origin.count('/broken'), before + 1);
    // Nothing downloadable and nothing pushed: a plain miss.
    await rejectsWithCode(calls.fetchBlob({ uris: ['urn:only-a-name'] }), Code.NOT_FOUND);
    await rejectsWithCode(calls.fetchDirectory({ uris: [`${origin.url}/file.tar.gz`] }), Code.NOT_FOUND);
  });

  it('answers a provenance record (in-toto) of an http URI from pushed records only, never from the origin', async () => {
    const uri = `${origin.url}/file.tar.gz`;
    const asRecord = [q('resource_type', 'application/vnd.in-toto+json')];
    const before = origin.count('/file.tar.gz');
    const error = await rejectsWithCode(calls.fetchBlob({ uris: [uri], qualifiers: asRecord }), Code.NOT_FOUND);
    assert.match(error.message, /nothing was pushed under this name/);
    assert.equal(origin.count('/file.tar.gz'), before, 'the origin is not asked');
    const [record] = await upload(Buffer.from('{"_type":"https://in-toto.io/Statement/v1"}'));
    await calls.pushBlob({ uris: [uri], qualifiers: asRecord, blobDigest: record });
    const found = await calls.fetchBlob({ uris: [uri], qualifiers: asRecord });
    assert.deepEqual(found.blobDigest, record);
    assert.equal(origin.count('/file.tar.gz'), before);
  });

  it('sends http_header and http_header_url qualifiers to the origin, and they key the cache', async () => {
    const uri = `${origin.url}/secret`;
    const denied = await calls.fetchBlob({ uris: [uri] });
    assert.equal(denied.status?.code, Code.PERMISSION_DENIED);
    const ok = await calls.fetchBlob({ uris: [uri], qualifiers: [q('http_header:Authorization', 'Bearer token')] });
    assert.equal(ok.status?.code, 0, ok.status?.message);
    assert.deepEqual(ok.blobDigest, digestOf('secret content'));
    assert.deepEqual(
      ok.qualifiers.filter((x) => x.name.startsWith('http_header')),
      [],
      'credentials are not echoed',
    );
    const count = origin.count('/secret');
    // The same header given for this URI only is the same key: served from the cache.
    const perUrl = await calls.fetchBlob({
      uris: [`${origin.url}/broken`, uri],
      qualifiers: [q('http_header_url:1:authorization', 'Bearer token')],
    });
    assert.deepEqual(perUrl.blobDigest, digestOf('secret content'));
    assert.equal(origin.count('/secret'), count);
    // Without the credentials the cached copy is not served.
    const again = await calls.fetchBlob({ uris: [uri] });
    assert.equal(again.status?.code, Code.PERMISSION_DENIED);
    // The URL-specific header wins over the general one.
    const specific = await calls.fetchBlob({
      uris: [uri],
      qualifiers: [
        q('http_header:Authorization', 'Bearer wrong'),
        q('http_header_url:0:Authorization', 'Bearer token'),
      ],
      oldestContentAccepted: { seconds: Math.floor(Date.now() / 1000) + 3600, nanos: 0 },
    });
    assert.equal(specific.status?.code, 0, specific.status?.message);
    assert.equal(origin.requests.at(-1)?.headers.authorization, 'Bearer token');
  });

  it('digests downloads with the requested digest function', async () => {
    const response = await calls.fetchBlob({
      uris: [`${origin.url}/other.bin`],
      digestFunction: DigestFunction_Value.SHA512,
      qualifiers: [q('checksum.sri', sriOf(Buffer.from('other')))],
    });
    assert.equal(response.status?.code, 0);
    assert.deepEqual(response.blobDigest, digestOf('other', SHA512));
    assert.equal(response.digestFunction, DigestFunction_Value.SHA512);
  });

  it('stages large downloads on disk and stores them intact', async () => {
    const response = await calls.fetchBlob({
      uris: [`${origin.url}/big.bin`],
      qualifiers: [q('checksum.sri', sriOf(big, 'sha512'))],
    });
    assert.equal(response.status?.code, 0, response.status?.message);
    assert.deepEqual(response.blobDigest, digestOf(big));
    assert.deepEqual(await missing([digestOf(big)]), []);
  });

  it('times out with DEADLINE_EXCEEDED', async () => {
    const response = await calls.fetchBlob({
      uris: [`${origin.url}/slow`],
      timeout: { seconds: 0, nanos: 300_000_000 },
    });
    assert.equal(response.status?.code, Code.DEADLINE_EXCEEDED, response.status?.message);
  });

  it('joins concurrent identical downloads', async () => {
    const uri = `${origin.url}/big.bin`;
    const future = { seconds: Math.floor(Date.now() / 1000) - 1, nanos: 0 };
    const before = origin.count('/big.bin');
    const qualifiers = [q('bazel.canonical_id', 'joined')];
    const results = await Promise.all(
      [1, 2, 3].map(() => calls.fetchBlob({ uris: [uri], qualifiers, oldestContentAccepted: future })),
    );
    for (const r of results) assert.deepEqual(r.blobDigest, digestOf(big));
    assert.equal(origin.count('/big.bin'), before + 1);
  });
});

describe('Remote Asset API: a server with the default fetch policy', () => {
  it('answers a fetch from a loopback origin with PERMISSION_DENIED in the response, never connecting', async () => {
    const origin = await startOrigin({ '/file': Buffer.from('local') });
    const guarded = await startTestServer();
    try {
      const response = await assetCalls(guarded.client).fetchBlob({ uris: [`${origin.url}/file`] });
      assert.equal(response.status?.code, Code.PERMISSION_DENIED);
      assert.match(response.status?.message ?? '', /127\.0\.0\.1 is a loopback address, refused by default/);
      assert.equal(response.uri, `${origin.url}/file`);
      assert.equal(origin.connections(), 0);
    } finally {
      await guarded.close();
      await origin.close();
    }
  });
});
