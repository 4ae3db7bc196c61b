/**
 * Builds an action's input root on disk from its Merkle tree in the CAS: the
 * directory messages are read (through the local cache), every missing file blob
 * of the whole tree is fetched in parallel up front, then files are hard-linked
 * from the local cache (copied when linking is impossible), with mode 0555 or
 * 0444, and symlinks recreated.
 *
 * The sandboxed command runs as root and can write through a hard link into the
 * cache's copy, which would poison every later action using that blob. So staging
 * remembers the identity and metadata of every cache file it linked, and after the
 * run `evictModifiedInputs()` drops those whose size, mtime or mode changed, or
 * whose content no longer matches when only their ctime changed.
 */
import { createReadStream } from 'node:fs';
import { chmod, copyFile, link, lstat, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Digest,
  type DigestFunction,
  digestFunctionOf,
  digestKey,
  isEmptyDigest,
  parseDigest,
} from '../digest/digest.js';
import { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { BlobStore } from '../storage/blobStore.js';
import { Code, invalidArgument, StatusError } from '../util/status.js';
import { type LocalBlob, type LocalCache, missingBlobsError } from './localCache.js';
import { isSafeName } from './paths.js';
import { forEachLimit } from './pool.js';

export interface StageInputRootOptions {
  /** The remote CAS. */
  cas: BlobStore;
  cache: LocalCache;
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
   * from the local cache every linked blob the action modified. Returns those digests.
   */
  evictModifiedInputs(): Promise<Digest[]>;
}

const DEFAULT_CONCURRENCY = 32;
/** Directories may be shared within a tree; this bounds the expanded size of a hostile one. */
const MAX_STAGED_ENTRIES = 10_000_000;
const EXECUTABLE_MODE = 0o555;
const MTIME_MARGIN_MS = 100;
const PLAIN_MODE = 0o444;

interface PlacedFile extends LocalBlob {
  path: string;
}

/** Reads every Directory of a tree (breadth first, each level in parallel), validated. */
export async function fetchInputTree(
  cas: BlobStore,
  cache: LocalCache,
  rootDigest: Digest,
  concurrency = DEFAULT_CONCURRENCY,
): Promise<Map<string, Directory>> {
  const fn = digestFunctionOf(rootDigest);
  const directories = new Map<string, Directory>();
  let level = new Map([[digestKey(rootDigest), rootDigest]]);
  while (level.size > 0) {
    const missing: Digest[] = [];
    const next = new Map<string, Digest>();
    await forEachLimit(level, concurrency, async ([key, digest]) => {
      const data = await cache.getBuffer(cas, digest);
      if (data === undefined) {
        missing.push(digest);
        return;
      }
      const directory = decodeDirectory(data, key, fn);
      directories.set(key, directory);
      for (const child of directory.directories) {
        const childKey = digestKey(child.digest as Digest);
        if (!directories.has(childKey) && !level.has(childKey)) next.set(childKey, child.digest as Digest);
      }
    });
    if (missing.length > 0) throw missingBlobsError(missing, 'input directories');
    level = next;
  }
  return directories;
}

function decodeDirectory(data: Buffer, key: string, fn: DigestFunction): Directory {
  let directory: Directory;
  try {
    directory = Directory.decode(data);
  } catch (error) {
    throw invalidArgument(`input directory ${key} is not a valid Directory message: ${(error as Error).message}`);
  }
  const names = new Set<string>();
  const check = (name: string) => {
    if (!isSafeName(name)) throw invalidArgument(`input directory ${key} has an unsafe entry name "${name}"`);
    if (names.has(name)) throw invalidArgument(`input directory ${key} has the entry "${name}" more than once`);
    names.add(name);
  };
  for (const file of directory.files) {
    check(file.name);
    file.digest = parseDigest(file.digest, fn, `file ${file.name}`);
  }
  for (const child of directory.directories) {
    check(child.name);
    child.digest = parseDigest(child.digest, fn, `directory ${child.name}`);
  }
  for (const link of directory.symlinks) {
    check(link.name);
    if (link.target === '' || link.target.includes('\0')) {
      throw invalidArgument(`input directory ${key} has a symlink "${link.name}" with an invalid target`);
    }
  }
  return directory;
}

/** Stages the input root; FAILED_PRECONDITION with MISSING violations when blobs are absent. */
export async function stageInputRoot(options: StageInputRootOptions): Promise<StagedInputRoot> {
  const { cas, cache, rootDigest, destination, signal } = options;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const directories = await fetchInputTree(cas, cache, rootDigest, concurrency);
  signal?.throwIfAborted();

  // Lay out every path first, so all absent blobs are fetched in one parallel pass.
  const directoryPaths: string[][] = [];
  const files: PlacedFile[] = [];
  const symlinks: Array<{ path: string; target: string }> = [];
  let entries = 0;
  const visit = (digest: Digest, path: string, depth: number) => {
    const directory = directories.get(digestKey(digest)) as Directory;
    entries += 1 + directory.files.length + directory.symlinks.length;
    if (entries > MAX_STAGED_ENTRIES) {
      throw new StatusError(
        Code.RESOURCE_EXHAUSTED,
        `the input root expands to more than ${MAX_STAGED_ENTRIES} entries`,
      );
    }
    if (directoryPaths[depth] === undefined) directoryPaths[depth] = [];
    directoryPaths[depth].push(path);
    for (const file of directory.files) {
      files.push({ path: join(path, file.name), digest: file.digest as Digest, executable: file.isExecutable });
    }
    for (const link of directory.symlinks) symlinks.push({ path: join(path, link.name), target: link.target });
    for (const child of directory.directories) visit(child.digest as Digest, join(path, child.name), depth + 1);
  };
  visit(rootDigest, destination, 0);

  const missing = await cache.fetchMissing(cas, files, concurrency);
  if (missing.length > 0) throw missingBlobsError(missing, 'input files');
  signal?.throwIfAborted();

  for (const level of directoryPaths) {
    await forEachLimit(level, concurrency, (path) =>
      mkdir(path, { recursive: true, mode: 0o755 }).then(() => undefined),
    );
  }
  const linked = new Map<string, LocalBlob>();
  await forEachLimit(files, concurrency, async (file) => {
    const source = await placeFile(cas, cache, file);
    if (source !== undefined) linked.set(source, file);
  });
  await forEachLimit(symlinks, concurrency, ({ path, target }) => symlink(target, path));

  // Anything written through a link from now on has a later mtime than this. File
  // times come from the kernel's coarse clock, which lags by a few milliseconds, so
  // keep a margin: a blob fetched just before may look suspect and is then checked
  // by content; a real modification is never missed.
  const linkedAtNs = BigInt(Date.now() - MTIME_MARGIN_MS) * 1_000_000n;

  return {
    root: destination,
    fileCount: files.length,
    directoryCount: directoryPaths.reduce((n, level) => n + level.length, 0),
    evictModifiedInputs: () => evictModified(cache, linked, linkedAtNs, concurrency),
  };
}

/** Links (or copies) one file into place; returns the cache path it was linked to, if any. */
async function placeFile(cas: BlobStore, cache: LocalCache, file: PlacedFile): Promise<string | undefined> {
  const mode = file.executable ? EXECUTABLE_MODE : PLAIN_MODE;
  if (isEmptyDigest(file.digest)) {
    await writeFile(file.path, '', { mode });
    await chmod(file.path, mode);
    return undefined;
  }
  for (let attempt = 0; ; attempt++) {
    const source = await cache.pathOf(cas, file.digest, file.executable);
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
  cache: LocalCache,
  linked: Map<string, LocalBlob>,
  linkedAtNs: bigint,
  concurrency: number,
): Promise<Digest[]> {
  const evicted: Digest[] = [];
  await forEachLimit(linked, concurrency, async ([path, blob]) => {
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
      await cache.evict(blob.digest, blob.executable);
      evicted.push(blob.digest);
    }
  });
  return evicted;
}

async function contentMatches(path: string, digest: Digest): Promise<boolean> {
  const hasher = digestFunctionOf(digest).createHasher();
  let size = 0;
  try {
    for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
      size += chunk.length;
      hasher.update(chunk);
    }
  } catch {
    return false;
  }
  return size === digest.sizeBytes && hasher.digest('hex') === digest.hash;
}
