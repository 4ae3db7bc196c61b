/**
 * BuildStream 2's include directive, `(@)`.
 *
 * A mapping anywhere in project.conf or an element file may hold `(@)`: a
 * file name or a list of them, relative to the project directory, or
 * `JUNCTION:FILE` for a file of a subproject. Each included file (with its
 * own conditionals and includes processed first) is laid *under* the mapping
 * that includes it, so the including file's own values win, and a later
 * include wins over an earlier one. Including a file that is already being
 * included is an error.
 */
import { composite } from './composite.js';
import { type Loc, ProjectError } from './errors.js';
import type { OptionPool } from './options.js';
import { describeNode, type YMap, type YNode } from './yamlTree.js';

const INCLUDE = '(@)';

/** Where includes of one project are read from. */
export interface IncludeScope {
  /** The options whose conditionals apply to files of this project, if they are processed. */
  readonly options: OptionPool | undefined;
  /**
   * Loads an included file: its node (unprocessed), a key naming the file
   * uniquely, and the scope of the project it belongs to.
   */
  load(path: string, loc: Loc): Promise<{ node: YMap; key: string; scope: IncludeScope }>;
}

export interface IncludeOptions {
  /** Skip `JUNCTION:FILE` includes (project.conf's first pass, before subprojects can load). */
  readonly onlyLocal?: boolean;
}

/** Processes conditionals (when the scope has options) and includes of `node`, recursively. */
export async function processIncludes(
  node: YMap,
  scope: IncludeScope,
  options: IncludeOptions = {},
  including: Set<string> = new Set(),
): Promise<YMap> {
  const processed = scope.options ? scope.options.process(node) : node;
  return includeInto(processed, scope, options, including);
}

async function includeInto(
  node: YMap,
  scope: IncludeScope,
  options: IncludeOptions,
  including: Set<string>,
): Promise<YMap> {
  let current = node;
  const directive = node.entries.get(INCLUDE);
  if (directive) {
    const paths = includePaths(directive.value);
    const rest = new Map(current.entries);
    rest.delete(INCLUDE);
    current = { ...current, entries: rest };
    for (const path of [...paths].reverse()) {
      const text = (path.value ?? '').trim();
      if (options.onlyLocal && text.includes(':')) continue;
      const loaded = await scope.load(text, path.loc);
      if (including.has(loaded.key)) {
        throw new ProjectError(path.loc, `recursive include of '${text}'`);
      }
      including.add(loaded.key);
      let included: YMap;
      try {
        included = await processIncludes(loaded.node, loaded.scope, options, including);
      } finally {
        including.delete(loaded.key);
      }
      // The including mapping wins over what it includes.
      current = composite(included, current);
    }
  }
  const entries = new Map(current.entries);
  let changed = current !== node;
  for (const [key, entry] of current.entries) {
    const value = await includeValue(entry.value, scope, options, including);
    if (value !== entry.value) {
      entries.set(key, { ...entry, value });
      changed = true;
    }
  }
  return changed ? { ...current, entries } : current;
}

async function includeValue(
  value: YNode,
  scope: IncludeScope,
  options: IncludeOptions,
  including: Set<string>,
): Promise<YNode> {
  if (value.type === 'map') return includeInto(value, scope, options, including);
  if (value.type === 'seq') {
    const items: YNode[] = [];
    for (const item of value.items) items.push(await includeValue(item, scope, options, including));
    return items.some((item, index) => item !== value.items[index]) ? { ...value, items } : value;
  }
  return value;
}

function includePaths(value: YNode): { value: string | null; loc: Loc }[] {
  if (value.type === 'scalar') return [value];
  if (value.type === 'seq') {
    return value.items.map((item) => {
      if (item.type !== 'scalar') {
        throw new ProjectError(item.loc, `an include must name a file, found ${describeNode(item)}`);
      }
      return item;
    });
  }
  throw new ProjectError(value.loc, `'(@)' must name a file or a list of files, found ${describeNode(value)}`);
}

/** True when `node` (recursively) includes a file of a subproject. */
export function hasJunctionIncludes(node: YNode): boolean {
  if (node.type === 'seq') return node.items.some(hasJunctionIncludes);
  if (node.type !== 'map') return false;
  for (const [key, entry] of node.entries) {
    if (key === INCLUDE) {
      const values = entry.value.type === 'seq' ? entry.value.items : [entry.value];
      if (values.some((item) => item.type === 'scalar' && (item.value ?? '').includes(':'))) return true;
    } else if (hasJunctionIncludes(entry.value)) return true;
  }
  return false;
}
