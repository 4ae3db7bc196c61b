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
import { ProjectError } from './errors.js';
import { ELEMENT_KINDS, type ElementKind, isElementKind } from './kinds.js';
import { checkScalarMap, checkVariableMap } from './projectConf.js';
import {
  checkKeys,
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
  /** Element name, relative to the project's element-path (e.g. 'libs/foo.bst'). */
  readonly name: string;
  readonly type: DependencyType;
  /** Where the dependency was declared. */
  readonly file: string;
  readonly line: number;
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
}

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

  const variables = optionalMap(node, 'variables');
  if (variables) checkVariableMap(variables, 'variables');
  const environment = optionalMap(node, 'environment');
  if (environment) checkScalarMap(environment, 'environment');
  const nocache = optional(node, 'environment-nocache');
  const sandbox = optionalMap(node, 'sandbox');
  if (sandbox)
    checkKeys(
      sandbox,
      ['build-uid', 'build-gid', 'build-os', 'build-arch'],
      (key) => `unknown sandbox setting '${key}'`,
    );

  return {
    name,
    file,
    line: node.loc.line,
    kind,
    description: optionalDescription(node),
    dependencies: parseDependencies(node),
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
  return expectSeq(list, "'sources'").items.map((item, index) => {
    const source = expectMap(item, `sources[${index}]`);
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
      file: source.loc.file,
      line: source.loc.line,
    };
  });
}
