/**
 * `npm run simulate:placement`: places a million digests on 3 to 100 storage nodes with the
 * sharded CAS's own placement function (src/storage/rendezvous.ts) and reports how evenly
 * the replicas spread (max/mean load, in keys and in bytes) and which fraction of them moves
 * when a node joins or leaves, next to the ideal (1/(nodes+1) and 1/nodes). Equal weights
 * first, then mixed weights (every third node twice as big). The figures go into
 * docs/scaling.md. Not a test: it asserts nothing and takes a minute or two.
 *
 * Flags: --keys N (1000000), --nodes 3,5,10,20,50,100, --replicas R (3: reports 1..R).
 */
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { type PlacementNode, RendezvousPlacement } from '../src/storage/rendezvous.js';

interface SimulatedNode extends PlacementNode {
  /** Position in the global numbering (storage-0, storage-1, ...), stable across scenarios. */
  readonly number: number;
}

interface Keys {
  hashes: string[];
  sizesBytes: Float64Array;
}

function makeNode(number: number, weight: number): SimulatedNode {
  return { id: `grpc://storage-${number}:8981`, weight, number };
}

/**
 * SHA-256 digests of distinct contents, with blob sizes spread log-uniformly from 64 B to
 * 64 MiB (taken from digest bits that placement does not read), so byte balance includes
 * the skew of a few large blobs.
 */
function makeKeys(count: number): Keys {
  const hashes: string[] = new Array(count);
  const sizesBytes = new Float64Array(count);
  for (let index = 0; index < count; index++) {
    const hash = createHash('sha256').update(`simulated blob ${index}`).digest('hex');
    hashes[index] = hash;
    const unit = Number.parseInt(hash.slice(32, 40), 16) / 2 ** 32;
    sizesBytes[index] = Math.round(2 ** (6 + 20 * unit));
  }
  return { hashes, sizesBytes };
}

/** Every key's first `replicas` nodes (global numbers), key after key. */
function placeAll(keys: Keys, nodes: readonly SimulatedNode[], replicas: number): Uint16Array {
  const placement = new RendezvousPlacement(nodes);
  const placed = new Uint16Array(keys.hashes.length * replicas);
  keys.hashes.forEach((hash, key) => {
    placement.place(hash, replicas).forEach((node, rank) => {
      placed[key * replicas + rank] = node.number;
    });
  });
  return placed;
}

interface Balance {
  maxOverMean: number;
  minOverMean: number;
  bytesMaxOverMean: number;
  /** Max over nodes of (share of replicas) / (share of weight): 1 is perfectly proportional. */
  maxShareOverWeightShare: number;
  minShareOverWeightShare: number;
}

/** Load of each node when every key keeps its first `replicas` of the `stride` placed nodes. */
function balance(
  keys: Keys,
  placed: Uint16Array,
  stride: number,
  replicas: number,
  nodes: readonly SimulatedNode[],
): Balance {
  const counts = new Float64Array(Math.max(...nodes.map((node) => node.number)) + 1);
  const bytes = new Float64Array(counts.length);
  for (let key = 0; key < keys.hashes.length; key++) {
    for (let rank = 0; rank < replicas; rank++) {
      const node = placed[key * stride + rank] as number;
      counts[node] = (counts[node] as number) + 1;
      bytes[node] = (bytes[node] as number) + (keys.sizesBytes[key] as number);
    }
  }
  const nodeCounts = nodes.map((node) => counts[node.number] as number);
  const nodeBytes = nodes.map((node) => bytes[node.number] as number);
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  const totalWeight = nodes.reduce((sum, node) => sum + node.weight, 0);
  const totalCount = nodeCounts.reduce((sum, value) => sum + value, 0);
  const shareRatios = nodes.map(
    (node, index) => (nodeCounts[index] as number) / totalCount / (node.weight / totalWeight),
  );
  return {
    maxOverMean: Math.max(...nodeCounts) / mean(nodeCounts),
    minOverMean: Math.min(...nodeCounts) / mean(nodeCounts),
    bytesMaxOverMean: Math.max(...nodeBytes) / mean(nodeBytes),
    maxShareOverWeightShare: Math.max(...shareRatios),
    minShareOverWeightShare: Math.min(...shareRatios),
  };
}

interface Movement {
  /** Fraction of all stored replicas that land on a node that did not hold them (copies to make). */
  replicasMoved: number;
  /** Fraction of keys whose replica set changed at all. */
  keysTouched: number;
}

