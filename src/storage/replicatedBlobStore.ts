/**
 * A CAS spread over several storage nodes, each blob kept on N of them, so that the
 * farm's storage grows by adding nodes and survives the loss of any N-1. Every
 * frontend computes the same placement from the same node list (rendezvous hashing
 * of the digest, see rendezvous.ts), so no placement table is shared.
 *
 * - Writes go to the blob's first N nodes that are up, all of them at once; a write
 *   succeeds when at least one replica committed it (the missing ones are repaired
 *   by later reads).
 * - Reads ask the blob's nodes in placement order, one node deeper than N (so that
 *   blobs placed before a node joined are still found on the node it displaced),
 *   take the first replica that has it, and copy it in the background to the
 *   earlier nodes that lacked it.
 * - FindMissing asks each of the N nodes only about the blobs placed on it and
 *   merges: a blob is present when any of its nodes has it; nodes that lack a blob
 *   another one has are repaired in the background.
 * - A node whose call fails (unreachable, timed out, broken) is marked down: its
 *   traffic goes to the next nodes of each blob's placement, and it is tried again
 *   once `retryDownNodeAfterMs` has passed.
 *
 * Backends are any BlobStore (GrpcBlobStore to a `granary storage` node in a farm,
 * memory stores in tests); content is verified by the VerifyingBlobStore in front.
 */
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import { type Digest, digestKey, isEmptyDigest } from '../digest/digest.js';
import { Code, StatusError, toStatusError } from '../util/status.js';
import {
  type BatchItem,
  type Blob,
  type BlobStore,
  type BlobWriter,
  type FindMissingOptions,
  putBuffers,
} from './blobStore.js';
import { bufferBlob } from './memoryBlobStore.js';
import { RendezvousPlacement } from './rendezvous.js';

/** One storage node: a stable identity (its URL) and the store that reaches it. */
export interface ReplicaNode {
  readonly id: string;
  readonly store: BlobStore;
}

export interface ReplicatedBlobStoreOptions {
  /** Copies of each blob (at most the number of nodes). */
  replicas: number;
  /** How long a failed node is left alone before it is tried again; default 5 s. */
  retryDownNodeAfterMs?: number;
  /** Background repairs running at once; default 4. More wait, up to `maximumQueuedRepairs`. */
  repairConcurrency?: number;
  /** Repairs waiting beyond this are dropped (a later read or FindMissing finds the gap again); default 10,000. */
  maximumQueuedRepairs?: number;
  /** Told about nodes going down and coming back, and failed repairs. */
  log?: (message: string) => void;
  now?: () => number;
}

/** Status codes that say something about the request or the blob, not about the node's health. */
const REQUEST_ERRORS = new Set([
  Code.INVALID_ARGUMENT,
  Code.NOT_FOUND,
  Code.ALREADY_EXISTS,
  Code.FAILED_PRECONDITION,
  Code.OUT_OF_RANGE,
  Code.PERMISSION_DENIED,
  Code.UNAUTHENTICATED,
  Code.RESOURCE_EXHAUSTED,
]);

interface NodeState extends ReplicaNode {
  readonly weight: number;
  /** Epoch ms until which the node is skipped; 0 when up. */
  downUntilMs: number;
}

interface Repair {
  digest: Digest;
  source: NodeState;
  targets: NodeState[];
}

export class ReplicatedBlobStore implements BlobStore {
  private readonly nodes: NodeState[];
  private readonly placement: RendezvousPlacement<NodeState>;
  private readonly replicas: number;
  private readonly retryDownNodeAfterMs: number;
  private readonly repairConcurrency: number;
  private readonly maximumQueuedRepairs: number;
  private readonly log: (message: string) => void;
  private readonly now: () => number;
  private readonly repairQueue: Repair[] = [];
  /** `node digest` of every repair queued or running, so that one gap is filled once. */
  private readonly pendingRepairs = new Set<string>();
  private runningRepairs = 0;
  private repairsSettled: (() => void)[] = [];

  constructor(nodes: readonly ReplicaNode[], options: ReplicatedBlobStoreOptions) {
    if (nodes.length === 0) throw new Error('a replicated store needs at least one storage node');
    if (!(Number.isInteger(options.replicas) && options.replicas >= 1)) {
      throw new Error(`replicas must be a positive integer, not ${options.replicas}`);
    }
    if (options.replicas > nodes.length) {
      throw new Error(`${options.replicas} replicas need at least as many storage nodes, not ${nodes.length}`);
    }
    this.nodes = nodes.map((node) => ({ ...node, weight: 1, downUntilMs: 0 }));
    this.placement = new RendezvousPlacement(this.nodes);
    this.replicas = options.replicas;
    this.retryDownNodeAfterMs = options.retryDownNodeAfterMs ?? 5_000;
    this.repairConcurrency = options.repairConcurrency ?? 4;
    this.maximumQueuedRepairs = options.maximumQueuedRepairs ?? 10_000;
    this.log = options.log ?? (() => {});
    this.now = options.now ?? Date.now;
  }

