/**
 * Where a blob lives in a sharded CAS: weighted rendezvous (highest random weight) hashing.
 * Every node gets a pseudo-random score for every digest and the blob goes to the N nodes
 * with the highest scores, so every frontend computes the same placement from the same node
 * list (in any order) with no shared state, a node joining takes only the keys it wins
 * (about 1/(nodes+1) of the replicas, nothing moves between old nodes), and a node leaving
 * hands each of its keys to that key's next-best node. The score is weight / -ln(u), with u
 * uniform in (0, 1) from the digest and the node: the first choice then falls on each node
 * in exact proportion to its weight.
 *
 * Pure and synchronous: the sharding storage decorator and the placement simulation
 * (bench/placementSimulation.ts) use this very function.
 */
import { createHash } from 'node:crypto';

/** A shard: a stable identity (e.g. the node's URL) and a capacity weight (e.g. its disk size in GiB). */
export interface PlacementNode {
  readonly id: string;
  readonly weight: number;
}

/** The placement of digests over a fixed set of nodes; build a new one when nodes join or leave. */
export class RendezvousPlacement<Node extends PlacementNode> {
  private readonly seedsLow: Uint32Array;
  private readonly seedsHigh: Uint32Array;
  private readonly weights: Float64Array;
  /** With equal weights, u itself ranks like weight / -ln(u) and spares a logarithm per node. */
  private readonly equalWeights: boolean;
  // Scratch space of place(), which is synchronous: reused rather than allocated per call.
  private readonly bestScores: Float64Array;
  private readonly bestIndices: Int32Array;

  constructor(readonly nodes: readonly Node[]) {
    if (nodes.length === 0) throw new Error('rendezvous placement needs at least one node');
    const ids = new Set<string>();
    this.seedsLow = new Uint32Array(nodes.length);
    this.seedsHigh = new Uint32Array(nodes.length);
    this.weights = new Float64Array(nodes.length);
    this.bestScores = new Float64Array(nodes.length);
    this.bestIndices = new Int32Array(nodes.length);
    nodes.forEach((node, index) => {
      if (node.id === '') throw new Error('a placement node needs a non-empty id');
      if (ids.has(node.id)) throw new Error(`placement node ${node.id} is listed twice`);
      ids.add(node.id);
      if (!(Number.isFinite(node.weight) && node.weight > 0)) {
        throw new Error(`placement node ${node.id}: weight must be a positive number, not ${node.weight}`);
      }
      const seed = createHash('sha256').update(node.id).digest();
      this.seedsLow[index] = seed.readUInt32BE(0);
      this.seedsHigh[index] = seed.readUInt32BE(4);
      this.weights[index] = node.weight;
    });
    this.equalWeights = nodes.every((node) => node.weight === nodes[0]?.weight);
  }

  /**
   * The `count` nodes (at most all of them) that hold the blob with this digest hash, best
   * first; the nodes after the first N are where reads and repairs go when those are down.
   */
  place(digestHash: string, count: number): Node[] {
    if (!(Number.isInteger(count) && count >= 1))
      throw new Error(`replica count must be a positive integer, not ${count}`);
    const wanted = Math.min(count, this.nodes.length);
    const [keyLow, keyHigh] = keyWords(digestHash);
    const { seedsLow, seedsHigh, weights, equalWeights, bestScores, bestIndices } = this;
    bestScores.fill(-1, 0, wanted);
    for (let index = 0; index < seedsLow.length; index++) {
      const unit = unitInterval(keyLow, keyHigh, seedsLow[index] as number, seedsHigh[index] as number);
      const score = equalWeights ? unit : (weights[index] as number) / -Math.log(unit);
      if (score <= (bestScores[wanted - 1] as number)) continue;
      let position = wanted - 1;
      while (position > 0 && score > (bestScores[position - 1] as number)) {
        bestScores[position] = bestScores[position - 1] as number;
        bestIndices[position] = bestIndices[position - 1] as number;
        position--;
      }
      bestScores[position] = score;
      bestIndices[position] = index;
    }
    const placed: Node[] = new Array(wanted);
    for (let position = 0; position < wanted; position++)
      placed[position] = this.nodes[bestIndices[position] as number] as Node;
    return placed;
  }
}

const hexPrefix = /^[0-9a-f]{16}/i;

/**
 * 64 bits of the key. A digest hash is already uniform, so its first 16 hex digits serve as
 * they are; anything shorter or not hexadecimal is hashed first, so every string places.
 */
function keyWords(digestHash: string): [number, number] {
  if (hexPrefix.test(digestHash)) {
    return [Number.parseInt(digestHash.slice(0, 8), 16), Number.parseInt(digestHash.slice(8, 16), 16)];
  }
  const hashed = createHash('sha256').update(digestHash).digest();
  return [hashed.readUInt32BE(0), hashed.readUInt32BE(4)];
}

/** A 32-bit avalanche step (xor-shift and multiply, with the MurmurHash3 finaliser's constants). */
function mix32(value: number): number {
  let mixed = value ^ (value >>> 16);
  mixed = Math.imul(mixed, 0x85ebca6b);
  mixed ^= mixed >>> 13;
  mixed = Math.imul(mixed, 0xc2b2ae35);
  mixed ^= mixed >>> 16;
  return mixed >>> 0;
}

/** A number in the open interval (0, 1) with 52 random bits, from the key's and the node's 64 bits. */
function unitInterval(keyLow: number, keyHigh: number, seedLow: number, seedHigh: number): number {
  const high = mix32(keyLow ^ mix32(keyHigh ^ seedLow));
  const low = mix32(keyHigh ^ mix32(high ^ seedHigh));
  return (high * 2 ** 20 + (low >>> 12) + 0.5) / 2 ** 52;
}
