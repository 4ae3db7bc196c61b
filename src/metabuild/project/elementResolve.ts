/**
 * Turns a parsed element file into its effective settings.
 *
 * Layers are composed in BuildStream 1.x order, lowest first:
 *   variables:   builtin defaults < project.conf < automatic (project-name,
 *                max-jobs) < element-kind defaults < project.conf
 *                `elements.<kind>` < element file < element-name
 *   environment: builtin defaults < project.conf < kind defaults <
 *                `elements.<kind>` < element file
 *   config:      kind defaults < `elements.<kind>` < element file
 *   split rules: builtin < project.conf < `elements.<kind>` < element file
 * then every string that BuildStream expands (variables, environment values,
 * commands, import paths, split rules, integration commands, sandbox ids) is
 * expanded with the element's variables.
 */
import { assertNoDirectives, composite, compositeAll } from './composite.js';
import type { Dependency, ElementDeclaration, SourceSpec } from './elementFile.js';
import { ProjectError } from './errors.js';
import { type ElementConfig, type ElementKind, kindDefaults, resolveElementConfig } from './kinds.js';
import type { ProjectConfig } from './projectConf.js';
import { SANDBOX2_KEYS } from './projectConf2.js';
import { Variables } from './variables.js';
import {
  checkKeys,
  emptyMap,
  expectBool,
  expectMap,
  expectSeq,
  expectString,
  expectStringList,
  mapOf,
  optional,
  optionalMap,
  type Plain,
  scalar,
  toPlain,
  type YEntry,
  type YMap,
  type YNode,
} from './yamlTree.js';

export interface SandboxConfig {
  /** The build's user and group ids; BuildStream 2 leaves them unset unless the project sets them. */
  readonly buildUid: number | undefined;
  readonly buildGid: number | undefined;
  readonly buildOs: string | undefined;
  readonly buildArch: string | undefined;
}

/** A fully resolved element. */
export interface Element {
  /** Path relative to the project's element-path, e.g. 'libs/foo.bst'. */
  readonly name: string;
  readonly kind: ElementKind;
  readonly description: string;
  readonly dependencies: readonly Dependency[];
  /** Every variable, expanded. */
  readonly variables: Readonly<Record<string, string>>;
  /** The sandbox environment, expanded. */
  readonly environment: Readonly<Record<string, string>>;
  /** Environment variables that must not affect the cache key. */
  readonly environmentNocache: readonly string[];
  readonly config: ElementConfig;
  readonly sources: readonly SourceSpec[];
  /** Public data; `bst.split-rules` and `bst.integration-commands` are expanded. */
  readonly public: { readonly [domain: string]: Plain };
  /** `bst.split-rules` of `public`: domain -> expanded glob patterns. */
  readonly splitRules: Readonly<Record<string, readonly string[]>>;
  /** `bst.integration-commands` of `public`, expanded. */
  readonly integrationCommands: readonly string[];
  readonly sandbox: SandboxConfig;
  /** The element file, relative to the project directory, and the line where its content starts. */
  readonly file: string;
  readonly line: number;
  /** The project the element belongs to (a subproject's, for elements reached through a junction). */
  readonly project: ProjectConfig;
  /** The format of that project: BuildStream 1 or 2. */
  readonly format: 1 | 2;
}

export interface ResolveOptions {
  /** Value of %{max-jobs} (1 for elements that set `notparallel`). */
  readonly maxJobs: number;
}

