/**
 * REAPI Tree messages (a root Directory plus every directory below it, in one
 * blob), which describe output directories in ActionResults: building one from
 * a tree in the CAS, reading one back, and listing the files it references.
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, digestKey, formatDigest } from '../digest/digest.js';
import { type Directory, Tree } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type BlobStore, getBuffer } from '../storage/blobStore.js';
import { notFound } from '../util/status.js';
import { MalformedTreeError } from './directory.js';
import { loadTree } from './walk.js';

/**
 * The Tree message of a tree in the CAS: its root and every distinct directory
 * below it once, in walk order (breadth first). NOT_FOUND when a directory is missing.
 */
export async function treeMessageOf(context: RequestContext, cas: BlobStore, root: Digest): Promise<Tree> {
  const { directories, missing } = await loadTree(context, cas, [root]);
  const first = missing[0];
  if (first) {
    throw notFound(`directory ${first.path || '(the root)'} (${formatDigest(first.digest)}) is missing from the CAS`);
  }
  const rootKey = digestKey(root);
  const children: Directory[] = [];
  for (const [key, directory] of directories) if (key !== rootKey) children.push(directory);
  return { root: directories.get(rootKey), children };
}

/** Decodes a Tree blob; MalformedTreeError when it is not one. */
export function decodeTree(data: Buffer, digest: Digest): Tree {
  try {
    return Tree.decode(data);
  } catch (error) {
    throw new MalformedTreeError(`blob ${digestKey(digest)} is not a Tree message: ${(error as Error).message}`);
  }
}

/** Reads and decodes a Tree blob, or undefined when the CAS does not have it. */
export async function readTreeMessage(
  context: RequestContext,
  cas: BlobStore,
  digest: Digest,
): Promise<Tree | undefined> {
  const data = await getBuffer(context, cas, digest);
  return data === undefined ? undefined : decodeTree(data, digest);
}

/** Every file digest a Tree message references (in its root and children), each once. */
export function filesOfTree(tree: Tree): Digest[] {
  const files = new Map<string, Digest>();
  for (const directory of [tree.root, ...tree.children]) {
    for (const file of directory?.files ?? []) if (file.digest) files.set(digestKey(file.digest), file.digest);
  }
  return [...files.values()];
}