function movement(before: Uint16Array, after: Uint16Array, stride: number, replicas: number): Movement {
  const keyCount = before.length / stride;
  let moved = 0;
  let touched = 0;
  for (let key = 0; key < keyCount; key++) {
    let movedHere = 0;
    for (let rank = 0; rank < replicas; rank++) {
      const node = after[key * stride + rank];
      let held = false;
      for (let old = 0; old < replicas; old++) if (before[key * stride + old] === node) held = true;
      if (!held) movedHere++;
    }
    moved += movedHere;
    if (movedHere > 0) touched++;
  }
  return { replicasMoved: moved / (keyCount * replicas), keysTouched: touched / keyCount };
}

const percent = (value: number) => `${(value * 100).toFixed(2)}%`;
const ratio = (value: number) => value.toFixed(3);

function simulate(keys: Keys, nodeCounts: number[], maxReplicas: number, weighted: boolean): void {
  const weightOf = (number: number) => (weighted && number % 3 === 2 ? 2 : 1);
  console.log(
    weighted
      ? '\n### Mixed weights (every third node has weight 2; the joining node has its own weight)\n'
      : '\n### Equal weights\n',
  );
  console.log(
    '| nodes | replicas | max/mean keys | min/mean keys | max/mean bytes | max share/weight share | min share/weight share | join: replicas moved (ideal) | join: keys touched | leave: replicas moved (ideal) | leave: keys touched |',
  );
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const count of nodeCounts) {
    const nodes = Array.from({ length: count }, (_, number) => makeNode(number, weightOf(number)));
    const joined = [...nodes, makeNode(count, weightOf(count))];
    const leaving = nodes[Math.floor(count / 2)] as SimulatedNode;
    const left = nodes.filter((node) => node !== leaving);
    const stride = Math.min(maxReplicas, count - 1);
    const started = performance.now();
    const base = placeAll(keys, nodes, stride);
    const afterJoin = placeAll(keys, joined, stride);
    const afterLeave = placeAll(keys, left, stride);
    const totalWeight = nodes.reduce((sum, node) => sum + node.weight, 0);
    const joinedWeight = (joined.at(-1) as SimulatedNode).weight;
    for (let replicas = 1; replicas <= stride; replicas++) {
      const spread = balance(keys, base, stride, replicas, nodes);
      const join = movement(base, afterJoin, stride, replicas);
      const leave = movement(base, afterLeave, stride, replicas);
      const idealJoin = joinedWeight / (totalWeight + joinedWeight);
      const idealLeave = leaving.weight / totalWeight;
      console.log(
        `| ${count} | ${replicas} | ${ratio(spread.maxOverMean)} | ${ratio(spread.minOverMean)} | ${ratio(spread.bytesMaxOverMean)} | ${ratio(spread.maxShareOverWeightShare)} | ${ratio(spread.minShareOverWeightShare)} | ${percent(join.replicasMoved)} (${percent(idealJoin)}) | ${percent(join.keysTouched)} | ${percent(leave.replicasMoved)} (${percent(idealLeave)}) | ${percent(leave.keysTouched)} |`,
      );
    }
    console.error(`  ${count} nodes: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}

function main(): void {
  const { values } = parseArgs({
    options: {
      keys: { type: 'string', default: '1000000' },
      nodes: { type: 'string', default: '3,5,10,20,50,100' },
      replicas: { type: 'string', default: '3' },
    },
  });
  const keyCount = Number(values.keys);
  const nodeCounts = (values.nodes ?? '').split(',').map(Number);
  const maxReplicas = Number(values.replicas);
  if (!(keyCount > 0) || nodeCounts.some((count) => !(Number.isInteger(count) && count >= 2)) || !(maxReplicas >= 1)) {
    throw new Error('usage: --keys N --nodes A,B,... (each at least 2) --replicas R');
  }
  const started = performance.now();
  const keys = makeKeys(keyCount);
  console.log(
    `Placement of ${keyCount.toLocaleString('en')} SHA-256 digests (sizes log-uniform 64 B to 64 MiB) by src/storage/rendezvous.ts; leave removes node number floor(nodes/2).`,
  );
  simulate(keys, nodeCounts, maxReplicas, false);
  simulate(keys, nodeCounts, maxReplicas, true);
  console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s, node ${process.version})`);
}

main();