export function resolveElement(project: ProjectConfig, element: ElementDeclaration, options: ResolveOptions): Element {
  const here = { file: element.file, line: element.line };
  const format = project.format ?? 1;
  const override = project.layers.elementOverrides.get(element.kind);
  const ownDefaults = kindDefaults(element.kind, format);
  const defaults = override ? composite(ownDefaults, override) : ownDefaults;
  const section = (map: YMap | undefined, key: string): YMap | undefined => (map ? optionalMap(map, key) : undefined);

  const variables = resolveVariables(project, element, section(defaults, 'variables'), options);

  const environmentNode = compositeAll(
    [section(defaults, 'environment'), element.environment],
    project.layers.environment,
  );
  assertNoDirectives(environmentNode, 'environment');
  const environment: Record<string, string> = {};
  for (const [key, entry] of environmentNode.entries) {
    environment[key] = variables.subst(expectString(entry.value, `environment '${key}'`), entry.keyLoc);
  }

  const defaultNocache = optional(defaults, 'environment-nocache');
  const environmentNocache = [
    ...new Set([
      ...project.layers.environmentNocache,
      ...(defaultNocache ? expectStringList(defaultNocache, "'environment-nocache'") : []),
      ...element.environmentNocache,
    ]),
  ];

  const configNode = compositeAll([element.config], section(defaults, 'config') ?? emptyMap(here));
  assertNoDirectives(configNode, 'config');
  const config = resolveElementConfig(element.kind, configNode, variables, format);

  const { data, splitRules, integrationCommands } = resolvePublic(
    project,
    element,
    section(defaults, 'public'),
    variables,
  );

  const sandboxNode = compositeAll([section(defaults, 'sandbox'), element.sandbox], project.layers.sandbox);
  assertNoDirectives(sandboxNode, 'sandbox');
  checkKeys(
    sandboxNode,
    format === 2 ? SANDBOX2_KEYS : ['build-uid', 'build-gid', 'build-os', 'build-arch'],
    (key) => `unknown sandbox setting '${key}'`,
  );
  const socket = sandboxNode.entries.get('remote-apis-socket');
  if (socket)
    throw new ProjectError(socket.keyLoc, "sandbox 'remote-apis-socket' (nested remote execution) is not supported");
  const sandboxString = (key: string): string | undefined => {
    const node = optional(sandboxNode, key);
    return node ? variables.subst(expectString(node, `sandbox '${key}'`), node.loc) : undefined;
  };
  const sandboxId = (key: string): number | undefined => {
    const text = sandboxString(key) ?? (format === 2 ? undefined : '0');
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text))
      throw new ProjectError(
        sandboxNode.entries.get(key)!.keyLoc,
        `sandbox '${key}' must be a non-negative integer, found '${text}'`,
      );
    return Number(text);
  };

  return {
    name: element.name,
    kind: element.kind,
    description: element.description,
    dependencies: element.dependencies,
    variables: variables.toRecord(),
    environment,
    environmentNocache,
    config,
    sources: format === 2 ? resolveSources2(project, element.sources, variables) : element.sources,
    public: data,
    splitRules,
    integrationCommands,
    sandbox: {
      buildUid: sandboxId('build-uid'),
      buildGid: sandboxId('build-gid'),
      buildOs: sandboxString('build-os'),
      buildArch: sandboxString('build-arch'),
    },
    file: element.file,
    line: element.line,
    project,
    format,
  };
}

/**
 * BuildStream 2 lays project.conf's `sources.KIND.config` under each source
 * of that kind and expands variables in every source's configuration.
 */
function resolveSources2(project: ProjectConfig, sources: readonly SourceSpec[], variables: Variables): SourceSpec[] {
  return sources.map((source) => {
    const override = project.layers.sourceOverrides?.get(source.kind);
    let node = override ? composite(override, source.node) : source.node;
    assertNoDirectives(node, 'sources');
    node = expandNode(node, variables) as YMap;
    const config: { [key: string]: Plain } = {};
    for (const [key, entry] of node.entries) {
      if (key !== 'kind' && key !== 'directory') config[key] = toPlain(entry.value);
    }
    const directory = optional(node, 'directory');
    return {
      ...source,
      node,
      config,
      directory: directory ? expectString(directory, "source 'directory'").trim() : undefined,
    };
  });
}

/** Every scalar of `node` with its variables expanded (BuildStream 2 expands whole configurations). */
export function expandNode(node: YNode, variables: Variables): YNode {
  if (node.type === 'scalar')
    return node.value === null ? node : scalar(variables.subst(node.value, node.loc), node.loc);
  if (node.type === 'seq') return { ...node, items: node.items.map((item) => expandNode(item, variables)) };
  const entries = new Map<string, YEntry>();
  for (const [key, entry] of node.entries) entries.set(key, { ...entry, value: expandNode(entry.value, variables) });
  return { ...node, entries };
}

