/**
 * The one completeness check behind every keyed record that points into the CAS
 * (an ActionResult, a Remote Asset record, and through the action cache a
 * meta-build artifact): a record is served only while every blob it references
 * is present, so a partly evicted record reads as a miss, never as a dangling
 * answer. The check also protects what it finds from eviction for a while, so
 * clients that fetch outputs later in the build still find them.
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, type DigestFunction, digestKey } from '../digest/digest.js';
import type { BlobStore } from '../storage/blobStore.js';
import { MalformedTreeError } from '../tree/directory.js';
import { filesOfTree, readTreeMessage } from '../tree/treeMessage.js';
import { treeContents } from '../tree/walk.js';

/** What a record references, by how each digest is followed. */
export interface References {
  /** Blobs needed as they are (files, logs, a tree's root Directory when only its presence matters). */
  readonly blobs?: readonly Digest[];
  /** REAPI Tree messages: each must be present, and so must every file it lists. */
  readonly treeMessages?: readonly Digest[];
  /** Root Directories: each is walked, and every directory and file below must be present. */
  readonly directories?: readonly Digest[];
  /** The hash function of the directories' digests (for walking); by each digest's length when absent. */
  readonly digestFunction?: DigestFunction;
}

/** What a check found. `malformed` names a tree or Tree message that does not decode. */
export type Completeness = { complete: true } | { complete: false; missing: Digest[]; malformed?: string };

export interface CompletenessCheckerOptions {
  /** Directories loaded at once while walking a tree. */
  readonly walkConcurrency?: number;
}

/** Checks records' references against one CAS. */
export class CompletenessChecker {
  private readonly walkConcurrency: number;

  constructor(
    private readonly cas: BlobStore,
    options: CompletenessCheckerOptions = {},
  ) {
    this.walkConcurrency = options.walkConcurrency ?? 16;
  }

  /**
   * Whether everything referenced is in the CAS. Present blobs are protected from
   * eviction until `retainUntilMs` (epoch ms) when given. Empty blobs are always present.
   */
  async check(context: RequestContext, references: References, retainUntilMs?: number): Promise<Completeness> {
    const wanted = new Map<string, Digest>();
    const missing = new Map<string, Digest>();
    const want = (digest: Digest) => {
      if (digest.sizeBytes > 0) wanted.set(digestKey(digest), digest);
    };
    for (const digest of references.blobs ?? []) want(digest);
    try {
      for (const digest of references.treeMessages ?? []) {
        want(digest);
        const tree = await readTreeMessage(context, this.cas, digest);
        if (!tree) missing.set(digestKey(digest), digest);
        else for (const file of filesOfTree(tree)) want(file);
      }
      if (references.directories && references.directories.length > 0) {
        const contents = await treeContents(context, this.cas, references.directories, {
          concurrency: this.walkConcurrency,
          digestFunction: references.digestFunction,
        });
        for (const digest of [...contents.directories, ...contents.files]) want(digest);
        for (const { digest } of contents.missingDirectories) missing.set(digestKey(digest), digest);
      }
    } catch (error) {
      if (error instanceof MalformedTreeError) return { complete: false, missing: [], malformed: error.message };
      throw error;
    }
    const options = retainUntilMs === undefined ? {} : { retainUntilMs };
    for (const digest of await this.cas.findMissing(context, [...wanted.values()], options)) {
      missing.set(digestKey(digest), digest);
    }
    return missing.size === 0 ? { complete: true } : { complete: false, missing: [...missing.values()] };
  }
}
