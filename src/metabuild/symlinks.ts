/**
 * BuildStream 1.x rewrites absolute symlink targets as relative ones whenever it
 * links or copies files into a directory (utils._process_list and
 * _relative_symlink_target): when it collects a build element's install root
 * into the artifact, composes a compose element, stages dependencies into a
 * sandbox and checks out an artifact. Only import elements keep absolute
 * targets in their artifacts. These helpers do the same to CAS trees.
 */
import { posix } from 'node:path';
import { backgroundContext } from '../context/requestContext.js';
import type { Digest } from '../digest/digest.js';
import type { BlobStore } from '../storage/blobStore.js';
import { TreeEditor } from '../tree/editor.js';
import { listTree } from '../tree/list.js';

/**
 * The target BuildStream gives a symlink at `path` (relative to the tree root)
 * whose target is `target`: an absolute target becomes relative to the
 * symlink's directory, as if the tree root were `/`; a relative one is kept.
 */
export function relativeSymlinkTarget(path: string, target: string): string {
  if (!target.startsWith('/')) return target;
  const relative = posix.relative(posix.dirname(`/${path}`), posix.resolve('/', target));
  return relative === '' ? '.' : relative;
}

/** The tree with every absolute symlink target made relative; the same digest when there is none. */
export async function relativizeSymlinks(cas: BlobStore, root: Digest): Promise<Digest> {
  const absolute = (await listTree(backgroundContext(), cas, root)).filter(
    (entry): entry is { path: string; kind: 'symlink'; target: string } =>
      entry.kind === 'symlink' && entry.target.startsWith('/'),
  );
  if (absolute.length === 0) return root;
  const editor = TreeEditor.open(backgroundContext(), cas, root);
  for (const link of absolute) await editor.putSymlink(link.path, relativeSymlinkTarget(link.path, link.target));
  return editor.finish();
}