  async findMissing(
    context: RequestContext,
    digests: readonly Digest[],
    options?: FindMissingOptions,
  ): Promise<Digest[]> {
    const wanted = digests.filter((digest) => !isEmptyDigest(digest));
    const askedOf = new Map<NodeState, Digest[]>();
    const homesOf = wanted.map((digest) => {
      const homes = this.upNodes(digest).slice(0, this.replicas);
      for (const node of homes) addTo(askedOf, node, digest);
      return homes;
    });
    const missingOn = new Map<NodeState, Set<string>>();
    await Promise.all(
      [...askedOf].map(async ([node, asked]) => {
        const answer = await this.call(context, node, () => node.store.findMissing(context, asked, options));
        if (answer) missingOn.set(node, new Set(answer.value.map(digestKey)));
      }),
    );
    if (missingOn.size === 0 && askedOf.size > 0) throw noNodeAnswered();
    const result: Digest[] = [];
    wanted.forEach((digest, index) => {
      const key = digestKey(digest);
      const answered = (homesOf[index] as NodeState[]).filter((node) => missingOn.has(node));
      const holders = answered.filter((node) => !missingOn.get(node)?.has(key));
      if (holders.length === 0) {
        result.push(digest);
        return;
      }
      const lacking = answered.filter((node) => missingOn.get(node)?.has(key));
      if (lacking.length > 0) this.queueRepair({ digest, source: holders[0] as NodeState, targets: lacking });
    });
    return result;
  }

  async get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    if (isEmptyDigest(digest)) return bufferBlob(Buffer.alloc(0));
    const searched = this.upNodes(digest).slice(0, this.replicas + 1);
    const lacking: NodeState[] = [];
    let answered = false;
    for (const node of searched) {
      const answer = await this.call(context, node, () => node.store.get(context, digest));
      if (!answer) continue;
      answered = true;
      const found = answer.value;
      if (found) {
        // Fill the gaps among the blob's first nodes; a deeper node that lacked it needs nothing.
        const homes = new Set(searched.slice(0, this.replicas));
        const targets = lacking.filter((candidate) => homes.has(candidate));
        if (targets.length > 0) this.queueRepair({ digest, source: node, targets });
        return found;
      }
      lacking.push(node);
    }
    if (!answered) throw noNodeAnswered();
    return undefined;
  }

  async put(context: RequestContext, digest: Digest): Promise<BlobWriter> {
    const targets = this.upNodes(digest).slice(0, this.replicas);
    const opened: { node: NodeState; writer: BlobWriter }[] = [];
    const outcomes = await Promise.allSettled(
      targets.map(async (node) => {
        const answer = await this.call(context, node, () => node.store.put(context, digest));
        if (answer) opened.push({ node, writer: answer.value });
      }),
    );
    const refused = outcomes.find((outcome) => outcome.status === 'rejected');
    if (refused) {
      await Promise.all(opened.map(({ writer }) => writer.abort().catch(() => {})));
      throw refused.reason;
    }
    if (opened.length === 0) throw noNodeAnswered();
    return new ReplicatedWriter(opened, (node, error) => this.failed(node, error));
  }

  /** Sends each node the items placed on it in one batch; an item fails only when all its nodes failed. */
  async putBatch(context: RequestContext, items: readonly BatchItem[]): Promise<void> {
    const batches = new Map<NodeState, BatchItem[]>();
    const homesOf = items.map((item) => {
      const homes = this.upNodes(item.digest).slice(0, this.replicas);
      for (const node of homes) addTo(batches, node, item);
      return homes;
    });
    const stored = new Set<NodeState>();
    await Promise.all(
      [...batches].map(async ([node, batch]) => {
        const answer = await this.call(context, node, () => putBuffers(context, node.store, batch));
        if (answer) stored.add(node);
      }),
    );
    items.forEach((item, index) => {
      const homes = homesOf[index] as NodeState[];
      if (!homes.some((node) => stored.has(node))) {
        throw new StatusError(
          Code.UNAVAILABLE,
          `no storage node took blob ${item.digest.hash}/${item.digest.sizeBytes}`,
        );
      }
    });
  }

  /** Resolves once every repair queued so far has finished (for tests and an orderly close). */
  async repairsIdle(): Promise<void> {
    if (this.runningRepairs === 0 && this.repairQueue.length === 0) return;
    await new Promise<void>((resolve) => this.repairsSettled.push(resolve));
  }

  /** Stops queuing repairs and waits for the running ones. */
  async close(): Promise<void> {
    this.repairQueue.length = 0;
    await this.repairsIdle();
  }

  /**
   * Nodes for a digest in placement order, those marked down left out (unless their
   * time to retry has come); all of them when every one is marked down, since a
   * call that fails costs little and one that succeeds ends the outage at once.
   */
  private upNodes(digest: Digest): NodeState[] {
    const nowMs = this.now();
    const placed = this.placement.place(digest.hash, this.nodes.length);
    const up = placed.filter((node) => node.downUntilMs <= nowMs);
    return up.length > 0 ? up : placed;
  }

  /**
   * Runs a call on a node: its answer, or undefined when the node failed (which marks
   * it down); an error about the request itself is thrown as it is. An answer marks
   * the node up.
   */
  private async call<Result>(
    context: RequestContext,
    node: NodeState,
    operation: () => Promise<Result>,
  ): Promise<{ value: Result } | undefined> {
    try {
      const value = await operation();
      if (node.downUntilMs > 0) {
        node.downUntilMs = 0;
        this.log(`storage node ${node.id} answers again`);
      }
      return { value };
    } catch (error) {
      // A caller who gave up (cancelled, past its deadline) says nothing about the node.
      if (context.signal.aborted || !this.failed(node, error)) throw error;
      return undefined;
    }
  }

  /** Marks the node down when the error is the node's fault; says whether it was. */
  private failed(node: NodeState, error: unknown): boolean {
    const status = toStatusError(error);
    if (REQUEST_ERRORS.has(status.code)) return false;
    if (node.downUntilMs === 0) this.log(`storage node ${node.id} is down (${status.message})`);
    node.downUntilMs = this.now() + this.retryDownNodeAfterMs;
    return true;
  }

  private queueRepair(repair: Repair): void {
    const targets = repair.targets.filter((node) => !this.pendingRepairs.has(repairKey(node, repair.digest)));
    if (targets.length === 0 || this.repairQueue.length >= this.maximumQueuedRepairs) return;
    for (const node of targets) this.pendingRepairs.add(repairKey(node, repair.digest));
    this.repairQueue.push({ ...repair, targets });
    this.startRepairs();
  }

  private startRepairs(): void {
    while (this.runningRepairs < this.repairConcurrency && this.repairQueue.length > 0) {
      const repair = this.repairQueue.shift() as Repair;
      this.runningRepairs++;
      void this.repair(repair).finally(() => {
        this.runningRepairs--;
        for (const node of repair.targets) this.pendingRepairs.delete(repairKey(node, repair.digest));
        this.startRepairs();
        if (this.runningRepairs === 0 && this.repairQueue.length === 0) {
          for (const settle of this.repairsSettled.splice(0)) settle();
        }
      });
    }
  }

  /** Copies a blob from a node that has it to nodes that lack it; a failure only leaves the gap. */
  private async repair({ digest, source, targets }: Repair): Promise<void> {
    // Repairs run in the background, for no caller in particular.
    const context = backgroundContext();
    try {
      const blob = (await this.call(context, source, () => source.store.get(context, digest)))?.value;
      if (!blob) return;
      await Promise.all(
        targets.map((target) =>
          this.call(context, target, async () => {
            const writer = await target.store.put(context, digest);
            try {
              for await (const chunk of blob.read()) await writer.write(chunk);
              await writer.commit();
            } catch (error) {
              await writer.abort();
              throw error;
            }
          }),
        ),
      );
    } catch (error) {
      this.log(`repairing blob ${digest.hash} failed: ${toStatusError(error).message}`);
    }
  }
}

