/**
 * The replicated store over memory nodes that can be switched off: it keeps the
 * BlobStore contract, puts each blob on exactly the N nodes rendezvous hashing
 * names, asks each node only about its own blobs, repairs missing replicas, routes
 * around a failed node and returns to it later, loses nothing when any one node is
 * lost, and still finds blobs placed before a node joined.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blobStoreContract, testBlob } from '../../test/support/blobStoreContract.js';
import { rejectsWithCode } from '../../test/support/status.js';
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import type { Digest } from '../digest/digest.js';
import { Code, invalidArgument, StatusError } from '../util/status.js';
import {
  type BatchItem,
  type Blob,
  type BlobWriter,
  type FindMissingOptions,
  ForwardingBlobStore,
  getBuffer,
  putBuffer,
  putBuffers,
} from './blobStore.js';
import { MemoryBlobStore } from './memoryBlobStore.js';
import { RendezvousPlacement } from './rendezvous.js';
import { ReplicatedBlobStore } from './replicatedBlobStore.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

/** A memory node that can be made unreachable, and that records which digests it was asked about. */
class SwitchableNode extends ForwardingBlobStore {
  down = false;
  /** Every call that reached the node (down or not): method and digests. */
  readonly calls: { method: string; digests: Digest[] }[] = [];
  readonly memory: MemoryBlobStore;

  constructor(readonly id: string) {
    const memory = new MemoryBlobStore();
    super(memory);
    this.memory = memory;
  }

  override async findMissing(
    context: RequestContext,
    digests: readonly Digest[],
    options?: FindMissingOptions,
  ): Promise<Digest[]> {
    this.reach('findMissing', digests);
    // New objects, as a remote node's answer is: the store must compare digests by value.
    return (await super.findMissing(context, digests, options)).map((digest) => ({ ...digest }));
  }

  override async get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    this.reach('get', [digest]);
    return super.get(context, digest);
  }

  /** A writer that fails like a broken connection once the node goes down. */
  override async put(context: RequestContext, digest: Digest): Promise<BlobWriter> {
    this.reach('put', [digest]);
    const writer = await super.put(context, digest);
    const check = () => {
      if (this.down) throw new StatusError(Code.UNAVAILABLE, `${this.id} went away`);
    };
    return {
      write: async (chunk) => {
        check();
        await writer.write(chunk);
      },
      commit: async () => {
        check();
        await writer.commit();
      },
      abort: () => writer.abort(),
    };
  }

  override async putBatch(context: RequestContext, items: readonly BatchItem[]): Promise<void> {
    this.reach(
      'putBatch',
      items.map((item) => item.digest),
    );
    await putBuffers(context, this.memory, items);
  }

  /** Whether the node holds the blob, without counting a call. */
  async holds(digest: Digest): Promise<boolean> {
    return (await this.memory.findMissing(context, [digest])).length === 0;
  }

  private reach(method: string, digests: readonly Digest[]): void {
    this.calls.push({ method, digests: [...digests] });
    if (this.down) throw new StatusError(Code.UNAVAILABLE, `${this.id} is unreachable`);
  }
}

function makeNodes(count: number, prefix = 'grpc://node-'): SwitchableNode[] {
  return Array.from({ length: count }, (_, index) => new SwitchableNode(`${prefix}${index}`));
}

function replicated(nodes: SwitchableNode[], replicas: number, now?: () => number): ReplicatedBlobStore {
  return new ReplicatedBlobStore(
    nodes.map((node) => ({ id: node.id, store: node })),
    { replicas, now, retryDownNodeAfterMs: 1_000 },
  );
}

/** The ids of the nodes rendezvous hashing names for a digest, best first. */
function placementOf(nodes: SwitchableNode[], digest: Digest, count: number): string[] {
  const placement = new RendezvousPlacement(nodes.map((node) => ({ id: node.id, weight: 1 })));
  return placement.place(digest.hash, count).map((node) => node.id);
}

async function holders(nodes: SwitchableNode[], digest: Digest): Promise<string[]> {
  const result: string[] = [];
  for (const node of nodes) if (await node.holds(digest)) result.push(node.id);
  return result.sort();
}

blobStoreContract('ReplicatedBlobStore', async () => {
  const store = replicated(makeNodes(3), 2);
  return { store, cleanup: () => store.close() };
});

