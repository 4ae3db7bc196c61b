/**
 * Reading and checking one element file (`*.bst`).
 *
 * This is the syntactic half of element loading: it checks the top-level
 * keys, the element kind and the dependency declarations, and keeps the
 * layers (variables, environment, config, public, sandbox) as located YAML
 * for composition in elementResolve.ts. Sources are validated only as far as
 * having a `kind`; the source layer checks the rest, so they are kept as
 * plain data together with their node and location.
 */
import { posix } from 'node:path';
import { type Loc, ProjectError } from './errors.js';
import { ELEMENT_KINDS, type ElementKind, isElementKind } from './kinds.js';
import { checkScalarMap, checkVariableMap } from './projectConf.js';
import { SANDBOX2_KEYS } from './projectConf2.js';
import {
  checkKeys,
  expectBool,
  expectMap,
  expectSeq,
  expectString,
  expectStringList,
  optional,
  optionalMap,
  type Plain,
  parseYaml,
  rejectUnsupportedDirectives,
  toPlain,
  type YMap,
  type YNode,
} from './yamlTree.js';

/** 'build': needed to build this element; 'runtime': needed wherever this element is used; 'all': both. */
export type DependencyType = 'build' | 'runtime' | 'all';

export interface Dependency {
  /**
   * Element name, relative to the project's element-path (e.g. 'libs/foo.bst');
   * for an element of a subproject, prefixed by the junction path ('base.bst:gcc.bst').
   */
  readonly name: string;
  readonly type: DependencyType;
  /** Where the dependency was declared. */
  readonly file: string;
  readonly line: number;
  /** BuildStream 2: rebuild this element whenever the dependency changes (`strict: true`). */
  readonly strict?: boolean;
  /** BuildStream 2: the dependency's `config` mappings (e.g. `location:` for build elements), in order. */
  readonly config?: readonly { readonly [key: string]: Plain }[];
}

/** A dependency as a BuildStream 2 element file writes it, before its name is resolved across junctions. */
export interface DependencyRef {
  /** The junction named by `junction:` or by the `JUNCTION:` prefix of the filename. */
  readonly junction: string | undefined;
  readonly filename: string;
  readonly type: DependencyType;
  readonly strict: boolean;
  readonly config: { readonly [key: string]: Plain } | undefined;
  readonly loc: Loc;
}

/** One entry of an element's `sources` list, uninterpreted. */
export interface SourceSpec {
  readonly kind: string;
  /** Optional subdirectory of the build root to stage the source in. */
  readonly directory: string | undefined;
  /** Every key other than `kind` and `directory`, as plain data. */
  readonly config: { readonly [key: string]: Plain };
  /** The whole entry with locations, for the source layer's own error messages. */
  readonly node: YMap;
  /** Position in the `sources` list. */
  readonly index: number;
  readonly file: string;
  readonly line: number;
}

export interface ElementDeclaration {
  readonly name: string;
  readonly file: string;
  readonly line: number;
  readonly kind: ElementKind;
  readonly description: string;
  readonly dependencies: readonly Dependency[];
  readonly variables: YMap | undefined;
  readonly environment: YMap | undefined;
  readonly environmentNocache: readonly string[];
  readonly config: YMap | undefined;
  readonly public: YMap | undefined;
  readonly sandbox: YMap | undefined;
  readonly sources: readonly SourceSpec[];
  /** BuildStream 2: dependencies as written; the loader resolves them into `dependencies`. */
  readonly dependencyRefs?: readonly DependencyRef[];
}

const SANDBOX_KEYS = ['build-uid', 'build-gid', 'build-os', 'build-arch'];

const ELEMENT_KEYS = [
  'kind',
  'description',
  'depends',
  'build-depends',
  'runtime-depends',
  'variables',
  'environment',
  'environment-nocache',
  'config',
  'sources',
  'public',
  'sandbox',
];

/**
 * Parses the element `name` (relative to element-path) from `text`; `file` is
 * its path relative to the project directory, used in error messages.
 */
export function parseElement(text: string, name: string, file: string): ElementDeclaration {
  const node = parseYaml(text, file);
  rejectUnsupportedDirectives(node);
  checkKeys(node, ELEMENT_KEYS);

  const kindNode = optional(node, 'kind');
  if (!kindNode) throw new ProjectError(node.loc, "element has no 'kind'");
  const kind = expectString(kindNode, "'kind'").trim();
  if (!isElementKind(kind)) {
    throw new ProjectError(kindNode.loc, `unknown element kind '${kind}' (supported: ${ELEMENT_KINDS.join(', ')})`);
  }
  const sandbox = optionalMap(node, 'sandbox');
  if (sandbox) checkKeys(sandbox, SANDBOX_KEYS, (key) => `unknown sandbox setting '${key}'`);
  return { ...parseLayers(node, name, file, kind), dependencies: parseDependencies(node) };
}

