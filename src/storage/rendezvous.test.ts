import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { type PlacementNode, RendezvousPlacement } from './rendezvous.js';

const digestHashes = Array.from({ length: 20_000 }, (_, index) =>
  createHash('sha256').update(`blob ${index}`).digest('hex'),
);

function nodes(count: number, weight = 1): PlacementNode[] {
  return Array.from({ length: count }, (_, index) => ({ id: `grpc://storage-${index}:8981`, weight }));
}

function ids(placed: readonly PlacementNode[]): string[] {
  return placed.map((node) => node.id);
}

describe('RendezvousPlacement', () => {
  test('places a digest on the requested number of distinct nodes, at most all of them', () => {
    const placement = new RendezvousPlacement(nodes(5));
    for (const hash of digestHashes.slice(0, 100)) {
      const placed = ids(placement.place(hash, 3));
      assert.equal(placed.length, 3);
      assert.equal(new Set(placed).size, 3);
    }
    assert.equal(placement.place(digestHashes[0] as string, 9).length, 5);
  });

  test('gives the same placement whatever the order of the node list', () => {
    const list = nodes(7);
    const forward = new RendezvousPlacement(list);
    const backward = new RendezvousPlacement([...list].reverse());
    for (const hash of digestHashes.slice(0, 500)) {
      assert.deepEqual(ids(forward.place(hash, 7)), ids(backward.place(hash, 7)));
    }
  });

  test('the first N of a longer preference list are the N replicas', () => {
    const placement = new RendezvousPlacement(nodes(6));
    for (const hash of digestHashes.slice(0, 200)) {
      assert.deepEqual(ids(placement.place(hash, 2)), ids(placement.place(hash, 6)).slice(0, 2));
    }
  });

  test('a joining node only takes replicas for itself: nothing moves between existing nodes', () => {
    const before = new RendezvousPlacement(nodes(9));
    const after = new RendezvousPlacement(nodes(10));
    const joined = 'grpc://storage-9:8981';
    let moved = 0;
    for (const hash of digestHashes) {
      const old = ids(before.place(hash, 2));
      const current = ids(after.place(hash, 2));
      const added = current.filter((id) => !old.includes(id));
      if (added.length === 0) {
        assert.deepEqual(current, old);
        continue;
      }
      assert.deepEqual(added, [joined]);
      assert.ok(old.includes(current.find((id) => id !== joined) as string));
      moved++;
    }
    // Each key gains the new node with probability 2/10; the bounds are far from that.
    assert.ok(moved > digestHashes.length * 0.17 && moved < digestHashes.length * 0.23, `${moved} keys moved`);
  });

  test("a leaving node's keys go to their next-best node and no other key moves", () => {
    const list = nodes(8);
    const before = new RendezvousPlacement(list);
    const left = list[3] as PlacementNode;
    const after = new RendezvousPlacement(list.filter((node) => node !== left));
    for (const hash of digestHashes.slice(0, 5_000)) {
      const ranking = ids(before.place(hash, 8));
      const expected = ranking.filter((id) => id !== left.id).slice(0, 2);
      assert.deepEqual(ids(after.place(hash, 2)), expected);
    }
  });

  test('first choices fall on nodes in proportion to their weights', () => {
    const list = [...nodes(4, 1), { id: 'grpc://big:8981', weight: 4 }];
    const placement = new RendezvousPlacement(list);
    const firstChoices = new Map<string, number>();
    for (const hash of digestHashes) {
      const first = placement.place(hash, 1)[0]?.id as string;
      firstChoices.set(first, (firstChoices.get(first) ?? 0) + 1);
    }
    // Expected: the big node 4/8 of the keys, each small node 1/8 (2,500 of 20,000).
    const big = firstChoices.get('grpc://big:8981') ?? 0;
    assert.ok(big > 9_600 && big < 10_400, `big node: ${big}`);
    for (const node of list.slice(0, 4)) {
      const count = firstChoices.get(node.id) ?? 0;
      assert.ok(count > 2_300 && count < 2_700, `${node.id}: ${count}`);
    }
  });

  test('places any key string, hexadecimal digest or not, deterministically', () => {
    const placement = new RendezvousPlacement(nodes(4));
    assert.deepEqual(ids(placement.place('abc', 2)), ids(placement.place('abc', 2)));
    assert.equal(placement.place('not a digest', 4).length, 4);
  });

  test('rejects an empty node list, duplicate ids, bad weights and bad counts with clear errors', () => {
    assert.throws(() => new RendezvousPlacement([]), /at least one node/);
    assert.throws(() => new RendezvousPlacement([...nodes(2), ...nodes(1)]), /listed twice/);
    assert.throws(() => new RendezvousPlacement([{ id: 'a', weight: 0 }]), /weight must be a positive number/);
    assert.throws(() => new RendezvousPlacement([{ id: 'a', weight: Number.NaN }]), /weight must be a positive number/);
    assert.throws(() => new RendezvousPlacement([{ id: '', weight: 1 }]), /non-empty id/);
    const placement = new RendezvousPlacement(nodes(2));
    assert.throws(() => placement.place(digestHashes[0] as string, 0), /positive integer/);
    assert.throws(() => placement.place(digestHashes[0] as string, 1.5), /positive integer/);
  });
});
