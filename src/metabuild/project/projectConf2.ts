/**
 * Reading project.conf of BuildStream 2 projects (those that set
 * `min-version`).
 *
 * As BuildStream 2.8 does it, in two passes over project.conf laid over
 * BuildStream 2's defaults. The first pass, with only the project's own
 * includes, gives what junctions need before any subproject can be loaded:
 * the plugin declarations, the project options and the aliases. The second
 * pass also resolves includes from subprojects, applies the `(?)`
 * conditionals on the option values, and yields every layer elements are
 * composed from. Keys BuildStream 2 accepts but Granary has no use for
 * (artifact and source cache servers, `bst shell` settings, source
 * provenance attributes) are checked and otherwise ignored; keys Granary
 * cannot honour are errors.
 */
import { lstat, stat } from 'node:fs/promises';
import { isAbsolute, join, posix, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { assertNoDirectives, composite } from './composite.js';
import { format2ProjectDefaults } from './defaults2.js';
import { type Loc, ProjectError } from './errors.js';
import { type IncludeScope, processIncludes } from './includes.js';
import { OptionPool } from './options.js';
import { type PluginDeclarations, parsePlugins } from './plugins.js';
import {
  checkScalarMap,
  checkSplitRules,
  checkVariableMap,
  type ProjectConfig,
  parseAliases,
  parseElementOverrides,
  type SourceMirror,
} from './projectConf.js';
import { Variables } from './variables.js';
import {
  checkKeys,
  describeNode,
  emptyMap,
  expectBool,
  expectMap,
  expectSeq,
  expectString,
  expectStringList,
  mapOf,
  optional,
  optionalMap,
  scalar,
  type YMap,
} from './yamlTree.js';

/** The newest BuildStream 2 minor version whose format Granary reads (2.8). */
export const MAX_FORMAT2_MINOR = 8;

const TOP_LEVEL_KEYS = [
  'min-version',
  'element-path',
  'variables',
  'environment',
  'environment-nocache',
  'split-rules',
  'elements',
  'plugins',
  'aliases',
  'name',
  'defaults',
  'artifacts',
  'options',
  'fail-on-overlap',
  'shell',
  'fatal-warnings',
  'ref-storage',
  'sandbox',
  'mirrors',
  'sources',
  'source-caches',
  'junctions',
  'source-provenance-attributes',
  '(@)',
  '(?)',
];

/** Keys a conditional may not set, since they are needed before conditionals are evaluated. */
const RESTRICTED_KEYS = [
  'min-version',
  'name',
  'element-path',
  'junctions',
  'defaults',
  'fatal-warnings',
  'ref-storage',
  'options',
  'plugins',
];

/** Sandbox settings of BuildStream 2 (remote-apis-socket is refused when used). */
export const SANDBOX2_KEYS = ['build-uid', 'build-gid', 'build-os', 'build-arch', 'remote-apis-socket'];

/** Where a project sits and how it was reached. */
export interface ProjectConf2Context {
  /** Absolute project directory. */
  readonly directory: string;
  /** The toplevel project's directory (for %{toplevel-root}). */
  readonly toplevelDirectory: string;
  /** '' for the toplevel project, else the junction path ('base.bst', 'a.bst:b.bst'). */
  readonly junctionPath: string;
  /** The junction's `options:` (values for this project's options), for subprojects. */
  readonly junctionOptions?: YMap;
  /** `--option NAME VALUE` from the command line (toplevel project only). */
  readonly cliOptions?: readonly (readonly [string, string])[];
  readonly maxJobs: number;
}

/** What the first pass yields: enough to load junctions and links. */
export interface FirstPass {
  readonly name: string;
  readonly minVersion: string;
  /** Element directory relative to the project directory. */
  readonly elementPath: string;
  readonly plugins: PluginDeclarations;
  readonly options: OptionPool;
  /** Base variables (for expanding junction configuration). */
  readonly variables: YMap;
  readonly aliases: Record<string, string>;
  readonly defaultTargets: string[];
  readonly fatalWarnings: string[];
  /** `junctions: duplicates`: project name to the junctions (of this project) allowed to load it again. */
  readonly duplicates: ReadonlyMap<string, readonly string[]>;
  /** `junctions: internal`: junctions whose projects never conflict with another instance. */
  readonly internal: readonly string[];
}

/** The name errors use for a file of a project reached through `junctionPath`. */
export function projectFileName(junctionPath: string, file: string): string {
  return junctionPath ? `${junctionPath}:${file}` : file;
}

/** Checks `min-version`: BuildStream 2, at most 2.8. */
export function checkMinVersion(node: YMap): string {
  const versionNode = optional(node, 'min-version');
  if (!versionNode) throw new ProjectError(node.loc, "project.conf must set 'min-version'");
  const text = expectString(versionNode, "'min-version'").trim();
  const match = /^(\d+)\.(\d+)/.exec(text);
  if (!match) {
    throw new ProjectError(versionNode.loc, `'min-version' must be MAJOR.MINOR, found '${text}'`);
  }
  if (Number(match[1]) !== 2) {
    throw new ProjectError(
      versionNode.loc,
      `project requires BuildStream ${match[1]}, but Granary reads the formats of BuildStream 1 (format-version) and 2 (min-version 2.x)`,
    );
  }
  if (Number(match[2]) > MAX_FORMAT2_MINOR) {
    throw new ProjectError(
      versionNode.loc,
      `project requires BuildStream ${text}, but Granary reads BuildStream 2 projects up to 2.${MAX_FORMAT2_MINOR}`,
    );
  }
  return text;
}

/** The first pass: defaults, min-version, name, element-path, local includes, plugins and options. */
export async function readFirstPass(
  node: YMap,
  context: ProjectConf2Context,
  scope: (options: OptionPool | undefined) => IncludeScope,
  elementNames: () => readonly string[],
): Promise<FirstPass> {
  const defaults = format2ProjectDefaults();
  const minVersion = checkMinVersion(node);
  const pre = composite(defaults, node);
  checkKeys(pre, TOP_LEVEL_KEYS, (key) => `unknown key '${key}' in project.conf`);

  const nameNode = optional(node, 'name');
  if (!nameNode) throw new ProjectError(node.loc, "project.conf must set 'name'");
  const name = expectString(nameNode, "'name'").trim();
  if (!/^[a-zA-Z_-][a-zA-Z0-9_-]*$/.test(name)) {
    throw new ProjectError(
      nameNode.loc,
      `invalid project name '${name}': use letters, digits, '_' and '-', not starting with a digit`,
    );
  }
  const elementPath = await checkProjectPath(context.directory, optional(pre, 'element-path')!, 'element-path', true);

  const defaultsNode = expectMap(optional(pre, 'defaults') ?? emptyMap(pre.loc), "'defaults'");
  checkKeys(defaultsNode, ['targets'], (key) => `unknown key '${key}' in 'defaults'`);
  const targets = optional(defaultsNode, 'targets');
  const defaultTargets = targets ? expectStringList(targets, "'defaults.targets'").map((t) => t.trim()) : [];
  const warnings = optional(pre, 'fatal-warnings');
  const fatalWarnings = warnings ? expectStringList(warnings, "'fatal-warnings'").map((w) => w.trim()) : [];
  const junctions = optionalMap(pre, 'junctions');
  const duplicates = new Map<string, string[]>();
  let internal: string[] = [];
  if (junctions) {
    checkKeys(
      junctions,
      ['duplicates', 'internal', 'disallow-subproject-uris'],
      (key) => `unknown key '${key}' in 'junctions'`,
    );
    const disallow = optional(junctions, 'disallow-subproject-uris');
    if (disallow) expectBool(disallow, "'disallow-subproject-uris'", true);
    for (const [project, entry] of optionalMap(junctions, 'duplicates')?.entries ?? []) {
      duplicates.set(
        project,
        expectStringList(entry.value, `'junctions.duplicates.${project}'`).map((j) => j.trim()),
      );
    }
    const internalNode = optional(junctions, 'internal');
    if (internalNode) internal = expectStringList(internalNode, "'junctions.internal'").map((j) => j.trim());
  }
  const refStorage = expectString(optional(pre, 'ref-storage')!, "'ref-storage'").trim();
  if (refStorage !== 'inline') {
    const at = optional(pre, 'ref-storage')!;
    throw new ProjectError(
      at.loc,
      `'ref-storage: ${refStorage}' is not supported, only 'inline' (refs in the element files)`,
    );
  }

  const firstPass = composite(defaults, await processIncludes(node, scope(undefined), { onlyLocal: true }));
  const plugins = parsePlugins(firstPass);
  await checkLocalPluginPaths(firstPass, context.directory);
  const options = optionPool(firstPass, context, elementNames);
  const config = options.process(firstPass, RESTRICTED_KEYS);
  const variables = baseVariables(config, name, context, options);
  const aliases = expandAliases(optionalMap(config, 'aliases'), variables, context);
  return {
    name,
    minVersion,
    elementPath,
    plugins,
    options,
    variables,
    aliases,
    defaultTargets,
    fatalWarnings,
    duplicates,
    internal,
  };
}

/** The second pass: every include, conditionals, and all layers; yields the project's configuration. */
export async function readSecondPass(
  node: YMap,
  context: ProjectConf2Context,
  first: FirstPass,
  scope: (options: OptionPool | undefined) => IncludeScope,
  elementNames: () => readonly string[],
): Promise<ProjectConfig> {
  const defaults = format2ProjectDefaults();
  const included = composite(defaults, await processIncludes(node, scope(undefined)));
  checkKeys(included, TOP_LEVEL_KEYS, (key) => `unknown key '${key}' in project.conf`);
  const options = optionPool(included, context, elementNames);
  const config = options.process(included, RESTRICTED_KEYS);
  checkKeys(config, TOP_LEVEL_KEYS, (key) => `unknown key '${key}' in project.conf`);
  for (const [key, entry] of config.entries) {
    // Per-kind overrides may still carry list directives for the kinds' own lists.
    if (key !== 'elements' && key !== 'sources') assertNoDirectives(entry.value, key);
  }
  for (const key of ['name', 'element-path', 'min-version', 'plugins']) {
    // Only project.conf itself may set these, not an included file.
    const entry = config.entries.get(key);
    if (entry && entry.keyLoc.file !== node.loc.file && !entry.keyLoc.file.startsWith('(')) {
      throw new ProjectError(entry.keyLoc, `'${key}' must be set in project.conf itself, not in an included file`);
    }
  }

  const section = (key: string): YMap => expectMap(optional(config, key) ?? emptyMap(config.loc), `'${key}'`);
  const variables = section('variables');
  checkVariableMap(variables, 'variables');
  const environment = section('environment');
  checkScalarMap(environment, 'environment');
  const nocacheNode = optional(config, 'environment-nocache');
  const environmentNocache = nocacheNode
    ? expectStringList(nocacheNode, "'environment-nocache'").map((n) => n.trim())
    : [];
  const splitRules = section('split-rules');
  checkSplitRules(splitRules);
  const sandbox = section('sandbox');
  checkKeys(sandbox, SANDBOX2_KEYS, (key) => `unknown sandbox setting '${key}'`);
  checkShell(optional(config, 'shell'));
  for (const key of ['artifacts', 'source-caches']) {
    const servers = optional(config, key);
    if (servers && servers.type !== 'seq' && servers.type !== 'map') {
      throw new ProjectError(servers.loc, `'${key}' must be a list of cache servers, found ${describeNode(servers)}`);
    }
  }
  // The deprecated fail-on-overlap: true makes the `overlaps` warning fatal, as BuildStream 2 still does.
  const overlap = optional(config, 'fail-on-overlap');
  const failOnOverlap = overlap ? expectBool(overlap, "'fail-on-overlap'", true) : false;
  const fatalWarnings =
    failOnOverlap && !first.fatalWarnings.includes('overlaps')
      ? [...first.fatalWarnings, 'overlaps']
      : first.fatalWarnings;

  const elementOverrides = parseElementOverrides(optionalMap(config, 'elements'), true);
  const sourceOverrides = new Map<string, YMap>();
  for (const [kind, entry] of section('sources').entries) {
    const override = expectMap(entry.value, `'sources.${kind}'`);
    checkKeys(override, ['config'], (key) => `unknown key '${key}' in 'sources.${kind}'`);
    sourceOverrides.set(
      kind,
      expectMap(optional(override, 'config') ?? emptyMap(override.loc), `'sources.${kind}.config'`),
    );
  }

  const base = baseVariables(config, first.name, context, options);
  const aliases = expandAliases(optionalMap(config, 'aliases'), base, context);
  const mirrors = parseMirrors(optional(config, 'mirrors'), base, context);

  const optionVariables = mapOf(
    config.loc,
    options.exportedVariables().map(([name, value, loc]) => [name, scalar(value, loc)]),
  );
  return {
    format: 2,
    name: first.name,
    directory: context.directory,
    elementPath: first.elementPath,
    formatVersion: 0,
    refStorage: 'inline',
    aliases,
    layers: {
      variables,
      environment,
      environmentNocache,
      splitRules,
      sandbox,
      elementOverrides,
      optionVariables,
      sourceOverrides,
    },
    format2: {
      minVersion: first.minVersion,
      options,
      plugins: first.plugins,
      mirrors,
      defaultTargets: first.defaultTargets,
      fatalWarnings,
      junctionPath: context.junctionPath,
    },
  };
}

function optionPool(config: YMap, context: ProjectConf2Context, elementNames: () => readonly string[]): OptionPool {
  const options = new OptionPool(optionalMap(config, 'options'), elementNames);
  if (context.junctionOptions) options.setFromYaml(context.junctionOptions);
  for (const [name, value] of context.cliOptions ?? []) options.setFromText(name, value);
  options.resolve();
  return options;
}

/** The project-wide variables BuildStream expands aliases and mirrors with. */
function baseVariables(config: YMap, name: string, context: ProjectConf2Context, options: OptionPool): YMap {
  const loc = config.loc;
  const own = expectMap(optional(config, 'variables') ?? emptyMap(loc), "'variables'");
  const automatic: [string, string][] = [
    ['project-name', name],
    ['max-jobs', String(context.maxJobs)],
    ...options.exportedVariables().map(([variable, value]) => [variable, value] as [string, string]),
  ];
  return composite(
    own,
    mapOf(
      loc,
      automatic.map(([key, value]) => [key, scalar(value, loc)]),
    ),
  );
}

function pathVariables(base: YMap, context: ProjectConf2Context): Variables {
  const loc = base.loc;
  const uri = (directory: string) => pathToFileURL(directory).href.replace(/\/$/, '');
  const extra: [string, string][] = [
    ['project-root', context.directory],
    ['toplevel-root', context.toplevelDirectory],
    ['project-root-uri', uri(context.directory)],
    ['toplevel-root-uri', uri(context.toplevelDirectory)],
  ];
  return new Variables(
    composite(
      base,
      mapOf(
        loc,
        extra.map(([key, value]) => [key, scalar(value, loc)]),
      ),
    ),
    true,
  );
}

function expandAliases(node: YMap | undefined, base: YMap, context: ProjectConf2Context): Record<string, string> {
  const aliases = parseAliases(node);
  if (!node) return aliases;
  const variables = pathVariables(base, context);
  for (const [alias, entry] of node.entries) aliases[alias] = variables.subst(aliases[alias]!, entry.keyLoc);
  return aliases;
}

function parseMirrors(node: ReturnType<typeof optional>, base: YMap, context: ProjectConf2Context): SourceMirror[] {
  if (!node) return [];
  const variables = pathVariables(base, context);
  return expectSeq(node, "'mirrors'").items.map((item) => {
    const mirror = expectMap(item, 'a mirror');
    checkKeys(mirror, ['name', 'kind', 'aliases', 'config'], (key) => `unknown key '${key}' in a mirror`);
    const kind = optional(mirror, 'kind');
    const kindName = kind ? expectString(kind, "mirror 'kind'").trim() : 'default';
    if (kindName !== 'default') {
      throw new ProjectError(kind!.loc, `source mirror kind '${kindName}' is not supported (only the default kind)`);
    }
    const nameNode = optional(mirror, 'name');
    if (!nameNode) throw new ProjectError(mirror.loc, "mirror has no 'name'");
    const aliasesNode = optional(mirror, 'aliases');
    if (!aliasesNode) throw new ProjectError(mirror.loc, "mirror has no 'aliases'");
    const aliases: Record<string, string[]> = {};
    for (const [alias, entry] of expectMap(aliasesNode, "mirror 'aliases'").entries) {
      aliases[alias] = expectSeq(entry.value, `mirror alias '${alias}'`).items.map((url) =>
        variables.subst(expectString(url, `mirror alias '${alias}' URL`), url.loc),
      );
    }
    return { name: expectString(nameNode, "mirror 'name'").trim(), aliases };
  });
}

function checkShell(node: ReturnType<typeof optional>): void {
  if (!node) return;
  const shell = expectMap(node, "'shell'");
  checkKeys(shell, ['command', 'environment', 'host-files'], (key) => `unknown key '${key}' in 'shell'`);
  const command = optional(shell, 'command');
  if (command) expectStringList(command, "'shell.command'");
  const environment = optionalMap(shell, 'environment');
  if (environment) checkScalarMap(environment, 'shell.environment');
}

async function checkLocalPluginPaths(config: YMap, directory: string): Promise<void> {
  const plugins = optional(config, 'plugins');
  if (plugins?.type !== 'seq') return;
  for (const item of plugins.items) {
    if (item.type !== 'map' || optional(item, 'origin')?.type !== 'scalar') continue;
    if ((optional(item, 'origin') as { value: string | null }).value?.trim() !== 'local') continue;
    const path = optional(item, 'path');
    if (path) await checkProjectPath(directory, path, 'plugin path', true);
  }
}

/**
 * A path named in project.conf, as BuildStream checks it: relative, not
 * starting with '..', not a symlink, existing inside the project, and a
 * directory when `directory` is set. Returns it normalised.
 */
export async function checkProjectPath(
  projectDirectory: string,
  node: NonNullable<ReturnType<typeof optional>>,
  what: string,
  directory: boolean,
): Promise<string> {
  const raw = expectString(node, `'${what}'`).trim();
  const fail = (why: string): never => {
    throw new ProjectError(node.loc, `${what} '${raw}' ${why}`);
  };
  if (isAbsolute(raw)) fail('must be relative to the project directory');
  const normal = posix.normalize(raw.replaceAll('\\', '/')).replace(/\/+$/, '') || '.';
  if (normal === '..' || normal.startsWith('../')) fail('must not lead outside the project directory');
  const full = join(projectDirectory, normal);
  const link = await lstat(full).catch(() => undefined);
  if (!link) fail('does not exist in the project');
  if (link!.isSymbolicLink()) fail('must not be a symbolic link');
  const info = await stat(full);
  if (!resolve(full).startsWith(resolve(projectDirectory) + sep) && resolve(full) !== resolve(projectDirectory)) {
    fail('must not lead outside the project directory');
  }
  if (directory && !info.isDirectory()) fail('is not a directory');
  if (!directory && !info.isFile()) fail('is not a regular file');
  return normal;
}

export type { Loc };
