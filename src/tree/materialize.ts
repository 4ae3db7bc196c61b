/**
 * Writes a tree from the CAS onto the host: directories (empty ones too), files
 * with their executable bits, symlinks as symlinks with their targets verbatim.
 * The worker stages input roots this way (placing files by hard link from its
 * local cache) and the meta-build client checks artifacts out (streaming files
 * from the CAS).
 *
 * Every name is checked before anything is created (no "", ".", "..", "/" or
 * NUL, no entry twice), so a hostile tree cannot write outside the destination;
 * a tree that shares subdirectories is expanded at every place, up to a bound.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, digestFunctionOf, digestKey, formatDigest } from '../digest/digest.js';
import type { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { BlobStore } from '../storage/blobStore.js';
import { forEachLimit } from '../util/concurrency.js';
import { Code, invalidArgument, notFound, StatusError } from '../util/status.js';
import { loadTree } from './walk.js';

/** A file to create on the host. */
export interface PlacedFile {
  path: string;
  digest: Digest;
  executable: boolean;
}

/** Where every entry of a tree goes below a destination. */
export interface TreeLayout {
  /** Directory paths by depth: the destination alone first, then each level below it. */
  directoryPaths: string[][];
  files: PlacedFile[];
  symlinks: Array<{ path: string; target: string }>;
}

/** Directories may be shared within a tree; this bounds the expanded size of a hostile one. */
const MAXIMUM_LAID_OUT_ENTRIES = 10_000_000;
const DEFAULT_CONCURRENCY = 32;
/** Longest path Linux takes in one call (PATH_MAX, with its terminating NUL), in bytes. */
const MAXIMUM_PATH_BYTES = 4096;

/**
 * Lays out a loaded tree (see loadTree, whose directories must have been checked
 * with `safeNames` and a digest function) below `destination`.
 * RESOURCE_EXHAUSTED when it expands to more than `maximumEntries`;
 * INVALID_ARGUMENT when it nests so deep that a path below `destination` is
 * longer than the host takes (which also bounds the recursion).
 */
export function layoutTree(
  directories: ReadonlyMap<string, Directory>,
  root: Digest,
  destination: string,
  maximumEntries = MAXIMUM_LAID_OUT_ENTRIES,
): TreeLayout {
  const layout: TreeLayout = { directoryPaths: [], files: [], symlinks: [] };
  let entries = 0;
  const below = (parent: string, name: string): string => {
    const path = join(parent, name);
    if (Buffer.byteLength(path, 'utf8') >= MAXIMUM_PATH_BYTES) {
      throw invalidArgument(
        `the tree nests too deep: a path below ${destination} would be longer than ${MAXIMUM_PATH_BYTES - 1} bytes (${path.slice(0, 120)}...)`,
      );
    }
    return path;
  };
  const visit = (digest: Digest, path: string, depth: number) => {
    const directory = directories.get(digestKey(digest));
    if (!directory) throw notFound(`directory ${formatDigest(digest)} is missing from the CAS`);
    entries += 1 + directory.files.length + directory.symlinks.length;
    if (entries > maximumEntries) {
      throw new StatusError(Code.RESOURCE_EXHAUSTED, `the tree expands to more than ${maximumEntries} entries`);
    }
    if (layout.directoryPaths[depth] === undefined) layout.directoryPaths[depth] = [];
    layout.directoryPaths[depth].push(path);
    for (const file of directory.files) {
      layout.files.push({ path: below(path, file.name), digest: file.digest as Digest, executable: file.isExecutable });
    }
    for (const link of directory.symlinks) layout.symlinks.push({ path: below(path, link.name), target: link.target });
    for (const child of directory.directories) visit(child.digest as Digest, below(path, child.name), depth + 1);
  };
  visit(root, destination, 0);
  return layout;
}

export interface CreateLayoutOptions {
  /** Writes one file into place (its directory exists). */
  placeFile: (file: PlacedFile) => Promise<void>;
  concurrency?: number;
  /** Mode of created directories; default 0o777 less the umask. */
  directoryMode?: number;
}

/** Creates the directories of a layout (parents first), then its files, then its symlinks. */
export async function createLayout(layout: TreeLayout, options: CreateLayoutOptions): Promise<void> {
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const mode = options.directoryMode;
  for (const level of layout.directoryPaths) {
    await forEachLimit(level, concurrency, async (path) => {
      await mkdir(path, mode === undefined ? { recursive: true } : { recursive: true, mode });
    });
  }
  await forEachLimit(layout.files, concurrency, options.placeFile);
  await forEachLimit(layout.symlinks, concurrency, ({ path, target }) => symlink(target, path));
}

export interface MaterializeTreeOptions {
  concurrency?: number;
}

/**
 * Writes the tree `root` from the CAS into `destination` (created if absent;
 * expected not to hold the tree's names already): files with mode 0755 or 0644
 * (less the umask), streamed from the CAS. Returns the number of files written.
 * NOT_FOUND when a directory or file is missing; INVALID_ARGUMENT for a
 * malformed tree, before anything is written.
 */
export async function materializeTree(
  context: RequestContext,
  cas: BlobStore,
  root: Digest,
  destination: string,
  options: MaterializeTreeOptions = {},
): Promise<number> {
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const { directories, missing } = await loadTree(context, cas, [root], {
    concurrency,
    digestFunction: digestFunctionOf(root),
    safeNames: true,
  });
  const first = missing[0];
  if (first) throw notFound(`directory ${formatDigest(first.digest)} is missing from the CAS`);
  const layout = layoutTree(directories, root, destination);
  await createLayout(layout, {
    concurrency,
    placeFile: async (file) => {
      const mode = file.executable ? 0o755 : 0o644;
      if (file.digest.sizeBytes === 0) {
        await writeFile(file.path, Buffer.alloc(0), { mode });
        return;
      }
      const blob = await cas.get(context, file.digest);
      if (!blob) throw notFound(`file ${formatDigest(file.digest)} is missing from the CAS`);
      await pipeline(blob.read(), createWriteStream(file.path, { mode }));
    },
  });
  return layout.files.length;
}
