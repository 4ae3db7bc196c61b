/**
 * YAML parsing into a small immutable tree that remembers file and line.
 *
 * BuildStream 1.x reads every scalar as a string (numbers, booleans and "~"
 * included) and interprets it later according to where it is used; the
 * `yaml` package's failsafe schema gives exactly that. Every node carries its
 * location so that any later stage (composition, variable expansion,
 * validation) can point the user at the offending line. Helpers here do the
 * type checks that all the other modules share.
 */
import { isAlias, isMap, isScalar, isSeq, type Node } from 'yaml';
import { parseYamlInput, type YamlInput, YamlInputError } from '../../util/yamlInput.js';
import { type Loc, ProjectError } from './errors.js';

export interface YScalar {
  readonly type: 'scalar';
  /** The scalar text; null only for an empty plain value (`key:` with nothing after it). */
  readonly value: string | null;
  readonly loc: Loc;
}

export interface YSeq {
  readonly type: 'seq';
  readonly items: readonly YNode[];
  readonly loc: Loc;
}

export interface YEntry {
  /** Location of the key, which is where errors about the entry point. */
  readonly keyLoc: Loc;
  readonly value: YNode;
}

export interface YMap {
  readonly type: 'map';
  readonly entries: ReadonlyMap<string, YEntry>;
  readonly loc: Loc;
}

export type YNode = YScalar | YSeq | YMap;

/** JSON-like data as handed to layers that do not care about locations. */
export type Plain = string | null | Plain[] | { [key: string]: Plain };

export interface ParseOptions {
  /** Refuse anchors and aliases, as BuildStream 2 does. */
  readonly noAnchors?: boolean;
}

/** Parses one YAML document whose top level must be a mapping (an empty document is an empty mapping). */
export function parseYaml(text: string, file: string, options: ParseOptions = {}): YMap {
  let input: YamlInput;
  try {
    input = parseYamlInput(text, { schema: 'failsafe' });
  } catch (error) {
    if (!(error instanceof YamlInputError)) throw error;
    throw new ProjectError({ file, line: error.line }, `malformed YAML: ${error.detail}`);
  }
  const { document: doc, aliasTargets } = input;
  const locAt = (node: Node | null | undefined): Loc => ({ file, line: input.lineOf(node) });
  const convert = (node: unknown, depth: number): YNode => {
    if (depth > 200)
      throw new ProjectError(locAt(node as Node), 'YAML nesting, aliases expanded, is deeper than 200 levels');
    if (options.noAnchors && (isAlias(node) || (node as { anchor?: string } | null)?.anchor)) {
      throw new ProjectError(locAt(node as Node), 'YAML anchors and aliases are not allowed in BuildStream 2 files');
    }
    if (isAlias(node)) {
      // parseYamlInput resolved every alias and bounded what expanding them adds.
      return convert(aliasTargets.get(node) as Node, depth + 1);
    }
    if (isScalar(node)) {
      const raw = node.value;
      const text = raw === null || raw === undefined ? '' : String(raw);
      const empty = text === '' && node.type === 'PLAIN' && !!node.range && node.range[0] === node.range[1];
      return { type: 'scalar', value: empty ? null : text, loc: locAt(node) };
    }
    if (isSeq(node)) {
      return { type: 'seq', items: node.items.map((item) => convert(item, depth + 1)), loc: locAt(node) };
    }
    if (isMap(node)) {
      const entries = new Map<string, YEntry>();
      for (const pair of node.items) {
        const key = pair.key as Node | null;
        if (!isScalar(key) || key.value === null || key.value === undefined) {
          throw new ProjectError(locAt(key ?? node), 'mapping keys must be plain strings');
        }
        const keyLoc = locAt(key);
        const value =
          pair.value === null || pair.value === undefined
            ? ({ type: 'scalar', value: null, loc: keyLoc } as const)
            : convert(pair.value, depth + 1);
        entries.set(String(key.value), { keyLoc, value });
      }
      return { type: 'map', entries, loc: locAt(node) };
    }
    if (node === null || node === undefined) return { type: 'scalar', value: null, loc: { file, line: 1 } };
    throw new ProjectError(locAt(node as Node), 'unsupported YAML node');
  };
  if (doc.contents === null) return { type: 'map', entries: new Map(), loc: { file, line: 1 } };
  const top = convert(doc.contents, 0);
  if (top.type !== 'map') {
    throw new ProjectError(top.loc, `expected a mapping at the top of the file, found ${describeNode(top)}`);
  }
  return top;
}