function resolveVariables(
  project: ProjectConfig,
  element: ElementDeclaration,
  kindVariables: YMap | undefined,
  options: ResolveOptions,
): Variables {
  const projectLoc = { file: 'project.conf', line: 1 };
  const automatic = mapOf(projectLoc, [
    ['project-name', scalar(project.name, projectLoc)],
    ['max-jobs', scalar(String(options.maxJobs), projectLoc)],
  ]);
  const elementLoc = { file: element.file, line: element.line };
  const elementName = mapOf(elementLoc, [['element-name', scalar(element.name, elementLoc)]]);
  let node = compositeAll(
    [automatic, project.layers.optionVariables, kindVariables, element.variables, elementName],
    project.layers.variables,
  );
  assertNoDirectives(node, 'variables');
  const notparallel = optional(node, 'notparallel');
  if (notparallel && expectBool(notparallel, "variable 'notparallel'")) {
    node = composite(node, mapOf(notparallel.loc, [['max-jobs', scalar('1', notparallel.loc)]]));
  }
  return new Variables(node);
}

/**
 * BuildStream 1.x keeps the element's own public data and only merges the
 * `bst.split-rules` of the defaults (project split rules plus per-kind
 * overrides) beneath the element's.
 */
function resolvePublic(
  project: ProjectConfig,
  element: ElementDeclaration,
  kindPublic: YMap | undefined,
  variables: Variables,
): { data: { [domain: string]: Plain }; splitRules: Record<string, string[]>; integrationCommands: string[] } {
  const here = { file: element.file, line: element.line };
  const splitsOf = (publicNode: YMap | undefined): YMap | undefined => {
    const bst = publicNode ? optionalMap(publicNode, 'bst') : undefined;
    return bst ? optionalMap(bst, 'split-rules') : undefined;
  };
  const splitsNode = compositeAll([splitsOf(kindPublic), splitsOf(element.public)], project.layers.splitRules);
  assertNoDirectives(splitsNode, 'public.bst.split-rules');
  const splitRules: Record<string, string[]> = {};
  for (const [domain, entry] of splitsNode.entries) {
    splitRules[domain] = expectSeq(entry.value, `split-rules domain '${domain}'`).items.map((rule, index) =>
      variables.subst(expectString(rule, `split-rules domain '${domain}'[${index}]`), rule.loc),
    );
  }

  // Everything except the split rules is taken as the element wrote it.
  const publicNode = element.public ?? emptyMap(here);
  const bstNode = optional(publicNode, 'bst');
  const bstWithSplits = bstNode ? expectMap(bstNode, "'public.bst'") : emptyMap(here);
  const bst: YMap = {
    ...bstWithSplits,
    entries: new Map([...bstWithSplits.entries].filter(([key]) => key !== 'split-rules')),
  };
  const data: { [domain: string]: Plain } = {};
  for (const [domain, entry] of publicNode.entries) {
    const value = domain === 'bst' ? bst : entry.value;
    assertNoDirectives(value, `public.${domain}`);
    // BuildStream 2 expands variables in all public data, BuildStream 1 only in what it uses.
    data[domain] = toPlain(project.format === 2 ? expandNode(value, variables) : value);
  }

  const integrationNode = optional(bst, 'integration-commands');
  const integrationCommands = integrationNode
    ? expectSeq(integrationNode, "'integration-commands'").items.map((command, index) =>
        variables.subst(expectString(command, `'integration-commands'[${index}]`), command.loc),
      )
    : [];
  const bstData: { [key: string]: Plain } = {
    ...(toPlain(project.format === 2 ? expandNode(bst, variables) : bst) as { [key: string]: Plain }),
    'split-rules': splitRules,
  };
  if (integrationNode) bstData['integration-commands'] = integrationCommands;
  data.bst = bstData;
  return { data, splitRules, integrationCommands };
}