/**
 * Writes every chunk to every replica. A replica whose node fails is dropped (the
 * blob gets fewer copies, repaired later); the write fails when none is left or
 * when a replica rejects the data itself.
 */
class ReplicatedWriter implements BlobWriter {
  constructor(
    private replicas: { node: NodeState; writer: BlobWriter }[],
    private readonly nodeFailed: (node: NodeState, error: unknown) => boolean,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    await this.onEach((writer) => writer.write(chunk));
  }

  async commit(): Promise<void> {
    await this.onEach((writer) => writer.commit());
  }

  async abort(): Promise<void> {
    await Promise.all(this.replicas.map(({ writer }) => writer.abort().catch(() => {})));
  }

  private async onEach(step: (writer: BlobWriter) => Promise<void>): Promise<void> {
    const outcomes = await Promise.allSettled(this.replicas.map(({ writer }) => step(writer)));
    const survivors: typeof this.replicas = [];
    let requestError: unknown;
    outcomes.forEach((outcome, index) => {
      const replica = this.replicas[index] as (typeof this.replicas)[number];
      if (outcome.status === 'fulfilled') survivors.push(replica);
      else if (!this.nodeFailed(replica.node, outcome.reason)) requestError ??= outcome.reason;
      else void replica.writer.abort().catch(() => {});
    });
    this.replicas = survivors;
    if (requestError !== undefined) throw requestError;
    if (survivors.length === 0) throw noNodeAnswered();
  }
}

/** Appends a value to the list kept under a key. */
function addTo<Key, Value>(map: Map<Key, Value[]>, key: Key, value: Value): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function repairKey(node: NodeState, digest: Digest): string {
  return `${node.id} ${digest.hash}/${digest.sizeBytes}`;
}

function noNodeAnswered(): StatusError {
  return new StatusError(Code.UNAVAILABLE, 'no storage node holding the blob answered');
}
