/**
 * Walks the Directory graph of a tree in the CAS: the one traversal behind
 * GetTree, the completeness checks of action results and assets, the cas
 * source, staging an input root, listing and checking out a tree.
 *
 * Breadth first, one level at a time with the directories of a level read
 * concurrently; each distinct directory is visited once however often it is
 * shared; the order is deterministic (the roots as given, then each directory's
 * children in listing order), so positions in it can serve as page tokens.
 */
import { type RequestContext, throwIfAborted } from '../context/requestContext.js';
import { type Digest, digestKey, isEmptyDigest } from '../digest/digest.js';
import type { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type BlobStore, getBuffer } from '../storage/blobStore.js';
import { mapLimited } from '../util/concurrency.js';
import { type CheckDirectoryOptions, checkDirectory, decodeDirectory } from './directory.js';
import { childPath } from './names.js';

/** Directories read at once by default. */
const DEFAULT_WALK_CONCURRENCY = 16;

export interface WalkTreeOptions extends CheckDirectoryOptions {
  /** Directories read at once. Default 16. */
  concurrency?: number;
  /** Reads a Directory blob instead of `cas`, e.g. through the worker's local cache. */
  readBlob?: (digest: Digest) => Promise<Buffer | undefined>;
}

/** One directory of the walk. */
export interface WalkedDirectory {
  digest: Digest;
  /** Where the walk first met it: '' for a root, else the slash-separated path from that root. */
  path: string;
  /** The decoded (and checked) message, or undefined when the CAS does not have it. */
  directory: Directory | undefined;
}

/**
 * Yields every distinct directory reachable from `roots`, breadth first. An
 * absent directory is yielded with `directory` undefined (its subtree is then
 * unknown); a blob that is not a Directory, or fails the checks asked for in
 * `options`, throws MalformedTreeError. Child entries without a digest are
 * skipped unless `digestFunction` asks for them to be checked.
 */
export async function* walkTree(
  context: RequestContext,
  cas: BlobStore,
  roots: readonly Digest[],
  options: WalkTreeOptions = {},
): AsyncGenerator<WalkedDirectory> {
  const readBlob = options.readBlob ?? ((digest: Digest) => getBuffer(context, cas, digest));
  const concurrency = options.concurrency ?? DEFAULT_WALK_CONCURRENCY;
  const checking = options.digestFunction !== undefined || options.safeNames === true;
  const seen = new Set<string>();
  let level: Array<{ digest: Digest; path: string }> = [];
  for (const root of roots) {
    const key = digestKey(root);
    if (seen.has(key)) continue;
    seen.add(key);
    level.push({ digest: root, path: '' });
  }
  while (level.length > 0) {
    throwIfAborted(context);
    const loaded = await mapLimited(level, concurrency, async ({ digest, path }): Promise<WalkedDirectory> => {
      const data = isEmptyDigest(digest) ? Buffer.alloc(0) : await readBlob(digest);
      if (data === undefined) return { digest, path, directory: undefined };
      const decoded = decodeDirectory(data, digest);
      return { digest, path, directory: checking ? checkDirectory(decoded, digest, options) : decoded };
    });
    const next: Array<{ digest: Digest; path: string }> = [];
    for (const walked of loaded) {
      yield walked;
      for (const child of walked.directory?.directories ?? []) {
        if (!child.digest) continue;
        const key = digestKey(child.digest);
        if (seen.has(key)) continue;
        seen.add(key);
        next.push({ digest: child.digest, path: childPath(walked.path, child.name) });
      }
    }
    level = next;
  }
}

/** Every directory of a tree, by digestKey, and the directories the CAS lacks. */
export interface LoadedTree {
  directories: Map<string, Directory>;
  /** Absent directories, in walk order, with the path where each was first met. */
  missing: Array<{ digest: Digest; path: string }>;
}

/** Reads every directory reachable from `roots` into memory (see walkTree). */
export async function loadTree(
  context: RequestContext,
  cas: BlobStore,
  roots: readonly Digest[],
  options: WalkTreeOptions = {},
): Promise<LoadedTree> {
  const directories = new Map<string, Directory>();
  const missing: LoadedTree['missing'] = [];
  for await (const { digest, path, directory } of walkTree(context, cas, roots, options)) {
    if (directory) directories.set(digestKey(digest), directory);
    else missing.push({ digest, path });
  }
  return { directories, missing };
}

/** The blobs a set of trees consists of, for completeness checks. */
export interface TreeContents {
  /** Every directory met, present or not (roots included), each once. */
  directories: Digest[];
  /** Every file of the present directories, each once. */
  files: Digest[];
  /** Directories the CAS lacks, with the path where each was first met; their subtrees are unknown. */
  missingDirectories: Array<{ digest: Digest; path: string }>;
}

/**
 * Lists the directories and files of the trees below `roots`, reading every
 * directory (so a missing one is found) but no file: ask the CAS which of
 * `files` it lacks (FindMissingBlobs), which also refreshes them.
 */
export async function treeContents(
  context: RequestContext,
  cas: BlobStore,
  roots: readonly Digest[],
  options: WalkTreeOptions = {},
): Promise<TreeContents> {
  const directories: Digest[] = [];
  const files = new Map<string, Digest>();
  const missingDirectories: TreeContents['missingDirectories'] = [];
  for await (const { digest, path, directory } of walkTree(context, cas, roots, options)) {
    directories.push(digest);
    if (!directory) {
      missingDirectories.push({ digest, path });
      continue;
    }
    for (const file of directory.files) if (file.digest) files.set(digestKey(file.digest), file.digest);
  }
  return { directories, files: [...files.values()], missingDirectories };
}
