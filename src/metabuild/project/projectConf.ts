/**
 * Reading and checking project.conf.
 *
 * project.conf names the project, says where elements live, defines source
 * URL aliases, and provides the project-wide layers (variables, environment,
 * split rules, sandbox, per-kind overrides) that every element is composed
 * from. Only the subset documented in docs/project-format.md is accepted;
 * BuildStream features Granary does not implement (options, plugins,
 * includes, artifact servers, ...) are rejected by name rather than ignored,
 * so a project never builds differently than its author expects.
 */
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, posix } from 'node:path';
import { builtinProjectDefaults } from './builtinDefaults.js';
import { assertNoDirectives, composite } from './composite.js';
import { type Loc, ProjectError } from './errors.js';
import { isElementKind } from './kinds.js';
import type { OptionPool } from './options.js';
import type { PluginDeclarations } from './plugins.js';
import {
  checkKeys,
  describeNode,
  emptyMap,
  expectMap,
  expectString,
  expectStringList,
  optional,
  optionalMap,
  parseYaml,
  rejectUnsupportedDirectives,
  type YMap,
} from './yamlTree.js';

export const PROJECT_CONF = 'project.conf';

/** The newest BuildStream 1.x format version (BuildStream 1.6 reads up to 18). */
export const MAX_FORMAT_VERSION = 18;

/** Variables BuildStream sets itself; projects and elements may not define them. */
export const PROTECTED_VARIABLES = ['project-name', 'element-name', 'max-jobs'];

/** Layers an element is composed from, already including the builtin defaults. */
export interface ProjectLayers {
  readonly variables: YMap;
  readonly environment: YMap;
  readonly environmentNocache: readonly string[];
  /** Split-rule domains: every value is a list of (unexpanded) glob strings. */
  readonly splitRules: YMap;
  readonly sandbox: YMap;
  /** project.conf `elements:` section: overrides laid over a kind's defaults. */
  readonly elementOverrides: ReadonlyMap<string, YMap>;
  /** Variables exported by project options (BuildStream 2), laid over the automatic variables. */
  readonly optionVariables?: YMap;
  /** project.conf `sources:` section (BuildStream 2): per source kind, a `config` laid under each source's. */
  readonly sourceOverrides?: ReadonlyMap<string, YMap>;
}

export interface ProjectConfig {
  readonly name: string;
  /** Absolute path of the directory holding project.conf. */
  readonly directory: string;
  /** Directory of the element files, relative to `directory` ('.' by default). */
  readonly elementPath: string;
  readonly formatVersion: number;
  readonly refStorage: 'inline';
  /** Source URL aliases: `alias:rest` stands for `aliases[alias] + rest`. */
  readonly aliases: Readonly<Record<string, string>>;
  readonly layers: ProjectLayers;
  /** 1 for BuildStream 1 projects, 2 for BuildStream 2 projects (those with `min-version`). */
  readonly format: 1 | 2;
  /** What only BuildStream 2 projects have. */
  readonly format2?: Format2Settings;
}

/** A source mirror of a BuildStream 2 project: alternative URL prefixes of aliases, tried first. */
export interface SourceMirror {
  readonly name: string;
  readonly aliases: Readonly<Record<string, readonly string[]>>;
}

/** Settings of a BuildStream 2 project beyond those both formats share. */
export interface Format2Settings {
  readonly minVersion: string;
  readonly options: OptionPool;
  readonly plugins: PluginDeclarations;
  /** Mirrors in the order their URLs are tried (the default mirror first). */
  readonly mirrors: readonly SourceMirror[];
  readonly defaultTargets: readonly string[];
  readonly fatalWarnings: readonly string[];
  /** '' for the toplevel project, else the junction path leading to it ('base.bst', 'a.bst:b.bst'). */
  readonly junctionPath: string;
}

const SUPPORTED_KEYS = [
  'name',
  'format-version',
  'element-path',
  'ref-storage',
  'aliases',
  'variables',
  'environment',
  'environment-nocache',
  'split-rules',
  'sandbox',
  'elements',
];

