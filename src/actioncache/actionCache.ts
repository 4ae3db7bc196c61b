/**
 * The Action Cache: ActionResults keyed by instance name, digest function and
 * Action digest. The CAS is shared by all instances (content addressing makes that
 * safe); action results are kept per instance, because an instance may stand for
 * a different execution environment.
 *
 * Results are records of a RecordStore (actionResultRecords puts them in a
 * BlobStore). A result is only served when everything it references is still in
 * the CAS (output files, every file of every output tree, stdout and stderr), as
 * the shared CompletenessChecker decides; otherwise it is a cache miss. Serving a result retains the referenced blobs for
 * `retentionGraceMs`, so builds that do not download outputs can still fetch them
 * later in the build.
 *
 * Results found complete are remembered for a short while (HotResults), so a
 * hit on a hot action costs neither a record read nor a completeness check; the
 * server tells the cache when the CAS evicts blobs (`casLostBlobs`).
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, type DigestFunction, digestKey } from '../digest/digest.js';
import { ActionResult } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { BlobRecordStore } from '../records/blobRecordStore.js';
import { CompletenessChecker, type References } from '../records/completeness.js';
import type { RecordCodec, RecordStore } from '../records/recordStore.js';
import { type BlobStore, getBuffer } from '../storage/blobStore.js';
import { encodeAndKeep } from './encodedResults.js';
import { HotResults } from './hotResults.js';

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
  /** How long a result found complete is served from memory without a new check; 0: never. */
  hotResultTtlMs?: number;
  /** Bound on the encoded size of the results kept in memory. */
  hotResultMaximumBytes?: number;
}

/**
 * Default reuse of a completeness verdict: long enough for the bursts of hits a
 * build makes on the same actions, short against how long a blob lost outside
 * any eviction report (see HotResults) can go unnoticed.
 */
export const DEFAULT_HOT_RESULT_TTL_MS = 2000;
export const DEFAULT_HOT_RESULT_MAXIMUM_BYTES = 16 * 1024 * 1024;

/** Default grace period: Bazel 7 assumes referenced blobs live for 3 hours. */
export const DEFAULT_RETENTION_GRACE_MS = 3 * 60 * 60 * 1000;

export class ActionCache {
  private readonly graceMs: number;
  private readonly maximumInlineBytes: number;
  private readonly now: () => number;
  private readonly onLookup: ((hit: boolean) => void) | undefined;
  private readonly completeness: CompletenessChecker;
  private readonly hot: HotResults<ActionResult>;

  constructor(
    private readonly results: RecordStore<ActionResult>,
    private readonly cas: BlobStore,
    options: ActionCacheOptions = {},
  ) {
    this.completeness = new CompletenessChecker(cas);
    this.graceMs = options.retentionGraceMs ?? DEFAULT_RETENTION_GRACE_MS;
    this.maximumInlineBytes = options.maximumInlineBytes ?? 1024 * 1024;
    this.now = options.now ?? Date.now;
    this.onLookup = options.onLookup;
    this.hot = new HotResults({
      ttlMs: options.hotResultTtlMs ?? DEFAULT_HOT_RESULT_TTL_MS,
      maximumBytes: options.hotResultMaximumBytes ?? DEFAULT_HOT_RESULT_MAXIMUM_BYTES,
      now: this.now,
    });
  }

  /** The CAS evicted or lost blobs: no remembered verdict can be trusted any more. */
  casLostBlobs(): void {
    this.hot.forgetAll();
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
    const recordKey = actionResultKey(key);
    const hot = this.hot.get(recordKey);
    if (hot) return this.withInlined(context, hot, inline);
    const generation = this.hot.generation;
    const checkedAtMs = this.now();
    const result = await this.results.get(context, recordKey);
    if (!result) return undefined;
    const state = await this.completeness.check(context, referencesOf(result), checkedAtMs + this.graceMs);
    if (!state.complete) return undefined;
    this.hot.remember(recordKey, result, encodeAndKeep(result).length, generation, checkedAtMs);
    return this.withInlined(context, result, inline);
  }

  async put(context: RequestContext, key: ActionKey, result: ActionResult): Promise<void> {
    const recordKey = actionResultKey(key);
    try {
      await this.results.put(context, recordKey, result);
    } finally {
      // After the write: a lookup that read the old record meanwhile must not remember it.
      this.hot.forget(recordKey);
    }
  }

  /** The result with the requested contents inlined: a copy, as `result` may be the remembered one. */
  private async withInlined(
    context: RequestContext,
    result: ActionResult,
    request: InlineRequest,
  ): Promise<ActionResult> {
    const wantsFiles = (request.inlineOutputFiles?.length ?? 0) > 0;
    if (!request.inlineStdout && !request.inlineStderr && !wantsFiles) return result;
    const copy: ActionResult = { ...result, outputFiles: result.outputFiles.map((file) => ({ ...file })) };
    await this.inline(context, copy, request);
    return copy;
  }

  private async inline(context: RequestContext, result: ActionResult, request: InlineRequest): Promise<void> {
    let budget = this.maximumInlineBytes;
    const fetch = async (digest: Digest | undefined): Promise<Buffer | undefined> => {
      if (!digest || digest.sizeBytes > budget) return undefined;
      const data = digest.sizeBytes === 0 ? Buffer.alloc(0) : await getBuffer(context, this.cas, digest);
      if (data) budget -= data.length;
      // A referenced blob is gone: the verdicts that counted on it are stale.
      else this.hot.forgetAll();
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

/** What a result references in the CAS: its files and logs, and each output tree's Tree message and root. */
function referencesOf(result: ActionResult): References {
  const blobs: Digest[] = [];
  const treeMessages: Digest[] = [];
  for (const file of result.outputFiles) if (file.digest) blobs.push(file.digest);
  if (result.stdoutDigest) blobs.push(result.stdoutDigest);
  if (result.stderrDigest) blobs.push(result.stderrDigest);
  for (const directory of result.outputDirectories) {
    if (!directory.treeDigest) continue;
    treeMessages.push(directory.treeDigest);
    if (directory.rootDirectoryDigest) blobs.push(directory.rootDirectoryDigest);
  }
  return { blobs, treeMessages };
}

/**
 * The record key of an action result: instance, digest function and action
 * digest (its SHA-256 is the BlobStore key results have always had).
 */
export function actionResultKey(key: ActionKey): string {
  return `action-result\0${key.instanceName}\0${key.digestFunction.name}\0${digestKey(key.actionDigest)}`;
}

/** ActionResults as stored: their protobuf encoding. */
export const actionResultCodec: RecordCodec<ActionResult> = {
  encode: (result) => Buffer.from(ActionResult.encode(result).finish()),
  decode: (data) => {
    try {
      return ActionResult.decode(data);
    } catch {
      return undefined;
    }
  },
};

/** Action results kept in a BlobStore (the all-in-one server's disk store). */
export function actionResultRecords(blobs: BlobStore): RecordStore<ActionResult> {
  return new BlobRecordStore(blobs, actionResultCodec);
}
