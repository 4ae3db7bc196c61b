/**
 * Builds an action's input root on disk from its Merkle tree in the CAS: the
 * directory messages are read (through the local cache), every missing file blob
 * of the whole tree is fetched in parallel up front, then files are hard-linked
 * from the local cache (copied when linking is impossible), with mode 0555 or
 * 0444, and symlinks recreated. With the farm's CAS on this machine (SharedCas),
 * plain files are linked from there first, as the layout is made, and only the
 * rest is fetched, then placed.
 *
 * The sandboxed command runs as root and can write through a hard link into the
 * cache's copy, which would poison every later action using that blob. So staging
 * remembers the identity and metadata of every cache file it linked, and after the
 * run `evictModifiedInputs()` drops those whose size, mtime or mode changed, or
 * whose content no longer matches when only their ctime changed (from the farm's
 * CAS too, for the files linked from there).
 */
import { chmod, copyFile, link, lstat, writeFile } from 'node:fs/promises';
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, digestFunctionOf, isEmptyDigest } from '../digest/digest.js';
import type { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { BlobStore } from '../storage/blobStore.js';
import { hashFile } from '../tree/hostTree.js';
import { createLayout, layoutTree, type PlacedFile } from '../tree/materialize.js';
import { loadTree } from '../tree/walk.js';
import { forEachLimit } from '../util/concurrency.js';
import { type LocalBlob, type LocalCache, missingBlobsError } from './localCache.js';
import type { SharedCas } from './sharedCas.js';

export interface StageInputRootOptions {
  /** The remote CAS. */
  cas: BlobStore;
  cache: LocalCache;
  /** The farm's CAS on this machine, to link plain files from (see sharedCas.ts). */
  sharedCas?: SharedCas;
  rootDigest: Digest;
  /** Directory to create the input root in; created if absent, and expected to be empty. */
  destination: string;
  concurrency?: number;
  signal?: AbortSignal;
}

export interface StagedInputRoot {
  readonly root: string;
  readonly fileCount: number;
  readonly directoryCount: number;
  /**
   * Call after the command has finished and before the root is deleted: evicts
   * from the local cache (or the farm's CAS) every linked blob the action
   * modified. Returns those digests.
   */
  evictModifiedInputs(): Promise<Digest[]>;
}

const DEFAULT_CONCURRENCY = 32;
const EXECUTABLE_MODE = 0o555;
const MTIME_MARGIN_MS = 100;
const PLAIN_MODE = 0o444;

/** Reads every Directory of a tree through the local cache (breadth first, each level in parallel), checked. */
export async function fetchInputTree(
  context: RequestContext,
  cas: BlobStore,
  cache: LocalCache,
  rootDigest: Digest,
  concurrency = DEFAULT_CONCURRENCY,
): Promise<Map<string, Directory>> {
  const { directories, missing } = await loadTree(context, cas, [rootDigest], {
    concurrency,
    readBlob: (digest) => cache.getBuffer(context, cas, digest),
    digestFunction: digestFunctionOf(rootDigest),
    safeNames: true,
  });
  if (missing.length > 0) {
    throw missingBlobsError(
      missing.map((m) => m.digest),
      'input directories',
    );
  }
  return directories;
}

/** Stages the input root; FAILED_PRECONDITION with MISSING violations when blobs are absent. */
export async function stageInputRoot(
  context: RequestContext,
  options: StageInputRootOptions,
): Promise<StagedInputRoot> {
  const { cas, cache, sharedCas, rootDigest, destination, signal } = options;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const directories = await fetchInputTree(context, cas, cache, rootDigest, concurrency);
  signal?.throwIfAborted();

  // Lay out every path first, so all absent blobs are fetched in one parallel pass.
  const layout = layoutTree(directories, rootDigest, destination);
  const linked = new Map<string, LinkedInput>();
  const fetchAll = async (files: readonly PlacedFile[]) => {
    const missing = await cache.fetchMissing(context, cas, files, concurrency);
    if (missing.length > 0) throw missingBlobsError(missing, 'input files');
    signal?.throwIfAborted();
  };
  const placeFromCache = async (file: PlacedFile) => {
    const source = await placeFile(context, cas, cache, file);
    if (source !== undefined)
      linked.set(source, { blob: file, evict: () => cache.evict(file.digest, file.executable) });
  };
  if (sharedCas) {
    // Plain files are linked from the farm's CAS as the layout is made (a link and a
    // check of the link each: a presence check before would lstat every linked file
    // twice); what it cannot lend is fetched, then placed.
    const unlent: PlacedFile[] = [];
    await createLayout(layout, {
      concurrency,
      directoryMode: 0o755,
      placeFile: async (file) => {
        const shared = await linkShared(sharedCas, file);
        if (shared)
          linked.set(shared.source, { blob: file, evict: () => sharedCas.discard(shared).then(() => undefined) });
        else unlent.push(file);
      },
    });
    await fetchAll(unlent);
    await forEachLimit(unlent, concurrency, placeFromCache);
  } else {
    await fetchAll(layout.files);
    await createLayout(layout, { concurrency, directoryMode: 0o755, placeFile: placeFromCache });
  }

  // Anything written through a link from now on has a later mtime than this. File
  // times come from the kernel's coarse clock, which lags by a few milliseconds, so
  // keep a margin: a blob fetched just before may look suspect and is then checked
  // by content; a real modification is never missed.
  const linkedAtNs = BigInt(Date.now() - MTIME_MARGIN_MS) * 1_000_000n;

  return {
    root: destination,
    fileCount: layout.files.length,
    directoryCount: layout.directoryPaths.reduce((n, level) => n + level.length, 0),
    evictModifiedInputs: () => evictModified(linked, linkedAtNs, concurrency),
  };
}

/** A file of the input root linked from the cache or the farm's CAS, and how to drop that source. */
interface LinkedInput {
  readonly blob: LocalBlob;
  evict(): Promise<void>;
}

/** Links a plain file from the farm's CAS; undefined when it must come through the cache instead (executables need their own 0555 inode). */
function linkShared(sharedCas: SharedCas, file: PlacedFile) {
  if (file.executable || isEmptyDigest(file.digest)) return undefined;
  return sharedCas.linkTo(file.digest, file.path);
}

/** Links (or copies) one file into place; returns the cache path it was linked to, if any. */
async function placeFile(
  context: RequestContext,
  cas: BlobStore,
  cache: LocalCache,
  file: PlacedFile,
): Promise<string | undefined> {
  const mode = file.executable ? EXECUTABLE_MODE : PLAIN_MODE;
  if (isEmptyDigest(file.digest)) {
    await writeFile(file.path, '', { mode });
    await chmod(file.path, mode);
    return undefined;
  }
  for (let attempt = 0; ; attempt++) {
    const source = await cache.pathOf(context, cas, file.digest, file.executable);
    try {
      await link(source, file.path);
      return source;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Evicted between fetch and link: fetch again.
      if (code === 'ENOENT' && attempt < 3) continue;
      if (code === 'EXDEV' || code === 'EMLINK' || code === 'EPERM' || code === 'ENOTSUP') {
        await copyFile(source, file.path);
        await chmod(file.path, mode);
        return undefined;
      }
      throw error;
    }
  }
}

async function evictModified(
  linked: Map<string, LinkedInput>,
  linkedAtNs: bigint,
  concurrency: number,
): Promise<Digest[]> {
  const evicted: Digest[] = [];
  await forEachLimit(linked, concurrency, async ([path, { blob, evict }]) => {
    let after: Awaited<ReturnType<typeof lstat>> & { mtimeNs: bigint };
    try {
      after = await lstat(path, { bigint: true });
    } catch {
      return; // Evicted meanwhile: nothing left to poison.
    }
    // Content changes move mtime (or size); ctime is no guide, as concurrent
    // stagings linking the same blob change it too. An action that rewrites a file
    // and forges its mtime back is not detected.
    const modeChanged = Number(after.mode & 0o7777n) !== (blob.executable ? EXECUTABLE_MODE : PLAIN_MODE);
    const suspect = after.mtimeNs > linkedAtNs || after.size !== BigInt(blob.digest.sizeBytes);
    if (modeChanged || (suspect && !(await contentMatches(path, blob.digest)))) {
      await evict();
      evicted.push(blob.digest);
    }
  });
  return evicted;
}

async function contentMatches(path: string, digest: Digest): Promise<boolean> {
  const found = await hashFile(path, digestFunctionOf(digest)).catch(() => undefined);
  return found !== undefined && found.sizeBytes === digest.sizeBytes && found.hash === digest.hash;
}