const UNSUPPORTED_KEYS = new Map([
  ['options', 'project options are not supported'],
  ['plugins', 'plugins are not supported (only the builtin element kinds are)'],
  ['artifacts', 'BuildStream artifact servers are not supported'],
  ['sources', "per-source-kind overrides ('sources') are not supported"],
  ['mirrors', 'mirrors are not supported'],
  ['shell', "'bst shell' configuration is not supported"],
  ['fail-on-overlap', "'fail-on-overlap' is not supported"],
  ['fatal-warnings', "'fatal-warnings' is not supported"],
  ['defaults', "'defaults' is not supported"],
  ['junctions', 'junctions are not supported'],
]);

const OVERRIDE_KEYS = ['variables', 'environment', 'environment-nocache', 'config', 'public', 'sandbox'];
const SANDBOX_KEYS = ['build-uid', 'build-gid', 'build-os', 'build-arch'];

/** Reads `directory`/project.conf. */
export async function loadProjectConf(directory: string): Promise<ProjectConfig> {
  let text: string;
  try {
    text = await readFile(join(directory, PROJECT_CONF), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ProjectError(undefined, `${directory} is not a project: it has no ${PROJECT_CONF}`);
    }
    throw error;
  }
  const node = parseYaml(text, PROJECT_CONF);
  const config = parseProjectConf(node, directory);
  await checkElementPath(config, locOf(node, 'element-path'));
  return config;
}

/** Validates parsed project.conf (everything except that element-path exists on disk). */
export function parseProjectConf(node: YMap, directory: string): ProjectConfig {
  rejectUnsupportedDirectives(node);
  checkKeys(node, SUPPORTED_KEYS, (key) => {
    const reason = UNSUPPORTED_KEYS.get(key);
    return reason ? `'${key}': ${reason}` : `unknown key '${key}'`;
  });

  const nameNode = optional(node, 'name');
  if (!nameNode) throw new ProjectError(node.loc, "project.conf must set 'name'");
  const name = expectString(nameNode, "'name'").trim();
  if (!/^[a-zA-Z_-][a-zA-Z0-9_-]*$/.test(name)) {
    throw new ProjectError(
      nameNode.loc,
      `invalid project name '${name}': use letters, digits, '_' and '-', not starting with a digit`,
    );
  }

  let formatVersion = 0;
  const versionNode = optional(node, 'format-version');
  if (versionNode) {
    const text = expectString(versionNode, "'format-version'").trim();
    if (!/^\d+$/.test(text))
      throw new ProjectError(versionNode.loc, `'format-version' must be an integer, found '${text}'`);
    formatVersion = Number(text);
    if (formatVersion > MAX_FORMAT_VERSION) {
      throw new ProjectError(
        versionNode.loc,
        `project requires format version ${formatVersion}, but only BuildStream 1.x formats up to ${MAX_FORMAT_VERSION} are supported`,
      );
    }
  }

  const refNode = optional(node, 'ref-storage');
  if (refNode) {
    const refStorage = expectString(refNode, "'ref-storage'").trim();
    if (refStorage !== 'inline') {
      throw new ProjectError(refNode.loc, `'ref-storage: ${refStorage}' is not supported, only 'inline'`);
    }
  }

  const elementPath = normalizeElementPath(node);
  const aliases = parseAliases(optionalMap(node, 'aliases'));
  const defaults = builtinProjectDefaults();
  const layer = (key: string): YMap => {
    const base = defaults.entries.get(key)?.value;
    const own = optionalMap(node, key);
    return own ? composite(base as YMap, own) : (base as YMap);
  };

  const projectVariables = optionalMap(node, 'variables');
  if (projectVariables) checkVariableMap(projectVariables, 'variables');
  const variables = layer('variables');
  const ownEnvironment = optionalMap(node, 'environment');
  if (ownEnvironment) checkScalarMap(ownEnvironment, 'environment');
  const environment = layer('environment');

  const nocacheNode = optional(node, 'environment-nocache');
  const environmentNocache = nocacheNode ? expectStringList(nocacheNode, "'environment-nocache'") : [];

  const splitRules = layer('split-rules');
  assertNoDirectives(splitRules, 'split-rules');
  checkSplitRules(splitRules);

  const sandbox = layer('sandbox');
  checkKeys(sandbox, SANDBOX_KEYS, (key) => `unknown sandbox setting '${key}'`);

  return {
    format: 1,
    name,
    directory,
    elementPath,
    formatVersion,
    refStorage: 'inline',
    aliases,
    layers: {
      variables,
      environment,
      environmentNocache,
      splitRules,
      sandbox,
      elementOverrides: parseElementOverrides(optionalMap(node, 'elements')),
    },
  };
}

