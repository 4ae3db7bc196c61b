import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { testBlob } from '../../test/support/blobStoreContract.js';
import { rejectsWithCode } from '../../test/support/status.js';
import { backgroundContext } from '../context/requestContext.js';
import { ConfigError } from '../util/configValues.js';
import { Code } from '../util/status.js';
import { getBuffer, putBuffer } from './blobStore.js';
import { MemoryBlobStore } from './memoryBlobStore.js';
import { linkableDisk, parseStorageNode } from './storageConfig.js';
import { openStorageGraph } from './storageFactory.js';
import { CountingStorageObserver } from './storageObserver.js';

const context = backgroundContext();
const scratch: string[] = [];
after(async () => {
  for (const directory of scratch) await rm(directory, { recursive: true, force: true });
});

async function temporaryDirectory(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'granary-factory-'));
  scratch.push(directory);
  return directory;
}

function configError(value: unknown): ConfigError {
  try {
    parseStorageNode(value, 'storage.cas');
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error;
  }
  assert.fail('the configuration was accepted');
}

describe('parseStorageNode', () => {
  it('accepts a nested graph and turns sizes and durations into numbers', () => {
    const parsed = parseStorageNode(
      {
        metrics: {
          name: 'cas',
          backend: {
            readCaching: {
              fast: { memory: { maxSizeBytes: '1MiB' } },
              slow: {
                existenceCaching: {
                  ttl: '30s',
                  backend: {
                    sharding: { shards: [{ weight: 2, backend: { disk: { path: '/a', maxSizeBytes: 1000 } } }] },
                  },
                },
              },
            },
          },
        },
      },
      'storage.cas',
    );
    assert.deepEqual(parsed, {
      metrics: {
        name: 'cas',
        backend: {
          readCaching: {
            fast: { memory: { maxSizeBytes: 1024 * 1024 } },
            slow: {
              existenceCaching: {
                ttlMs: 30_000,
                backend: {
                  sharding: { shards: [{ weight: 2, backend: { disk: { path: '/a', maxSizeBytes: 1000 } } }] },
                },
              },
            },
          },
        },
      },
    });
  });

  it('names the path of an unknown kind, a misspelt key, a missing key and a bad value', () => {
    const unknownKind = configError({ verifying: { backend: { dsik: { path: '/x', maxSizeBytes: 1 } } } });
    assert.equal(unknownKind.path, 'storage.cas.verifying.backend.dsik');
    assert.match(unknownKind.message, /unknown kind \(expected one of memory, disk, grpc/);

    const misspelt = configError({
      sharding: {
        shards: [{ backend: { memory: { maxSizeBytes: 10 } } }, { backend: { disk: { path: '/d', maxSize: 5 } } }],
      },
    });
    assert.equal(misspelt.path, 'storage.cas.sharding.shards[1].backend.disk.maxSize');

    const missing = configError({ readCaching: { fast: { memory: { maxSizeBytes: 10 } } } });
    assert.equal(missing.path, 'storage.cas.readCaching.slow');
    assert.match(missing.message, /is required/);

    const badSize = configError({ memory: { maxSizeBytes: 'lots' } });
    assert.equal(badSize.path, 'storage.cas.memory.maxSizeBytes');
    assert.match(badSize.message, /invalid size "lots"/);

    assert.equal(configError({ memory: { maxSizeBytes: 1 }, disk: {} }).path, 'storage.cas');
    assert.equal(configError({ sharding: { shards: [] } }).path, 'storage.cas.sharding.shards');
    assert.equal(
      configError({ sharding: { shards: [{ weight: -1, backend: { memory: { maxSizeBytes: 1 } } }] } }).path,
      'storage.cas.sharding.shards[0].weight',
    );
    assert.equal(
      configError({ grpc: { target: 'grpcs://node:443', tls: { certFile: '/c.pem' } } }).path,
      'storage.cas.grpc.tls',
    );
    assert.equal(
      configError({ replicated: { replicas: 3, nodes: [{ backend: { memory: { maxSizeBytes: 1 } } }] } }).path,
      'storage.cas.replicated.replicas',
    );
    assert.equal(
      configError({ disk: { path: '/d', maxSizeBytes: 1, readOnlyBlobs: 'yes' } }).path,
      'storage.cas.disk.readOnlyBlobs',
    );
  });

  it('names the read-only disk a worker may link from, through decorators that keep blobs as they are, and the sizes routed elsewhere', () => {
    const readOnly = { disk: { path: '/cas', maxSizeBytes: '1GiB', readOnlyBlobs: true } };
    const parsed = (value: unknown) => parseStorageNode(value, 'storage.cas');
    assert.deepEqual(linkableDisk(parsed(readOnly)), { directory: '/cas', smallBlobBytes: 0 });
    assert.deepEqual(
      linkableDisk(parsed({ verifying: { backend: { metrics: { name: 'cas', backend: readOnly } } } })),
      { directory: '/cas', smallBlobBytes: 0 },
    );
    assert.equal(linkableDisk(parsed({ disk: { path: '/cas', maxSizeBytes: '1GiB' } })), undefined);
    const small = { segments: { path: '/small', maxSizeBytes: '1GiB' } };
    assert.deepEqual(linkableDisk(parsed({ sizeRouting: { maxSmallBlobBytes: '64KiB', small, large: readOnly } })), {
      directory: '/cas',
      smallBlobBytes: 65536,
    });
    assert.equal(
      linkableDisk(parsed({ sizeRouting: { maxSmallBlobBytes: '64KiB', small: readOnly, large: small } })),
      undefined,
      'the small side is never linked from',
    );
    assert.equal(
      linkableDisk(parsed({ sharding: { shards: [{ backend: readOnly }, { backend: readOnly }] } })),
      undefined,
    );
  });
});

describe('openStorageGraph', () => {
  it('builds a verifying, sharded graph of two disks that stores, reads and reports its size', async () => {
    const directory = await temporaryDirectory();
    const config = parseStorageNode(
      {
        verifying: {
          backend: {
            sharding: {
              shards: [
                { weight: 1, backend: { disk: { path: join(directory, 'one'), maxSizeBytes: '1MiB' } } },
                { weight: 1, backend: { disk: { path: join(directory, 'two'), maxSizeBytes: '2MiB' } } },
              ],
            },
          },
        },
      },
      'storage.cas',
    );
    const opened = await openStorageGraph(config, 'storage.cas');
    try {
      const blobs = Array.from({ length: 20 }, (_, seed) => testBlob(1000, seed));
      for (const { digest, data } of blobs) await putBuffer(context, opened.store, digest, data);
      for (const { digest, data } of blobs) assert.ok((await getBuffer(context, opened.store, digest))?.equals(data));
      assert.deepEqual(opened.store.usage?.(context), {
        usedBytes: 20_000,
        maximumBytes: 3 * 1024 * 1024,
        blobCount: 20,
      });
      assert.ok(opened.store.localPath?.(context, blobs[0]!.digest));
      await rejectsWithCode(
        putBuffer(context, opened.store, testBlob(10, 99).digest, Buffer.from('x')),
        Code.INVALID_ARGUMENT,
      );
    } finally {
      await opened.close();
    }
  });

  it('builds a size-routing graph of segments for small blobs and a disk for the rest', async () => {
    const directory = await temporaryDirectory();
    const config = parseStorageNode(
      {
        sizeRouting: {
          maxSmallBlobBytes: '1KiB',
          small: { segments: { path: join(directory, 'small'), maxSizeBytes: '1MiB' } },
          large: { disk: { path: join(directory, 'large'), maxSizeBytes: '2MiB' } },
        },
      },
      'storage.cas',
    );
    assert.equal('sizeRouting' in config && config.sizeRouting.maxSmallBlobBytes, 1024);
    const opened = await openStorageGraph(config, 'storage.cas', { verifyRoot: true });
    try {
      const blobs = [testBlob(1024, 1), testBlob(1025, 2)];
      for (const { digest, data } of blobs) await putBuffer(context, opened.store, digest, data);
      for (const { digest, data } of blobs) assert.ok((await getBuffer(context, opened.store, digest))?.equals(data));
      assert.equal(opened.store.usage?.(context).maximumBytes, 3 * 1024 * 1024);
      assert.equal(opened.store.localPath?.(context, blobs[0]!.digest), undefined, 'the small blob is in a segment');
      assert.ok(opened.store.localPath?.(context, blobs[1]!.digest), 'the large blob is a file');
      await rejectsWithCode(
        putBuffer(context, opened.store, testBlob(10, 99).digest, Buffer.from('x')),
        Code.INVALID_ARGUMENT,
      );
    } finally {
      await opened.close();
    }
    assert.equal(
      configError({
        sizeRouting: {
          maxSmallBlobBytes: 10,
          small: { segments: { path: '/s' } },
          large: { memory: { maxSizeBytes: 1 } },
        },
      }).path,
      'storage.cas.sizeRouting.small.segments.maxSizeBytes',
    );
  });

  it('verifies the root of a CAS graph that does not start with a verifying node', async () => {
    const opened = await openStorageGraph({ memory: { maxSizeBytes: 1000 } }, 'storage.cas', { verifyRoot: true });
    await rejectsWithCode(
      putBuffer(context, opened.store, testBlob(10, 1).digest, Buffer.from('x')),
      Code.INVALID_ARGUMENT,
    );
    const unverified = await openStorageGraph({ memory: { maxSizeBytes: 1000 } }, 'storage.actionCache');
    await putBuffer(context, unverified.store, testBlob(10, 1).digest, Buffer.from('any record'));
  });

  it('reports the calls on the whole graph under rootName, after verification at the root', async () => {
    const observer = new CountingStorageObserver();
    const opened = await openStorageGraph(
      parseStorageNode({ memory: { maxSizeBytes: 10_000 } }, 'storage.cas'),
      'storage.cas',
      { observer, rootName: 'cas', verifyRoot: true },
    );
    const { digest, data } = testBlob(100, 2);
    await putBuffer(context, opened.store, digest, data);
    assert.deepEqual(await getBuffer(context, opened.store, digest), data);
    assert.equal(await opened.store.get(context, testBlob(10, 3).digest), undefined);
    await rejectsWithCode(putBuffer(context, opened.store, testBlob(10, 4).digest, data), Code.INVALID_ARGUMENT);
    assert.deepEqual(observer.nodes(), ['cas']);
    assert.equal(observer.counters('cas', 'put').bytes, 200, 'the refused write is counted too');
    assert.equal(observer.counters('cas', 'put').calls, 2);
    assert.equal(observer.counters('cas', 'get').bytes, 100);
    assert.equal(observer.counters('cas', 'get').misses, 1);
    assert.equal(opened.store.usage?.(context).usedBytes, 100, 'capabilities pass through');
    await opened.close();
  });

  it('reports every node under its path, and metrics nodes under their names', async () => {
    const observer = new CountingStorageObserver();
    const opened = await openStorageGraph(
      parseStorageNode(
        {
          readCaching: {
            fast: { metrics: { name: 'fast-cache', backend: { memory: { maxSizeBytes: 10_000 } } } },
            slow: { memory: { maxSizeBytes: 10_000 } },
          },
        },
        'storage.cas',
      ),
      'storage.cas',
      { observer, observeEveryNode: true },
    );
    const { digest, data } = testBlob(100, 1);
    await putBuffer(context, opened.store, digest, data);
    await getBuffer(context, opened.store, digest);
    await getBuffer(context, opened.store, digest);
    assert.deepEqual(observer.nodes().sort(), [
      'fast-cache',
      'storage.cas',
      'storage.cas.readCaching.fast.metrics.backend',
      'storage.cas.readCaching.slow',
    ]);
    assert.equal(observer.counters('fast-cache', 'get').misses, 1);
    assert.equal(observer.counters('fast-cache', 'put').bytes, 100);
    assert.equal(observer.counters('storage.cas.readCaching.slow', 'get').calls, 1);
    assert.equal(observer.counters('storage.cas', 'get').calls, 2);
  });

  it('opens grpc nodes through the opener it is given, and refuses them without one', async () => {
    const remote = new MemoryBlobStore();
    const targets: string[] = [];
    let closed = 0;
    const opened = await openStorageGraph(
      {
        mirrored: {
          backends: [{ grpc: { target: 'grpc://node-a:8980' } }, { grpc: { target: 'grpc://node-b:8980' } }],
        },
      },
      'storage.cas',
      {
        openRemote: (config) => {
          targets.push(config.target);
          return { store: remote, close: async () => void closed++ };
        },
      },
    );
    assert.deepEqual(targets, ['grpc://node-a:8980', 'grpc://node-b:8980']);
    await opened.close();
    assert.equal(closed, 2);
    await assert.rejects(openStorageGraph({ grpc: { target: 'grpc://x:1' } }, 'storage.cas'), {
      name: 'ConfigError',
      path: 'storage.cas.grpc',
    });
  });

  it('builds a replicated node that keeps each blob on as many nodes as asked, and closes what it opened when a node fails', async () => {
    const config = parseStorageNode(
      {
        replicated: {
          replicas: 2,
          nodes: [
            { backend: { grpc: { target: 'grpc://node-a:8980' } } },
            { backend: { grpc: { target: 'grpc://node-b:8980' } } },
            { backend: { grpc: { target: 'grpc://node-c:8980' } } },
          ],
        },
      },
      'storage.cas',
    );
    const nodes = new Map<string, MemoryBlobStore>();
    const opened = await openStorageGraph(config, 'storage.cas', {
      openRemote: (remote) => {
        const store = new MemoryBlobStore();
        nodes.set(remote.target, store);
        return { store, close: async () => {} };
      },
    });
    const blobs = Array.from({ length: 10 }, (_, seed) => testBlob(100, seed));
    for (const { digest, data } of blobs) await putBuffer(context, opened.store, digest, data);
    for (const { digest } of blobs) {
      let copies = 0;
      for (const node of nodes.values()) if ((await node.findMissing(context, [digest])).length === 0) copies++;
      assert.equal(copies, 2);
    }
    await opened.close();

    let closed = 0;
    await assert.rejects(
      openStorageGraph(
        { mirrored: { backends: [{ grpc: { target: 'a' } }, { grpc: { target: 'b' } }] } },
        'storage.cas',
        {
          openRemote: (remote, path) => {
            if (remote.target === 'b') throw new ConfigError(path, 'unreachable');
            return { store: new MemoryBlobStore(), close: async () => void closed++ };
          },
        },
      ),
      { path: 'storage.cas.mirrored.backends[1].grpc' },
    );
    assert.equal(closed, 1);
  });
});
