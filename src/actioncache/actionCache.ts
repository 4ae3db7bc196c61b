/**
 * The Action Cache: ActionResults keyed by instance name, digest function and
 * Action digest. The CAS is shared by all instances (content addressing makes that
 * safe); action results are kept per instance, because an instance may stand for
 * a different execution environment.
 *
 * A result is only served when everything it references is still in the CAS
 * (output files, every file of every output tree, stdout and stderr); otherwise it
 * is a cache miss. Serving a result retains the referenced blobs for
 * `retentionGraceMs`, so builds that do not download outputs can still fetch them
 * later in the build.
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, type DigestFunction, digestKey, SHA256 } from '../digest/digest.js';
import { ActionResult, type Tree } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type BlobStore, getBuffer, putBuffer } from '../storage/blobStore.js';
import { MalformedTreeError } from '../tree/directory.js';
import { filesOfTree, readTreeMessage } from '../tree/treeMessage.js';

export interface ActionKey {
  instanceName: string;
  digestFunction: DigestFunction;
  actionDigest: Digest;
}

export interface InlineRequest {
  inlineStdout?: boolean;
  inlineStderr?: boolean;
  inlineOutputFiles?: readonly string[];
}

export interface ActionCacheOptions {
  /** How long blobs referenced by a served result stay protected from eviction. */
  retentionGraceMs?: number;
  /** Upper bound on the bytes inlined into one GetActionResult response. */
  maximumInlineBytes?: number;
  now?: () => number;
  /** Told about every lookup, hit or miss (for metrics); must not throw. */
  onLookup?: (hit: boolean) => void;
}

/** Default grace period: Bazel 7 assumes referenced blobs live for 3 hours. */
export const DEFAULT_RETENTION_GRACE_MS = 3 * 60 * 60 * 1000;

export class ActionCache {
  private readonly graceMs: number;
  private readonly maximumInlineBytes: number;
  private readonly now: () => number;
  private readonly onLookup: ((hit: boolean) => void) | undefined;

  constructor(
    private readonly results: BlobStore,
    private readonly cas: BlobStore,
    options: ActionCacheOptions = {},
  ) {
    this.graceMs = options.retentionGraceMs ?? DEFAULT_RETENTION_GRACE_MS;
    this.maximumInlineBytes = options.maximumInlineBytes ?? 1024 * 1024;
    this.now = options.now ?? Date.now;
    this.onLookup = options.onLookup;
  }

  /** Returns a complete result, or undefined for a miss. */
  async get(context: RequestContext, key: ActionKey, inline: InlineRequest = {}): Promise<ActionResult | undefined> {
    const result = await this.lookUp(context, key, inline);
    try {
      this.onLookup?.(result !== undefined);
    } catch {
      // An observer's failure must not change the answer.
    }
    return result;
  }

  private async lookUp(
    context: RequestContext,
    key: ActionKey,
    inline: InlineRequest,
  ): Promise<ActionResult | undefined> {
    const stored = await getBuffer(context, this.results, storageKey(key));
    if (!stored) return undefined;
    let result: ActionResult;
    try {
      result = ActionResult.decode(stored);
    } catch {
      return undefined;
    }
    const referenced = await this.referencedBlobs(context, result);
    if (!referenced) return undefined;
    const missing = await this.cas.findMissing(context, referenced, { retainUntilMs: this.now() + this.graceMs });
    if (missing.length > 0) return undefined;
    await this.inline(context, result, inline);
    return result;
  }

  async put(context: RequestContext, key: ActionKey, result: ActionResult): Promise<void> {
    await putBuffer(context, this.results, storageKey(key), Buffer.from(ActionResult.encode(result).finish()));
  }

  /** Every CAS blob a result needs, or undefined if an output tree itself is gone. */
  private async referencedBlobs(context: RequestContext, result: ActionResult): Promise<Digest[] | undefined> {
    const digests: Digest[] = [];
    const add = (d: Digest | undefined) => {
      if (d && d.sizeBytes > 0) digests.push(d);
    };
    for (const file of result.outputFiles) add(file.digest);
    add(result.stdoutDigest);
    add(result.stderrDigest);
    for (const directory of result.outputDirectories) {
      if (!directory.treeDigest) continue;
      let tree: Tree | undefined;
      try {
        tree = await readTreeMessage(context, this.cas, directory.treeDigest);
      } catch (error) {
        if (error instanceof MalformedTreeError) return undefined;
        throw error;
      }
      if (!tree) return undefined;
      add(directory.treeDigest);
      add(directory.rootDirectoryDigest);
      for (const file of filesOfTree(tree)) add(file);
    }
    return dedupe(digests);
  }

  private async inline(context: RequestContext, result: ActionResult, request: InlineRequest): Promise<void> {
    let budget = this.maximumInlineBytes;
    const fetch = async (digest: Digest | undefined): Promise<Buffer | undefined> => {
      if (!digest || digest.sizeBytes > budget) return undefined;
      const data = digest.sizeBytes === 0 ? Buffer.alloc(0) : await getBuffer(context, this.cas, digest);
      if (data) budget -= data.length;
      return data;
    };
    if (request.inlineStdout) result.stdoutRaw = (await fetch(result.stdoutDigest)) ?? Buffer.alloc(0);
    if (request.inlineStderr) result.stderrRaw = (await fetch(result.stderrDigest)) ?? Buffer.alloc(0);
    const wanted = new Set(request.inlineOutputFiles ?? []);
    for (const file of result.outputFiles) {
      if (wanted.has(file.path)) file.contents = (await fetch(file.digest)) ?? Buffer.alloc(0);
    }
  }
}

/** Derives the storage key of an action result; its size field is unused (0). */
function storageKey(key: ActionKey): Digest {
  const material = `action-result\0${key.instanceName}\0${key.digestFunction.name}\0${digestKey(key.actionDigest)}`;
  return { hash: SHA256.createHasher().update(material).digest('hex'), sizeBytes: 0 };
}

function dedupe(digests: Digest[]): Digest[] {
  const seen = new Map<string, Digest>();
  for (const d of digests) seen.set(digestKey(d), d);
  return [...seen.values()];
}
