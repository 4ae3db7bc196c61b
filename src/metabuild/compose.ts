/**
 * The compose kind: overlays the artifacts of the build dependencies (with their
 * runtime dependencies) into one tree, keeping the files of the split domains the
 * element includes. Files matched by no domain are "orphans", kept when
 * include-orphans is true.
 */

import { backgroundContext } from '../context/requestContext.js';
import type { Digest } from '../digest/digest.js';
import type { BlobStore } from '../storage/blobStore.js';
import { EMPTY_DIRECTORY_DIGEST } from '../tree/directory.js';
import { mergeTrees, TreeEditor } from '../tree/editor.js';
import { listTree } from '../tree/list.js';
import type { PlannedElement } from './builder.js';
import type { ComposeConfig } from './project/index.js';

export async function composeArtifact(
  cas: BlobStore,
  config: ComposeConfig,
  dependencies: PlannedElement[],
): Promise<Digest> {
  const roots = dependencies.map((d) => d.artifact?.root ?? EMPTY_DIRECTORY_DIGEST);
  const merged = await mergeTrees(backgroundContext(), cas, roots);
  if (config.include.length === 0 && config.exclude.length === 0 && config.includeOrphans) return merged;
  const rules = new Map<string, RegExp[]>();
  for (const dep of dependencies) {
    for (const [domain, patterns] of Object.entries(dep.element.splitRules)) {
      const list = rules.get(domain) ?? [];
      list.push(...patterns.map(globToRegExp));
      rules.set(domain, list);
    }
  }
  const domainsOf = (path: string) =>
    [...rules].filter(([, res]) => res.some((re) => re.test(`/${path}`))).map(([d]) => d);
  const editor = TreeEditor.open(backgroundContext(), cas, merged);
  for (const entry of await listTree(backgroundContext(), cas, merged)) {
    if (entry.kind === 'directory') continue;
    const domains = domainsOf(entry.path);
    const keep =
      domains.length === 0
        ? config.includeOrphans
        : domains.some((d) => config.include.length === 0 || config.include.includes(d)) &&
          !domains.some((d) => config.exclude.includes(d));
    if (!keep) await editor.remove(entry.path);
  }
  return editor.finish();
}

/** BuildStream split-rule globs: `*` within a path segment, `**` across segments. */
export function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      out += '.*';
      i++;
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}