/**
 * Reads an element of a BuildStream 2 project whose includes and
 * conditionals were already applied and whose kind the loader checked.
 * Dependencies are left as written (`dependencyRefs`): only the loader can
 * resolve names across junctions and links.
 */
export function parseElement2(node: YMap, name: string, file: string, kind: ElementKind): ElementDeclaration {
  checkKeys(node, ELEMENT_KEYS);
  const sandbox = optionalMap(node, 'sandbox');
  if (sandbox) checkKeys(sandbox, SANDBOX2_KEYS, (key) => `unknown sandbox setting '${key}'`);
  return { ...parseLayers(node, name, file, kind), dependencies: [], dependencyRefs: parseDependencyRefs(node) };
}

/** An element's kind as written, checked only to be a string. */
export function elementKindOf(node: YMap): string {
  const kindNode = optional(node, 'kind');
  if (!kindNode) throw new ProjectError(node.loc, "element has no 'kind'");
  return expectString(kindNode, "'kind'").trim();
}

function parseLayers(
  node: YMap,
  name: string,
  file: string,
  kind: ElementKind,
): Omit<ElementDeclaration, 'dependencies'> {
  const variables = optionalMap(node, 'variables');
  if (variables) checkVariableMap(variables, 'variables');
  const environment = optionalMap(node, 'environment');
  if (environment) checkScalarMap(environment, 'environment');
  const nocache = optional(node, 'environment-nocache');
  const sandbox = optionalMap(node, 'sandbox');

  return {
    name,
    file,
    line: node.loc.line,
    kind,
    description: optionalDescription(node),
    variables,
    environment,
    environmentNocache: nocache ? expectStringList(nocache, "'environment-nocache'") : [],
    config: optionalMap(node, 'config'),
    public: optionalMap(node, 'public'),
    sandbox,
    sources: parseSources(node),
  };
}

function optionalDescription(node: YMap): string {
  const description = optional(node, 'description');
  return description ? expectString(description, "'description'").trim() : '';
}

const DEPENDENCY_LISTS: readonly [string, DependencyType | undefined][] = [
  ['depends', undefined],
  ['build-depends', 'build'],
  ['runtime-depends', 'runtime'],
];

/**
 * Collects dependencies in the order they are written. An element listed
 * more than once is kept once, at its first mention, with the types merged.
 */
function parseDependencies(node: YMap): Dependency[] {
  const found = new Map<string, Dependency>();
  for (const [key, fixedType] of DEPENDENCY_LISTS) {
    const list = optional(node, key);
    if (!list) continue;
    for (const item of expectSeq(list, `'${key}'`).items) {
      const dependency = parseDependency(item, key, fixedType);
      const previous = found.get(dependency.name);
      found.set(
        dependency.name,
        previous ? { ...previous, type: mergeTypes(previous.type, dependency.type) } : dependency,
      );
    }
  }
  return [...found.values()];
}

function mergeTypes(a: DependencyType, b: DependencyType): DependencyType {
  return a === b ? a : 'all';
}

function parseDependency(item: YNode, list: string, fixedType: DependencyType | undefined): Dependency {
  let filename: YNode = item;
  let type: DependencyType = fixedType ?? 'all';
  if (item.type === 'map') {
    const allowed = fixedType ? ['filename'] : ['filename', 'type'];
    checkKeys(item, allowed, (key) => {
      if (key === 'junction') return 'junctions are not supported';
      if (key === 'strict') return "'strict' dependencies are not supported";
      if (key === 'type') return `'type' cannot be set in '${list}'`;
      return `unknown key '${key}' in a dependency`;
    });
    const name = optional(item, 'filename');
    if (!name) throw new ProjectError(item.loc, "dependency has no 'filename'");
    filename = name;
    const typeNode = optional(item, 'type');
    if (typeNode) {
      const text = expectString(typeNode, "dependency 'type'").trim();
      if (text !== 'build' && text !== 'runtime' && text !== 'all') {
        throw new ProjectError(typeNode.loc, `dependency type '${text}' is not 'build', 'runtime' or 'all'`);
      }
      type = text;
    }
  } else if (item.type !== 'scalar') {
    throw new ProjectError(item.loc, 'a dependency must be a filename or a mapping with a filename');
  }
  const raw = expectString(filename, 'dependency filename').trim();
  return { name: normalizeElementName(raw, filename), type, file: filename.loc.file, line: filename.loc.line };
}

/** Canonical form of an element name as written in a dependency; rejects names outside element-path. */
function normalizeElementName(raw: string, at: YNode): string {
  if (raw.includes(':')) throw new ProjectError(at.loc, `dependency '${raw}': junctions are not supported`);
  const name = posix.normalize(raw);
  if (raw === '' || posix.isAbsolute(raw) || name === '..' || name.startsWith('../') || name.endsWith('/')) {
    throw new ProjectError(at.loc, `invalid dependency filename '${raw}': must be a file inside element-path`);
  }
  return name;
}