/** Expands a source URL alias (`alias:rest`) if `alias` is defined; other URLs are returned unchanged. */
export function translateAlias(aliases: Readonly<Record<string, string>>, url: string): string {
  const colon = url.indexOf(':');
  if (colon < 0) return url;
  const alias = url.slice(0, colon);
  return Object.hasOwn(aliases, alias) && aliases[alias] ? aliases[alias] + url.slice(colon + 1) : url;
}

function locOf(node: YMap, key: string): Loc {
  return node.entries.get(key)?.keyLoc ?? node.loc;
}

function normalizeElementPath(node: YMap): string {
  const pathNode = optional(node, 'element-path');
  if (!pathNode) return '.';
  const raw = expectString(pathNode, "'element-path'").trim();
  const normalized = posix.normalize(raw.replaceAll('\\', '/')).replace(/\/+$/, '') || '.';
  if (isAbsolute(raw) || normalized === '..' || normalized.startsWith('../')) {
    throw new ProjectError(pathNode.loc, `'element-path' must be a directory inside the project, found '${raw}'`);
  }
  return normalized;
}

async function checkElementPath(config: ProjectConfig, loc: Loc): Promise<void> {
  const where = join(config.directory, config.elementPath);
  const info = await stat(where).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new ProjectError(loc, `element-path '${config.elementPath}' is not a directory in the project`);
  }
}

/** Alias names and their URL prefixes. */
export function parseAliases(node: YMap | undefined): Record<string, string> {
  const aliases: Record<string, string> = {};
  if (!node) return aliases;
  for (const [alias, entry] of node.entries) {
    if (!/^[a-zA-Z0-9_.+-]+$/.test(alias)) throw new ProjectError(entry.keyLoc, `invalid alias name '${alias}'`);
    aliases[alias] = expectString(entry.value, `alias '${alias}'`).trim();
  }
  return aliases;
}

/** A mapping whose values must all be strings (environment). */
export function checkScalarMap(node: YMap, what: string): void {
  for (const [key, entry] of node.entries) {
    if (entry.value.type !== 'scalar') {
      throw new ProjectError(
        entry.keyLoc,
        `'${what}' entry '${key}' must be a string, found ${describeNode(entry.value)}`,
      );
    }
  }
}

/** Like checkScalarMap, also refusing the variables BuildStream sets itself. */
export function checkVariableMap(node: YMap, what: string): void {
  checkScalarMap(node, what);
  for (const [key, entry] of node.entries) {
    if (PROTECTED_VARIABLES.includes(key)) {
      throw new ProjectError(entry.keyLoc, `variable '${key}' is set automatically and cannot be redefined`);
    }
  }
}

/** Every split-rules domain must be a list of strings. */
export function checkSplitRules(rules: YMap): void {
  for (const [domain, entry] of rules.entries) {
    expectStringList(entry.value, `split-rules domain '${domain}'`);
  }
}

/**
 * project.conf's `elements:` overrides. BuildStream 1 projects may only name
 * supported kinds; BuildStream 2 projects (`anyKind`) may name any kind, as a
 * project may configure plugins it does not use.
 */
export function parseElementOverrides(node: YMap | undefined, anyKind = false): Map<string, YMap> {
  const overrides = new Map<string, YMap>();
  if (!node) return overrides;
  for (const [kind, entry] of node.entries) {
    if (!anyKind && !isElementKind(kind))
      throw new ProjectError(entry.keyLoc, `'elements' overrides unsupported element kind '${kind}'`);
    const override = entry.value.type === 'scalar' && entry.value.value === null ? emptyMap(entry.keyLoc) : entry.value;
    const map = expectMap(override, `'elements.${kind}'`);
    checkKeys(map, OVERRIDE_KEYS, (key) => `unknown key '${key}' in 'elements.${kind}'`);
    const variables = optionalMap(map, 'variables');
    if (variables) checkVariableMap(variables, `elements.${kind}.variables`);
    const environment = optionalMap(map, 'environment');
    if (environment) checkScalarMap(environment, `elements.${kind}.environment`);
    const nocache = optional(map, 'environment-nocache');
    if (nocache) expectStringList(nocache, `'elements.${kind}.environment-nocache'`);
    for (const key of ['config', 'public', 'sandbox']) optionalMap(map, key);
    overrides.set(kind, map);
  }
  return overrides;
}
