/**
 * The one place that parses YAML from outside the process (project and element
 * files, the access file, configuration files) into a `yaml` Document, with the
 * limits that keep a hostile file from exhausting the process:
 *
 * - nesting depth, checked on the parser's token tree before composing (the
 *   composer recurses per level, and V8 aborts the whole process when a regular
 *   expression is compiled with the stack nearly exhausted);
 * - the number of nodes aliases add when expanded, so a "billion laughs" file
 *   (each level aliasing the one before ten times) is refused, not expanded;
 * - aliases must name an anchor before them and must not refer to a node that
 *   contains them (that would expand forever).
 *
 * Every problem, syntax errors included, is thrown as a YamlInputError with the
 * 1-based line, so each caller words it in its own terms.
 */
import {
  type Alias,
  type CST,
  type Document,
  isAlias,
  isCollection,
  isPair,
  LineCounter,
  type Node,
  Parser,
  parseDocument,
  type SchemaOptions,
} from 'yaml';

/** Deepest nesting of collections accepted; real files nest a dozen levels at most. */
export const MAX_YAML_DEPTH = 100;

/** Most nodes that expanding aliases may add to a file. */
export const MAX_YAML_ALIAS_EXPANSION = 100_000;

/** A file refused: what is wrong, and the 1-based line where. */
export class YamlInputError extends Error {
  constructor(
    readonly line: number,
    readonly detail: string,
  ) {
    super(`line ${line}: ${detail}`);
    this.name = 'YamlInputError';
  }
}

export interface YamlInputOptions {
  /** 'failsafe' reads every scalar as a string; the default is YAML 1.2's core schema. */
  readonly schema?: SchemaOptions['schema'];
}

/** A parsed document, the line of any offset in it, and where each alias points. */
export interface YamlInput {
  readonly document: Document;
  lineOf(node: Node | null | undefined): number;
  /** The node each alias stands for (every alias has one; it never contains the alias). */
  readonly aliasTargets: ReadonlyMap<Alias, Node>;
}

/** Parses one YAML document within the limits above; throws YamlInputError. */
export function parseYamlInput(text: string, options: YamlInputOptions = {}): YamlInput {
  const lineCounter = new LineCounter();
  const lineAt = (offset: number): number => (offset >= 0 ? lineCounter.linePos(offset).line : 1);
  checkDepth(text);
  const document = parseDocument(text, {
    schema: options.schema ?? 'core',
    lineCounter,
    uniqueKeys: true,
    prettyErrors: false,
  }) as Document;
  const [problem] = document.errors;
  if (problem) {
    const detail = (problem.message.split('\n')[0] as string).replace(/ at line \d+, column \d+:?$/, '');
    throw new YamlInputError(lineAt(problem.pos[0]), detail);
  }
  const lineOf = (node: Node | null | undefined): number => lineAt(node?.range?.[0] ?? -1);
  return { document, lineOf, aliasTargets: resolveAliases(document, lineOf) };
}

/** The value of a YAML file as plain JavaScript data, within the same limits. */
export function readYamlValue(text: string): unknown {
  // Expansion is already bounded; the library's own alias count would refuse legitimate reuse.
  return parseYamlInput(text).document.toJS({ maxAliasCount: -1 });
}

/** Refuses nesting deeper than MAX_YAML_DEPTH, walking the token tree without recursion. */
function checkDepth(text: string): void {
  const lineCounter = new LineCounter();
  const pending: { token: CST.Token; depth: number }[] = [];
  // depth: how many collections enclose the token, itself included.
  for (const token of new Parser(lineCounter.addNewLine).parse(text)) pending.push({ token, depth: 0 });
  for (let next = pending.pop(); next; next = pending.pop()) {
    const { token, depth } = next;
    if (token.type === 'document') {
      if (token.value) pending.push({ token: token.value, depth: 1 });
    } else if (token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection') {
      if (depth > MAX_YAML_DEPTH) {
        throw new YamlInputError(
          lineCounter.linePos(token.offset).line,
          `YAML nesting is deeper than ${MAX_YAML_DEPTH} levels`,
        );
      }
      for (const item of token.items) {
        const key = 'key' in item ? item.key : undefined;
        if (key) pending.push({ token: key, depth: depth + 1 });
        if (item.value) pending.push({ token: item.value, depth: depth + 1 });
      }
    }
  }
}

/**
 * Finds each alias's anchor (the last one of its name before it) and counts the
 * nodes the expanded document would hold, in one post-order walk in document
 * order: an anchored node that does not contain the alias has been fully
 * counted by the time the alias is reached.
 */
function resolveAliases(document: Document, lineOf: (node: Node | null | undefined) => number): Map<Alias, Node> {
  const targets = new Map<Alias, Node>();
  const anchors = new Map<string, Node>();
  const expandedSize = new Map<Node, number>();
  const open = new Set<Node>();
  let literalNodes = 0;
  let largest: { alias: Alias; size: number } | undefined;
  const root = document.contents as Node | null;
  if (!root) return targets;
  const unanchored = (alias: Alias) =>
    new YamlInputError(lineOf(alias), `alias *${alias.source} has no anchor &${alias.source} before it`);
  // A document that is only an alias has nothing before it to refer to.
  if (isAlias(root)) throw unanchored(root);
  const frames: { node: Node; children: Node[]; next: number; size: number }[] = [];
  const enter = (node: Node): void => {
    literalNodes += 1;
    const anchor = (node as { anchor?: string }).anchor;
    if (anchor) anchors.set(anchor, node);
    open.add(node);
    frames.push({ node, children: childrenOf(node), next: 0, size: 1 });
  };
  enter(root);
  while (frames.length > 0) {
    const frame = frames[frames.length - 1] as (typeof frames)[number];
    const child = frame.children[frame.next++];
    if (child !== undefined) {
      if (!isAlias(child)) {
        enter(child);
        continue;
      }
      literalNodes += 1;
      const target = anchors.get(child.source);
      if (!target) throw unanchored(child);
      if (open.has(target)) {
        throw new YamlInputError(lineOf(child), `alias *${child.source} refers to a node that contains it`);
      }
      targets.set(child, target);
      const size = expandedSize.get(target) ?? 1;
      if (!largest || size > largest.size) largest = { alias: child, size };
      frame.size += size;
      continue;
    }
    frames.pop();
    open.delete(frame.node);
    expandedSize.set(frame.node, frame.size);
    const parent = frames[frames.length - 1];
    if (parent) parent.size += frame.size;
    else if (largest && frame.size - literalNodes > MAX_YAML_ALIAS_EXPANSION) {
      throw new YamlInputError(
        lineOf(largest.alias),
        `aliases expand this file by more than ${MAX_YAML_ALIAS_EXPANSION} nodes (an alias bomb?)`,
      );
    }
  }
  return targets;
}

/** The nodes directly inside a collection: keys and values of a mapping, items of a sequence. */
function childrenOf(node: Node): Node[] {
  if (!isCollection(node)) return [];
  const children: Node[] = [];
  for (const item of node.items as unknown[]) {
    if (isPair(item)) {
      if (item.key && typeof item.key === 'object') children.push(item.key as Node);
      if (item.value && typeof item.value === 'object') children.push(item.value as Node);
    } else if (item && typeof item === 'object') {
      children.push(item as Node);
    }
  }
  return children;
}