function parseSources(node: YMap): SourceSpec[] {
  const list = optional(node, 'sources');
  if (!list) return [];
  return expectSeq(list, "'sources'").items.map((item, index) =>
    sourceSpecOf(expectMap(item, `sources[${index}]`), index, item.loc.file),
  );
}

/** One entry of an element's `sources` list, as both formats read it (`kind`, `directory`, the rest its config). */
export function sourceSpecOf(source: YMap, index: number, file: string): SourceSpec {
  const kindNode = optional(source, 'kind');
  if (!kindNode) throw new ProjectError(source.loc, `sources[${index}] has no 'kind'`);
  const directoryNode = optional(source, 'directory');
  const config: { [key: string]: Plain } = {};
  for (const [key, entry] of source.entries) {
    if (key !== 'kind' && key !== 'directory') config[key] = toPlain(entry.value);
  }
  return {
    kind: expectString(kindNode, "source 'kind'").trim(),
    directory: directoryNode ? expectString(directoryNode, "source 'directory'").trim() : undefined,
    config,
    node: source,
    index,
    file,
    line: source.loc.line,
  };
}

/**
 * BuildStream 2 dependency lists: build-depends, then runtime-depends, then
 * depends; an entry is a name (`JUNCTION:NAME` allowed) or a mapping with
 * `filename` (a name or a list of names), `junction`, `type` (depends only),
 * `strict` and `config`.
 */
function parseDependencyRefs(node: YMap): DependencyRef[] {
  const refs: DependencyRef[] = [];
  for (const [key, fixedType] of [
    ['build-depends', 'build'],
    ['runtime-depends', 'runtime'],
    ['depends', undefined],
  ] as const) {
    const list = optional(node, key);
    if (!list) continue;
    for (const item of expectSeq(list, `'${key}'`).items) refs.push(...parseDependencyRef(item, key, fixedType));
  }
  return refs;
}

function parseDependencyRef(item: YNode, list: string, fixedType: DependencyType | undefined): DependencyRef[] {
  const split = (text: string, junction: string | undefined, at: YNode) => {
    const trimmed = text.trim();
    if (junction !== undefined) {
      if (trimmed.includes(':')) {
        throw new ProjectError(at.loc, `dependency '${trimmed}' contains ':' although 'junction' is given`);
      }
      return { junction, filename: trimmed };
    }
    const colon = trimmed.lastIndexOf(':');
    return colon < 0
      ? { junction: undefined, filename: trimmed }
      : { junction: trimmed.slice(0, colon), filename: trimmed.slice(colon + 1) };
  };
  if (item.type === 'scalar') {
    return [
      {
        ...split(item.value ?? '', undefined, item),
        type: fixedType ?? 'all',
        strict: false,
        config: undefined,
        loc: item.loc,
      },
    ];
  }
  if (item.type !== 'map') {
    throw new ProjectError(item.loc, 'a dependency must be a filename or a mapping with a filename');
  }
  const allowed = fixedType
    ? ['filename', 'junction', 'strict', 'config']
    : ['filename', 'type', 'junction', 'strict', 'config'];
  checkKeys(item, allowed, (key) =>
    key === 'type' ? `'type' cannot be set in '${list}'` : `unknown key '${key}' in a dependency`,
  );
  let type: DependencyType = fixedType ?? 'all';
  const typeNode = optional(item, 'type');
  if (typeNode) {
    const text = expectString(typeNode, "dependency 'type'").trim();
    if (text !== 'build' && text !== 'runtime' && text !== 'all') {
      throw new ProjectError(typeNode.loc, `dependency type '${text}' is not 'build', 'runtime' or 'all'`);
    }
    type = text;
  }
  const strictNode = optional(item, 'strict');
  const strict = strictNode ? expectBool(strictNode, "dependency 'strict'", true) : false;
  if (strictNode && !strict) throw new ProjectError(strictNode.loc, "setting 'strict' to false is not supported");
  if (strict && type === 'runtime') {
    throw new ProjectError(strictNode!.loc, 'only dependencies needed at build time may be strict');
  }
  const configNode = optional(item, 'config');
  let config: { [key: string]: Plain } | undefined;
  if (configNode) {
    if (type === 'runtime') throw new ProjectError(configNode.loc, "a runtime dependency cannot have a 'config'");
    config = toPlain(expectMap(configNode, "dependency 'config'")) as { [key: string]: Plain };
  }
  const junctionNode = optional(item, 'junction');
  const junction = junctionNode ? expectString(junctionNode, "dependency 'junction'").trim() : undefined;
  const filenameNode = optional(item, 'filename');
  if (!filenameNode) throw new ProjectError(item.loc, "dependency has no 'filename'");
  const names = filenameNode.type === 'seq' ? filenameNode.items : [filenameNode];
  return names.map((name) => {
    if (name.type !== 'scalar') throw new ProjectError(name.loc, 'a dependency filename must be a string');
    return { ...split(name.value ?? '', junction, name), type, strict, config, loc: name.loc };
  });
}
