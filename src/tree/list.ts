/**
 * Lists every path of a tree in the CAS, for checking out, publishing and
 * comparing trees. Directories are read concurrently (see walkTree); the
 * listing itself is depth first with names in canonical order, so the same tree
 * always lists the same way.
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, digestKey, formatDigest } from '../digest/digest.js';
import type { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { BlobStore } from '../storage/blobStore.js';
import { notFound } from '../util/status.js';
import { compareNames } from './names.js';
import { loadTree } from './walk.js';

/** What listTree reports for each path below the root (directories included). */
export type ListedEntry =
  | { path: string; kind: 'file'; digest: Digest; executable: boolean }
  | { path: string; kind: 'directory'; digest: Digest }
  | { path: string; kind: 'symlink'; target: string };

/** Lists every path below `root`, depth first, names in canonical order. NOT_FOUND when a directory is missing. */
export async function listTree(context: RequestContext, cas: BlobStore, root: Digest): Promise<ListedEntry[]> {
  const { directories, missing } = await loadTree(context, cas, [root]);
  const first = missing[0];
  if (first) throw notFound(`directory ${formatDigest(first.digest)} is missing from the CAS`);
  const out: ListedEntry[] = [];
  const visit = (digest: Digest, prefix: string) => {
    const directory = directories.get(digestKey(digest)) as Directory;
    const entries: Array<[string, () => void]> = [];
    for (const f of directory.files) {
      const entry: ListedEntry = {
        path: prefix + f.name,
        kind: 'file',
        digest: f.digest as Digest,
        executable: f.isExecutable,
      };
      entries.push([f.name, () => out.push(entry)]);
    }
    for (const s of directory.symlinks) {
      const entry: ListedEntry = { path: prefix + s.name, kind: 'symlink', target: s.target };
      entries.push([s.name, () => out.push(entry)]);
    }
    for (const d of directory.directories) {
      const child = d.digest as Digest;
      entries.push([
        d.name,
        () => {
          out.push({ path: prefix + d.name, kind: 'directory', digest: child });
          visit(child, `${prefix}${d.name}/`);
        },
      ]);
    }
    entries.sort((a, b) => compareNames(a[0], b[0]));
    for (const [, emit] of entries) emit();
  };
  visit(root, '');
  return out;
}