describe('ReplicatedBlobStore', () => {
  it('keeps each blob on exactly the N nodes rendezvous hashing names, by put and by putBatch', async () => {
    const nodes = makeNodes(5);
    const store = replicated(nodes, 2);
    const blobs = Array.from({ length: 40 }, (_, index) => testBlob(100 + index, index));
    for (const blob of blobs.slice(0, 20)) await putBuffer(context, store, blob.digest, blob.data);
    await store.putBatch(
      context,
      blobs.slice(20).map(({ digest, data }) => ({ digest, data })),
    );
    for (const blob of blobs) {
      assert.deepEqual(await holders(nodes, blob.digest), placementOf(nodes, blob.digest, 2).sort());
    }
  });

  it('asks each node about the blobs placed on it only, and reports a blob missing only when all its nodes lack it', async () => {
    const nodes = makeNodes(4);
    const store = replicated(nodes, 2);
    const everywhere = testBlob(300, 1);
    const onOneReplica = testBlob(300, 2);
    const nowhere = testBlob(300, 3);
    await putBuffer(context, store, everywhere.digest, everywhere.data);
    const [, secondHome] = placementOf(nodes, onOneReplica.digest, 2);
    const second = nodes.find((node) => node.id === secondHome) as SwitchableNode;
    await putBuffer(context, second.memory, onOneReplica.digest, onOneReplica.data);
    for (const node of nodes) node.calls.length = 0;

    const asked = [everywhere.digest, onOneReplica.digest, nowhere.digest];
    assert.deepEqual(await store.findMissing(context, asked), [nowhere.digest]);
    for (const node of nodes) {
      const expected = asked.filter((digest) => placementOf(nodes, digest, 2).includes(node.id));
      const received = node.calls.filter((call) => call.method === 'findMissing').flatMap((call) => call.digests);
      assert.deepEqual(received, expected, `${node.id} is asked about its own blobs only`);
    }
    await store.repairsIdle();
    assert.deepEqual(
      await holders(nodes, onOneReplica.digest),
      placementOf(nodes, onOneReplica.digest, 2).sort(),
      'the replica that lacked the blob was repaired',
    );
  });

  it('reads a blob from a replica when its first node lacks it, and copies it back there', async () => {
    const nodes = makeNodes(3);
    const store = replicated(nodes, 2);
    const blob = testBlob(2 * 1024 * 1024, 7);
    const [firstHome, secondHome] = placementOf(nodes, blob.digest, 2);
    const second = nodes.find((node) => node.id === secondHome) as SwitchableNode;
    await putBuffer(context, second.memory, blob.digest, blob.data);

    assert.ok((await getBuffer(context, store, blob.digest))?.equals(blob.data));
    await store.repairsIdle();
    const first = nodes.find((node) => node.id === firstHome) as SwitchableNode;
    assert.ok(
      (await getBuffer(context, first.memory, blob.digest))?.equals(blob.data),
      'the first node holds it again',
    );
  });

  it('marks a failed node down, sends its traffic to the next nodes, and uses it again after the retry interval', async () => {
    let nowMs = 1_000_000;
    const nodes = makeNodes(3);
    const store = replicated(nodes, 2, () => nowMs);
    const before = testBlob(500, 11);
    await putBuffer(context, store, before.digest, before.data);
    const [firstHome] = placementOf(nodes, before.digest, 2);
    const failing = nodes.find((node) => node.id === firstHome) as SwitchableNode;
    failing.down = true;

    assert.ok((await getBuffer(context, store, before.digest))?.equals(before.data), 'served by the other replica');
    const callsWhenMarked = failing.calls.length;
    // Blobs whose placement starts with the failed node go to the next two nodes meanwhile.
    const during = Array.from({ length: 30 }, (_, index) => testBlob(400, 100 + index)).filter(
      (blob) => placementOf(nodes, blob.digest, 1)[0] === failing.id,
    );
    assert.ok(during.length > 0);
    for (const blob of during) {
      await putBuffer(context, store, blob.digest, blob.data);
      assert.deepEqual(
        await holders(nodes, blob.digest),
        nodes
          .filter((node) => node !== failing)
          .map((node) => node.id)
          .sort(),
      );
    }
    assert.deepEqual(await store.findMissing(context, [before.digest, ...during.map((blob) => blob.digest)]), []);
    assert.equal(failing.calls.length, callsWhenMarked, 'a node marked down is left alone');

    failing.down = false;
    nowMs += 1_001;
    assert.deepEqual(await store.findMissing(context, [before.digest]), []);
    assert.ok(failing.calls.length > callsWhenMarked, 'tried again once the retry interval passed');
    // Back in service: a blob written during the outage is read and copied to its first node.
    const [blob] = during as [{ digest: Digest; data: Buffer }];
    assert.ok((await getBuffer(context, store, blob.digest))?.equals(blob.data));
    await store.repairsIdle();
    assert.ok(await failing.holds(blob.digest));
  });

  it('loses no blob when any one node is lost: every one stays readable and none is reported missing', async () => {
    let nowMs = 1_000_000;
    const nodes = makeNodes(3);
    const store = replicated(nodes, 2, () => nowMs);
    const blobs = Array.from({ length: 30 }, (_, index) => testBlob(64 + index, 200 + index));
    for (const blob of blobs) await putBuffer(context, store, blob.digest, blob.data);
    for (const lost of nodes) {
      lost.down = true;
      // The frontend that wrote the blobs, and a fresh one that never saw the node answer, both serve everything.
      for (const frontend of [store, replicated(nodes, 2, () => nowMs)]) {
        assert.deepEqual(
          await frontend.findMissing(
            context,
            blobs.map((blob) => blob.digest),
          ),
          [],
        );
        for (const blob of blobs) assert.ok((await getBuffer(context, frontend, blob.digest))?.equals(blob.data));
      }
      lost.down = false;
      nowMs += 1_001;
    }
  });

  it('finds blobs placed before a node joined, and FindMissing copies to the newcomer only the replicas it wins', async () => {
    const nodes = makeNodes(4);
    const before = replicated(nodes, 2);
    const blobs = Array.from({ length: 400 }, (_, index) => testBlob(32, 1_000 + index));
    await before.putBatch(
      context,
      blobs.map(({ digest, data }) => ({ digest, data })),
    );

    const joined = [...nodes, new SwitchableNode('grpc://node-new')];
    const after = replicated(joined, 2);
    for (const blob of blobs) assert.ok((await getBuffer(context, after, blob.digest))?.equals(blob.data));
    assert.deepEqual(
      await after.findMissing(
        context,
        blobs.map((blob) => blob.digest),
      ),
      [],
    );
    await after.repairsIdle();
    const newcomer = joined[4] as SwitchableNode;
    let moved = 0;
    for (const blob of blobs) {
      const wins = placementOf(joined, blob.digest, 2).includes(newcomer.id);
      assert.equal(await newcomer.holds(blob.digest), wins, 'the newcomer holds exactly the blobs it wins');
      if (wins) moved++;
    }
    // One replica in five moves to the new fifth node: 160 of 800 replicas expected.
    assert.ok(moved > 100 && moved < 220, `${moved} of 800 replicas moved`);
  });

  it('keeps a write that one replica failed during, and fails with UNAVAILABLE when no node answers', async () => {
    const nodes = makeNodes(2);
    const store = replicated(nodes, 2);
    const blob = testBlob(1000, 31);
    const writer = await store.put(context, blob.digest);
    await writer.write(blob.data.subarray(0, 500));
    const gone = nodes[0] as SwitchableNode;
    gone.down = true;
    await writer.write(blob.data.subarray(500));
    await writer.commit();
    assert.ok((await getBuffer(context, store, blob.digest))?.equals(blob.data));
    assert.equal(await gone.holds(blob.digest), false, 'the node that went away holds nothing half-written');

    for (const node of nodes) node.down = true;
    const other = testBlob(10, 32);
    await rejectsWithCode(putBuffer(context, store, other.digest, other.data), Code.UNAVAILABLE);
    await rejectsWithCode(store.get(context, other.digest), Code.UNAVAILABLE);
    await rejectsWithCode(store.findMissing(context, [other.digest]), Code.UNAVAILABLE);
    await rejectsWithCode(store.putBatch(context, [other]), Code.UNAVAILABLE);
  });

  it('passes on a replica rejecting the data itself instead of marking its node down', async () => {
    const nodes = makeNodes(2);
    const rejecting = nodes[0] as SwitchableNode;
    rejecting.put = async () => {
      throw invalidArgument('the node refuses this blob');
    };
    const store = replicated(nodes, 2);
    const blob = testBlob(10, 41);
    await rejectsWithCode(putBuffer(context, store, blob.digest, blob.data), Code.INVALID_ARGUMENT);
    rejecting.calls.length = 0;
    await store.findMissing(context, [blob.digest]);
    assert.equal(rejecting.calls.length, 1, 'the node is still asked');
  });

  it('refuses more replicas than nodes, and no nodes', () => {
    assert.throws(() => replicated(makeNodes(2), 3), /3 replicas need at least as many storage nodes/);
    assert.throws(() => new ReplicatedBlobStore([], { replicas: 1 }), /at least one storage node/);
  });
});
