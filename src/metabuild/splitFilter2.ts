/**
 * Split domains as BuildStream 2 applies them when it stages part of an
 * artifact (filter and compose elements).
 *
 * A path belongs to a domain when it matches one of the domain's globs
 * (BuildStream's glob dialect: `*` and `?` within a path component, `**`
 * across components, `[...]` classes), tested as an absolute path. A path is
 * kept when a domain it belongs to is included (all domains when none are
 * named), or when it belongs to no domain and orphans are kept, and no domain
 * it belongs to is excluded. Directories are tested too: a directory is kept
 * when it passes or when anything inside it is kept.
 */

import { backgroundContext } from '../context/requestContext.js';
import type { Digest } from '../digest/digest.js';
import type { BlobStore } from '../storage/blobStore.js';
import { TreeEditor } from '../tree/editor.js';
import { listTree } from '../tree/list.js';

/** BuildStream 2's glob to regular expression translation (utils._glob2re). */
export function globToRegExpSource(glob: string): string {
  let out = '';
  let index = 0;
  while (index < glob.length) {
    const char = glob[index++] as string;
    if (char === '*') {
      if (glob[index] === '*') {
        out += '.*';
        index++;
      } else out += '[^/]*';
    } else if (char === '?') out += '[^/]';
    else if (char === '[') {
      let end = index;
      if (glob[end] === '!') end++;
      if (glob[end] === ']') end++;
      while (end < glob.length && glob[end] !== ']') end++;
      if (end >= glob.length) out += '\\[';
      else {
        let body = glob.slice(index, end).replaceAll('\\', '\\\\');
        index = end + 1;
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        else if (body.startsWith('^')) body = `\\${body}`;
        out += `[${body}]`;
      }
    } else out += char.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  }
  return out;
}

/**
 * The keep/drop decision for paths relative to an artifact's root, or
 * undefined when nothing is filtered (all orphans kept, no domain named).
 */
export function splitFilter(
  splitRules: Readonly<Record<string, readonly string[]>>,
  include: readonly string[],
  exclude: readonly string[],
  orphans: boolean,
): ((path: string) => boolean) | undefined {
  if (orphans && include.length === 0 && exclude.length === 0) return undefined;
  const domains = Object.entries(splitRules).map(
    ([domain, globs]) => [domain, new RegExp(`^(?:${globs.map(globToRegExpSource).join('|')})$`, 's')] as const,
  );
  const names = domains.map(([domain]) => domain);
  const included = (include.length > 0 ? include : names).filter((domain) => names.includes(domain));
  const excluded = exclude.filter((domain) => names.includes(domain));
  return (path: string) => {
    const absolute = `/${path}`;
    let claimed = false;
    let keep = false;
    let drop = false;
    for (const [domain, pattern] of domains) {
      if (!pattern.test(absolute)) continue;
      claimed = true;
      if (included.includes(domain)) keep = true;
      if (excluded.includes(domain)) drop = true;
    }
    if (orphans && !claimed) keep = true;
    return keep && !drop;
  };
}

/** Every path of a tree (directories, files and symlinks; not the root itself), as BuildStream lists them. */
export async function relativePaths(cas: BlobStore, root: Digest): Promise<string[]> {
  return (await listTree(backgroundContext(), cas, root)).map((entry) => entry.path);
}

/**
 * The part of a tree `keep` selects, as BuildStream 2 imports it through a
 * filter: files and symlinks that pass, directories that pass or hold
 * something that does.
 */
export async function filterTree(cas: BlobStore, root: Digest, keep: (path: string) => boolean): Promise<Digest> {
  const entries = await listTree(backgroundContext(), cas, root);
  const kept = new Set<string>();
  for (const entry of entries) {
    if (!keep(entry.path)) continue;
    kept.add(entry.path);
    // A kept entry keeps the directories leading to it.
    for (let slash = entry.path.lastIndexOf('/'); slash > 0; slash = entry.path.lastIndexOf('/', slash - 1)) {
      kept.add(entry.path.slice(0, slash));
    }
  }
  const editor = TreeEditor.open(backgroundContext(), cas, root);
  let removed: string | undefined;
  // Entries come parent first: removing a directory removes what is inside it.
  for (const entry of entries) {
    if (removed !== undefined && entry.path.startsWith(`${removed}/`)) continue;
    if (kept.has(entry.path)) continue;
    await editor.remove(entry.path);
    removed = entry.path;
  }
  return editor.finish();
}