/** "a string", "a list" or "a mapping", for error messages. */
export function describeNode(node: YNode): string {
  return node.type === 'scalar' ? 'a string' : node.type === 'seq' ? 'a list' : 'a mapping';
}

export function toPlain(node: YNode): Plain {
  if (node.type === 'scalar') return node.value;
  if (node.type === 'seq') return node.items.map(toPlain);
  // fromEntries defines every key as an own property: assigning a "__proto__" key would set the prototype instead.
  return Object.fromEntries([...node.entries].map(([key, entry]) => [key, toPlain(entry.value)]));
}

export function emptyMap(loc: Loc): YMap {
  return { type: 'map', entries: new Map(), loc };
}

/** Builds a map node from plain key/value nodes (used for synthesized data). */
export function mapOf(loc: Loc, values: Iterable<[string, YNode]>): YMap {
  const entries = new Map<string, YEntry>();
  for (const [key, value] of values) entries.set(key, { keyLoc: value.loc, value });
  return { type: 'map', entries, loc };
}

export function scalar(value: string, loc: Loc): YScalar {
  return { type: 'scalar', value, loc };
}

/** Rejects any key of `map` not in `allowed`; `explain` may give a more specific reason for a key. */
export function checkKeys(map: YMap, allowed: readonly string[], explain?: (key: string) => string | undefined): void {
  for (const [key, entry] of map.entries) {
    if (allowed.includes(key)) continue;
    throw new ProjectError(entry.keyLoc, explain?.(key) ?? `unknown key '${key}'`);
  }
}

/** The value of an optional entry, treating an empty value (`key:`) as absent. */
export function optional(map: YMap, key: string): YNode | undefined {
  const value = map.entries.get(key)?.value;
  if (!value || (value.type === 'scalar' && value.value === null)) return undefined;
  return value;
}

export function expectString(node: YNode, what: string): string {
  if (node.type !== 'scalar') throw new ProjectError(node.loc, `${what} must be a string, found ${describeNode(node)}`);
  return node.value ?? '';
}

export function expectMap(node: YNode, what: string): YMap {
  if (node.type !== 'map') throw new ProjectError(node.loc, `${what} must be a mapping, found ${describeNode(node)}`);
  return node;
}

export function expectSeq(node: YNode, what: string): YSeq {
  if (node.type !== 'seq') throw new ProjectError(node.loc, `${what} must be a list, found ${describeNode(node)}`);
  return node;
}

/**
 * BuildStream 1.x booleans: exactly true/True/false/False; BuildStream 2
 * (`format2`) also reads 1 and 0.
 */
export function expectBool(node: YNode, what: string, format2 = false): boolean {
  const text = expectString(node, what).trim();
  if (text === 'true' || text === 'True' || (format2 && text === '1')) return true;
  if (text === 'false' || text === 'False' || (format2 && text === '0')) return false;
  throw new ProjectError(node.loc, `${what} must be true or false, found '${text}'`);
}

export function expectStringList(node: YNode, what: string): string[] {
  return expectSeq(node, what).items.map((item, index) => expectString(item, `${what}[${index}]`));
}

export function optionalString(map: YMap, key: string): string | undefined {
  const node = optional(map, key);
  return node === undefined ? undefined : expectString(node, `'${key}'`);
}

export function optionalMap(map: YMap, key: string): YMap | undefined {
  const node = optional(map, key);
  return node === undefined ? undefined : expectMap(node, `'${key}'`);
}

const UNSUPPORTED_DIRECTIVES = new Map([
  ['(@)', 'include'],
  ['(?)', 'conditional on project options'],
  ['(!)', 'assertion'],
]);

/** Throws if a map contains any of BuildStream's include/conditional/assertion directives. */
export function rejectUnsupportedDirectives(node: YNode): void {
  if (node.type === 'seq') {
    for (const item of node.items) rejectUnsupportedDirectives(item);
    return;
  }
  if (node.type !== 'map') return;
  for (const [key, entry] of node.entries) {
    const reason = UNSUPPORTED_DIRECTIVES.get(key);
    if (reason) throw new ProjectError(entry.keyLoc, `the '${key}' directive (${reason}) is not supported`);
    rejectUnsupportedDirectives(entry.value);
  }
}
