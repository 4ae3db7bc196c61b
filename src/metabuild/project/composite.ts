/**
 * Layered composition of YAML mappings, BuildStream 1.x style.
 *
 * Element settings are built by laying several mappings over each other
 * (builtin defaults, element-kind defaults, project.conf, the element file).
 * Mappings merge key by key, scalars and plain lists replace, and a mapping
 * made only of the list directives `(=)` replace, `(<)` prepend and `(>)`
 * append edits the list beneath it instead of replacing it. A directive that
 * finds no list beneath it is kept so a later layer can still apply, and
 * `assertNoDirectives` reports it once all layers are in. Inputs are never
 * modified: results share unchanged subtrees with them.
 */
import { formatLoc, ProjectError } from './errors.js';
import { describeNode, type YEntry, type YMap, type YNode, type YSeq } from './yamlTree.js';

const REPLACE = '(=)';
const PREPEND = '(<)';
const APPEND = '(>)';
const LIST_DIRECTIVES = [REPLACE, PREPEND, APPEND];
const CONDITIONALS = '(?)';

/** True for a mapping holding only list directives; a mapping that mixes them with other keys is an error. */
export function isDirectiveMap(node: YNode): boolean {
  if (node.type !== 'map' || node.entries.size === 0) return false;
  let directives = 0;
  for (const [key, entry] of node.entries) {
    if (LIST_DIRECTIVES.includes(key)) {
      directives++;
      if (entry.value.type !== 'seq') {
        throw new ProjectError(
          entry.keyLoc,
          `the '${key}' list directive needs a list, found ${describeNode(entry.value)}`,
        );
      }
    }
  }
  if (directives > 0 && directives < node.entries.size) {
    throw new ProjectError(node.loc, 'a mapping cannot mix list directives (=), (<), (>) with other keys');
  }
  return directives > 0;
}

/** Lays `source` over `target` and returns the result. */
export function composite(target: YMap, source: YMap, path = ''): YMap {
  const entries = new Map<string, YEntry>(target.entries);
  for (const [key, sourceEntry] of source.entries) {
    const where = path ? `${path}.${key}` : key;
    const targetValue = target.entries.get(key)?.value;
    // Conditionals of both layers are all kept, to be evaluated later (BuildStream 2).
    const value =
      key === CONDITIONALS && targetValue?.type === 'seq' && sourceEntry.value.type === 'seq'
        ? { ...sourceEntry.value, items: [...targetValue.items, ...sourceEntry.value.items] }
        : compositeValue(targetValue, sourceEntry, where);
    entries.set(key, { keyLoc: sourceEntry.keyLoc, value });
  }
  return { type: 'map', entries, loc: target.entries.size > 0 ? target.loc : source.loc };
}

/** Composes several layers, lowest precedence first. */
export function compositeAll(layers: readonly (YMap | undefined)[], base: YMap): YMap {
  let result = base;
  for (const layer of layers) if (layer) result = composite(result, layer);
  return result;
}

function compositeValue(target: YNode | undefined, sourceEntry: YEntry, where: string): YNode {
  const source = sourceEntry.value;
  const clash = (): never => {
    const at = target ? ` (defined as ${describeNode(target)} at ${formatLoc(target.loc)})` : '';
    throw new ProjectError(sourceEntry.keyLoc, `cannot override '${where}' with ${describeNode(source)}${at}`);
  };
  if (source.type === 'seq') {
    if (target && target.type !== 'seq' && !isDirectiveMap(target)) clash();
    return source;
  }
  if (isDirectiveMap(source)) {
    if (target === undefined) return source;
    if (target.type === 'seq') return applyDirectives(target, source as YMap);
    if (target.type === 'map' && isDirectiveMap(target)) return mergeDirectives(target, source as YMap);
    return clash();
  }
  if (source.type === 'map') {
    if (target === undefined) return source;
    if (target.type !== 'map' || isDirectiveMap(target)) return clash();
    return composite(target, source, where);
  }
  if (target && target.type !== 'scalar') clash();
  return source;
}

function directive(map: YMap, key: string): YSeq | undefined {
  const value = map.entries.get(key)?.value;
  return value?.type === 'seq' ? value : undefined;
}

/** Applies a directive mapping to a concrete list: replace, then prepend, then append. */
function applyDirectives(list: YSeq, directives: YMap): YSeq {
  let items = directive(directives, REPLACE)?.items ?? list.items;
  items = [...(directive(directives, PREPEND)?.items ?? []), ...items, ...(directive(directives, APPEND)?.items ?? [])];
  return { type: 'seq', items, loc: directives.loc };
}

/** Combines two directive mappings, neither of which has found its list yet. */
function mergeDirectives(target: YMap, source: YMap): YMap {
  const replace = directive(source, REPLACE);
  const entries = new Map<string, YEntry>();
  const put = (key: string, items: readonly YNode[], keyLoc: YEntry['keyLoc']) => {
    if (items.length > 0 || key === REPLACE) entries.set(key, { keyLoc, value: { type: 'seq', items, loc: keyLoc } });
  };
  const targetReplace = target.entries.get(REPLACE);
  if (replace) put(REPLACE, replace.items, source.entries.get(REPLACE)!.keyLoc);
  else if (targetReplace) entries.set(REPLACE, targetReplace);
  // A replacement in the source discards whatever the target wanted to add around the old list.
  const keepTarget = replace === undefined;
  const prepend = [
    ...(directive(source, PREPEND)?.items ?? []),
    ...(keepTarget ? (directive(target, PREPEND)?.items ?? []) : []),
  ];
  const append = [
    ...(keepTarget ? (directive(target, APPEND)?.items ?? []) : []),
    ...(directive(source, APPEND)?.items ?? []),
  ];
  const locOf = (key: string) => (source.entries.get(key) ?? target.entries.get(key))?.keyLoc ?? source.loc;
  put(PREPEND, prepend, locOf(PREPEND));
  put(APPEND, append, locOf(APPEND));
  return { type: 'map', entries, loc: source.loc };
}

/**
 * Fails on any list directive left after all layers were composed: it was
 * meant to modify a list that nothing defined.
 */
export function assertNoDirectives(node: YNode, path = ''): void {
  if (node.type === 'seq') {
    node.items.forEach((item, index) => {
      assertNoDirectives(item, `${path}[${index}]`);
    });
    return;
  }
  if (node.type !== 'map') return;
  for (const [key, entry] of node.entries) {
    if (LIST_DIRECTIVES.includes(key)) {
      const target = path || 'the top level';
      throw new ProjectError(
        entry.keyLoc,
        `list directive '${key}' on '${target}', but no list '${target}' exists to modify`,
      );
    }
    assertNoDirectives(entry.value, path ? `${path}.${key}` : key);
  }
}
