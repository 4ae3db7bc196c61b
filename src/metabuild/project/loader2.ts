/**
 * Loading BuildStream 2 projects, from the elements asked for.
 *
 * As BuildStream 2 does, only the targets and what they depend on are
 * loaded, so a project whose unrelated elements use plugins Granary does not
 * implement still builds. Names may cross junctions: `base.bst:gcc.bst` is
 * `gcc.bst` of the project the junction `base.bst` leads to (a directory of
 * this project, or the staged sources of the junction), and `link` elements
 * stand for their targets. Subproject elements keep such qualified names, so
 * every element of the build has one name, and each knows the project it
 * belongs to (its directory, aliases and layers).
 *
 * Loading an element file applies its conditionals and includes, checks its
 * kind against the project's plugin declarations and each kind's rules about
 * dependencies and sources, and resolves its dependencies, recursively.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { compositeAll } from './composite.js';
import { sortDependencies } from './dependencyOrder.js';
import {
  type Dependency,
  type DependencyType,
  elementKindOf,
  parseElement2,
  type SourceSpec,
  sourceSpecOf,
} from './elementFile.js';
import { type Element, expandNode, resolveElement } from './elementResolve.js';
import { type Loc, ProjectError } from './errors.js';
import { type IncludeScope, processIncludes } from './includes.js';
import { type ElementKind, isFormat2ElementKind } from './kinds.js';
import type { OptionPool } from './options.js';
import { type PluginScope, unsupportedPluginReason } from './plugins.js';
import type { ProjectConfig, SourceMirror } from './projectConf.js';
import { type FirstPass, projectFileName, readFirstPass, readSecondPass } from './projectConf2.js';
import { Variables } from './variables.js';
import {
  checkKeys,
  expectMap,
  expectString,
  mapOf,
  optional,
  optionalMap,
  parseYaml,
  scalar,
  type YMap,
} from './yamlTree.js';

/**
 * Puts the sources of a junction (other than a single local source) into a
 * directory and returns it; supplied by the build layer, which knows how to
 * stage sources.
 */
export type JunctionStager = (junction: {
  /** The junction's qualified name. */
  readonly name: string;
  readonly sources: readonly SourceSpec[];
  /** The project holding the junction: where its sources' paths and aliases are resolved. */
  readonly projectDirectory: string;
  readonly aliases: Readonly<Record<string, string>>;
  readonly mirrors: readonly SourceMirror[];
}) => Promise<string>;

export interface Load2Options {
  readonly maxJobs: number;
  /** Elements to load (with what they depend on); none means the project's default targets. */
  readonly targets: readonly string[];
  /** `--option NAME VALUE` pairs for the toplevel project. */
  readonly cliOptions?: readonly (readonly [string, string])[];
  readonly stageJunction?: JunctionStager;
}

/** What the loader hands back: every loaded element by qualified name, and links to their targets. */
export interface Loaded2 {
  readonly config: ProjectConfig;
  readonly elements: Map<string, Element>;
  readonly links: Map<string, string>;
  /** The targets as asked for, resolved (links followed). */
  readonly targets: string[];
}

/** Junction settings that change how a subproject is read. */
interface JunctionSettings {
  readonly name: string;
  readonly loc: Loc;
  readonly overrides: ReadonlyMap<string, { text: string; loc: Loc }>;
  readonly aliases: Readonly<Record<string, string>>;
  readonly mapAliases: 'none' | 'identity';
}

interface LoadedFile {
  readonly kind: string;
  readonly node: YMap;
  readonly file: string;
}

/** One project of the build: the toplevel one or a subproject. */
class ProjectState {
  first!: FirstPass;
  config!: ProjectConfig;
  readonly files = new Map<string, Promise<LoadedFile>>();
  readonly subprojects = new Map<string, Promise<ProjectState>>();
  private elementList: string[] | undefined;

  constructor(
    readonly directory: string,
    readonly junctionPath: string,
    readonly parent: ProjectState | undefined,
    readonly junction: JunctionSettings | undefined,
  ) {}

  /** The name of an element of this project as the whole build knows it. */
  qualify(local: string): string {
    return this.junctionPath ? `${this.junctionPath}:${local}` : local;
  }

  fileName(path: string): string {
    return projectFileName(this.junctionPath, path);
  }

  /** Every element file name of the project (for element-mask options and default targets). */
  elementNames(): string[] {
    return this.elementList ?? [];
  }

  async listElements(): Promise<void> {
    this.elementList = await findElementFiles(join(this.directory, this.first.elementPath));
  }
}

export async function loadFormat2(directory: string, options: Load2Options): Promise<Loaded2> {
  const loader = new Format2Loader(options);
  return loader.run(directory);
}

class Format2Loader {
  readonly elements = new Map<string, Element>();
  readonly links = new Map<string, string>();
  private readonly started = new Set<string>();
  private readonly loadedSubprojects: ProjectState[] = [];
  private toplevelDirectory = '';

  constructor(private readonly options: Load2Options) {}

  async run(directory: string): Promise<Loaded2> {
    this.toplevelDirectory = directory;
    const top = new ProjectState(directory, '', undefined, undefined);
    await this.readProject(top, undefined);
    let targets = [...this.options.targets];
    if (targets.length === 0) {
      targets = top.first.defaultTargets.length > 0 ? [...top.first.defaultTargets] : top.elementNames();
    }
    const resolved: string[] = [];
    for (const target of targets) {
      const where = await this.resolveReference(top, target, undefined);
      resolved.push(await this.loadElement(where.project, where.local, undefined));
    }
    this.checkConflicts(top);
    return { config: top.config, elements: sortDependencies(this.elements), links: this.links, targets: resolved };
  }

  /** Reads project.conf of a project (both passes). */
  private async readProject(state: ProjectState, junctionOptions: YMap | undefined): Promise<void> {
    const confName = state.fileName('project.conf');
    let text: string;
    try {
      text = await readFile(join(state.directory, 'project.conf'), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      if (!state.junction)
        throw new ProjectError(undefined, `${state.directory} is not a project: it has no project.conf`);
      throw new ProjectError(
        state.junction.loc,
        `the project of junction '${state.junction.name}' has no project.conf (looked in ${state.directory})`,
      );
    }
    const node = parseYaml(text, confName, { noAnchors: true });
    const context = {
      directory: state.directory,
      toplevelDirectory: this.toplevelDirectory,
      junctionPath: state.junctionPath,
      junctionOptions,
      cliOptions: state.parent ? undefined : this.options.cliOptions,
      maxJobs: this.options.maxJobs,
    };
    const scope = (options: OptionPool | undefined) => this.includeScope(state, options);
    state.first = await readFirstPass(node, context, scope, () => state.elementNames());
    await state.listElements();
    let config = await readSecondPass(node, context, state.first, scope, () => state.elementNames());
    if (state.parent && state.junction) config = mapAliases(config, state.parent.config, state.junction);
    state.config = config;
  }

  private includeScope(state: ProjectState, options: OptionPool | undefined): IncludeScope {
    return {
      options,
      load: async (path, loc) => {
        const colon = path.lastIndexOf(':');
        if (colon >= 0) {
          const subproject = await this.junctionProject(state, path.slice(0, colon), loc);
          const file = path.slice(colon + 1);
          const node = await readInclude(subproject, file, loc);
          // Files of a subproject are expanded with its own project variables.
          const variables = new Variables(subproject.first.variables, true);
          return {
            node: expandNode(node, variables) as YMap,
            key: join(subproject.directory, file),
            scope: this.includeScope(subproject, subproject.config.format2!.options),
          };
        }
        return {
          node: await readInclude(state, path, loc),
          key: join(state.directory, path),
          scope: this.includeScope(state, options),
        };
      },
    };
  }

  /**
   * The project and local element name a reference leads to: `NAME`, or
   * `JUNCTION:NAME` with JUNCTION itself possibly a junction path; junction
   * overrides of the parent projects apply.
   */
  async resolveReference(
    state: ProjectState,
    text: string,
    loc: Loc | undefined,
  ): Promise<{ project: ProjectState; local: string }> {
    const colon = text.lastIndexOf(':');
    let project = state;
    let local = normalizeName(colon < 0 ? text : text.slice(colon + 1), loc);
    if (colon >= 0) project = await this.junctionProject(state, text.slice(0, colon), loc);
    // The most distant junction that overrides this element wins.
    let override: { project: ProjectState; text: string; loc: Loc } | undefined;
    let path = local;
    for (let current = project; current.parent && current.junction; current = current.parent) {
      const found = current.junction.overrides.get(path);
      if (found) override = { project: current.parent, text: found.text, loc: found.loc };
      path = `${current.junction.name}:${path}`;
    }
    if (override) return this.resolveReference(override.project, override.text, override.loc);
    local = normalizeName(local, loc);
    return { project, local };
  }

  /** The project a junction path (relative to `state`) leads to. */
  async junctionProject(state: ProjectState, path: string, loc: Loc | undefined): Promise<ProjectState> {
    let project = state;
    for (const component of path.split(':')) project = await this.subproject(project, component, loc);
    return project;
  }

  private subproject(state: ProjectState, name: string, loc: Loc | undefined): Promise<ProjectState> {
    const local = normalizeName(name, loc);
    return cached(state.subprojects, local, () => this.openSubproject(state, local, loc));
  }

  private async openSubproject(state: ProjectState, name: string, loc: Loc | undefined): Promise<ProjectState> {
    const where = await this.resolveReference(state, name, loc);
    if (where.project !== state || where.local !== name) {
      // Overridden junctions and links lead elsewhere.
      return this.junctionProject(where.project, where.local, loc);
    }
    const file = await this.readElementFile(state, name, loc);
    if (file.kind === 'link') {
      const target = linkTarget(file.node);
      const next = await this.resolveReference(state, target.text, target.loc);
      return this.junctionProject(next.project, next.local, target.loc);
    }
    if (file.kind !== 'junction') {
      throw new ProjectError(
        loc ?? file.node.loc,
        `'${name}' is used as a junction, but it is a '${file.kind}' element`,
      );
    }
    const node = file.node;
    checkKeys(node, [
      'kind',
      'description',
      'sources',
      'config',
      'variables',
      'environment',
      'environment-nocache',
      'public',
      'sandbox',
      'depends',
      'build-depends',
      'runtime-depends',
    ]);
    for (const key of ['depends', 'build-depends', 'runtime-depends']) {
      const deps = node.entries.get(key);
      if (deps) throw new ProjectError(deps.keyLoc, 'a junction cannot have dependencies');
    }
    // Junctions are read in the first pass: expanded with the project's first-pass variables.
    const elementLoc = node.loc;
    const variables = new Variables(
      compositeAll(
        [optionalMap(node, 'variables'), mapOf(elementLoc, [['element-name', scalar(name, elementLoc)]])],
        state.first.variables,
      ),
      true,
    );
    const config = expandNode(optionalMap(node, 'config') ?? mapOf(elementLoc, []), variables) as YMap;
    checkKeys(
      config,
      ['path', 'options', 'overrides', 'aliases', 'map-aliases'],
      (key) => `unknown key '${key}' in the config of a junction`,
    );
    const path = optional(config, 'path');
    const subpath = path ? expectString(path, "junction 'path'").trim() : '';
    const overrides = new Map<string, { text: string; loc: Loc }>();
    for (const [key, entry] of optionalMap(config, 'overrides')?.entries ?? []) {
      const target = expectString(entry.value, `junction override '${key}'`).trim();
      if (target === name)
        throw new ProjectError(entry.keyLoc, `junction '${name}' cannot override '${key}' with itself`);
      overrides.set(key, { text: target, loc: entry.keyLoc });
    }
    const aliases: Record<string, string> = {};
    for (const [key, entry] of optionalMap(config, 'aliases')?.entries ?? []) {
      aliases[key] = expectString(entry.value, `junction alias '${key}'`).trim();
    }
    const mapNode = optional(config, 'map-aliases');
    const mapAliasesValue = mapNode ? expectString(mapNode, "'map-aliases'").trim() : 'none';
    if (mapAliasesValue !== 'none' && mapAliasesValue !== 'identity') {
      throw new ProjectError(mapNode!.loc, `'map-aliases' must be 'none' or 'identity', found '${mapAliasesValue}'`);
    }
    const junctionOptions = optionalMap(config, 'options');

    const sources = sourceSpecs(node, file.file, variables);
    let base: string;
    if (sources.length === 1 && sources[0]!.kind === 'local') {
      const localPath = sources[0]!.config.path;
      if (typeof localPath !== 'string') throw new ProjectError(sources[0]!, "local source needs 'path'");
      base = join(state.directory, localPath.trim());
    } else if (sources.length === 0) {
      throw new ProjectError(node.loc, `junction '${name}' has no sources`);
    } else {
      if (!this.options.stageJunction) {
        throw new ProjectError(node.loc, `junction '${name}': staging its sources needs a build client`);
      }
      // Junctions are staged with the first-pass aliases: the project may still be reading its includes.
      base = await this.options.stageJunction({
        name: state.qualify(name),
        sources,
        projectDirectory: state.directory,
        aliases: state.config?.aliases ?? state.first.aliases,
        mirrors: state.config?.format2?.mirrors ?? [],
      });
    }
    const directory = join(base, subpath);
    const info = await stat(directory).catch(() => undefined);
    if (!info?.isDirectory()) {
      throw new ProjectError(node.loc, `the project of junction '${name}' is not a directory (${directory})`);
    }
    const subproject = new ProjectState(directory, state.qualify(name), state, {
      name,
      loc: loc ?? node.loc,
      overrides,
      aliases,
      mapAliases: mapAliasesValue,
    });
    await this.readProject(subproject, junctionOptions);
    this.loadedSubprojects.push(subproject);
    return subproject;
  }

  private readElementFile(state: ProjectState, local: string, loc: Loc | undefined): Promise<LoadedFile> {
    return cached(state.files, local, () => this.parseElementFile(state, local, loc));
  }

  private async parseElementFile(state: ProjectState, local: string, loc: Loc | undefined): Promise<LoadedFile> {
    if (!local.endsWith('.bst')) throw new ProjectError(loc, `element '${local}' does not end with '.bst'`);
    const forbidden = [...local].some(
      (char) => char.charCodeAt(0) < 32 || char.charCodeAt(0) > 126 || '<>"|?*'.includes(char),
    );
    if (forbidden) {
      throw new ProjectError(loc, `element name '${local}' has characters BuildStream does not allow`);
    }
    const relative = posix.join(state.first.elementPath, local);
    const file = state.fileName(relative);
    const text = await readProjectFile(state, relative, () => {
      const where = state.junction
        ? `the project of junction '${state.junction.name}'`
        : `element-path '${state.first.elementPath}'`;
      return new ProjectError(loc, `element '${local}' does not exist in ${where}`);
    });
    let node = parseYaml(text, file, { noAnchors: true });
    const kind = elementKindOf(node);
    if (kind === 'junction' || kind === 'link') node = state.first.options.process(node);
    else node = await processIncludes(node, this.includeScope(state, state.config.format2!.options));
    return { kind: elementKindOf(node), node, file };
  }

  /** Loads an element and everything it depends on; returns its qualified name (links followed). */
  async loadElement(state: ProjectState, local: string, loc: Loc | undefined): Promise<string> {
    const name = state.qualify(local);
    if (this.started.has(name)) return this.links.get(name) ?? name;
    const file = await this.readElementFile(state, local, loc);
    if (file.kind === 'link') {
      this.started.add(name);
      const node = file.node;
      checkKeys(node, ['kind', 'description', 'config'], (key) =>
        ['depends', 'build-depends', 'runtime-depends'].includes(key)
          ? 'a link element cannot have dependencies'
          : key === 'sources'
            ? 'a link element cannot have sources'
            : `unknown key '${key}' in a link element`,
      );
      const target = linkTarget(node);
      const where = await this.resolveReference(state, target.text, target.loc);
      const resolved = await this.loadElement(where.project, where.local, target.loc);
      this.links.set(name, resolved);
      return resolved;
    }
    if (file.kind === 'junction') {
      throw new ProjectError(
        loc ?? file.node.loc,
        `cannot depend on the junction '${local}' (name an element of its project, '${local}:ELEMENT.bst')`,
      );
    }
    this.started.add(name);
    const kindNode = optional(file.node, 'kind')!;
    const scope = this.pluginScope(state);
    const unsupported = await unsupportedPluginReason('element', file.kind, scope);
    if (unsupported) throw new ProjectError(kindNode.loc, unsupported);
    if (!isFormat2ElementKind(file.kind)) {
      throw new ProjectError(kindNode.loc, `element kind '${file.kind}' is not supported`);
    }
    const declaration = parseElement2(file.node, local, file.file, file.kind as ElementKind);
    for (const source of declaration.sources) {
      const reason = await unsupportedPluginReason('source', source.kind, scope);
      if (reason) throw new ProjectError(source, reason);
    }

    const dependencies = new Map<string, Dependency>();
    for (const ref of declaration.dependencyRefs ?? []) {
      const text = ref.junction ? `${ref.junction}:${ref.filename}` : ref.filename;
      const where = await this.resolveReference(state, text, ref.loc);
      const target = await this.loadElement(where.project, where.local, ref.loc);
      const previous = dependencies.get(target);
      const config = ref.config ? [ref.config] : [];
      dependencies.set(
        target,
        previous
          ? {
              ...previous,
              type: mergeTypes(previous.type, ref.type),
              strict: previous.strict || ref.strict,
              config: [...(previous.config ?? []), ...config],
            }
          : { name: target, type: ref.type, file: ref.loc.file, line: ref.loc.line, strict: ref.strict, config },
      );
    }
    const element = resolveElement(state.config, declaration, { maxJobs: this.options.maxJobs });
    const resolved: Element = { ...element, name, dependencies: [...dependencies.values()] };
    checkKindRules(resolved, declaration.dependencyRefs ?? [], (dependency) => this.elements.get(dependency));
    this.elements.set(name, resolved);
    return name;
  }

  /**
   * BuildStream 2 refuses to load one project (by name) through several
   * junctions unless every instance is marked as a duplicate, or internal,
   * in the `junctions` section of a project above it.
   */
  private checkConflicts(top: ProjectState): void {
    const byName = new Map<string, ProjectState[]>();
    const visit = (state: ProjectState) => {
      byName.set(state.first.name, [...(byName.get(state.first.name) ?? []), state]);
    };
    visit(top);
    for (const state of this.loadedSubprojects) visit(state);
    for (const [name, instances] of byName) {
      if (instances.length < 2) continue;
      let primary = 0;
      let duplicated = 0;
      for (const instance of instances) {
        let isDuplicate = false;
        let isInternal = false;
        for (let ancestor = instance.parent; ancestor; ancestor = ancestor.parent) {
          const relative = ancestor.junctionPath
            ? instance.junctionPath.slice(ancestor.junctionPath.length + 1)
            : instance.junctionPath;
          if (ancestor.first.duplicates.get(name)?.includes(relative)) isDuplicate = true;
          if (ancestor.first.internal.includes(relative)) isInternal = true;
        }
        if (isDuplicate) duplicated++;
        if (!isDuplicate && !isInternal) primary++;
      }
      if (primary > 1 || (primary > 0 && duplicated > 0)) {
        const where = instances.map((instance) => instance.junctionPath || '(the toplevel project)');
        const second = instances.filter((instance) => instance.junction).at(-1)!;
        throw new ProjectError(
          second.junction!.loc,
          `project '${name}' is loaded through several junctions (${where.join(', ')}); list them in 'junctions: duplicates: ${name}' or 'junctions: internal' of project.conf`,
        );
      }
    }
  }

  private pluginScope(state: ProjectState): PluginScope {
    return {
      declarations: state.first.plugins,
      junction: async (name, loc) => this.pluginScope(await this.junctionProject(state, name, loc)),
    };
  }
}

function mergeTypes(a: DependencyType, b: DependencyType): DependencyType {
  return a === b ? a : 'all';
}

/**
 * The rules BuildStream 2's core plugins check about dependencies and
 * sources (imports need a source; stacks take only plain `depends`; compose,
 * filter and script elements have no runtime dependencies or sources, ...).
 */
function checkKindRules(
  element: Element,
  refs: readonly { loc: Loc; type: DependencyType }[],
  lookup: (name: string) => Element | undefined,
): void {
  const at = { file: element.file, line: element.line };
  const forbidSources = ['stack', 'compose', 'filter', 'script'].includes(element.kind);
  if (forbidSources && element.sources.length > 0) {
    throw new ProjectError(element.sources[0]!, `a ${element.kind} element cannot have sources`);
  }
  if (element.kind === 'import' && element.sources.length === 0) {
    throw new ProjectError(at, 'an import element needs at least one source');
  }
  if (element.kind === 'compose' || element.kind === 'script') {
    const runtime = refs.find((ref) => ref.type !== 'build');
    if (runtime) {
      throw new ProjectError(
        runtime.loc,
        `a ${element.kind} element cannot have runtime dependencies (use build-depends)`,
      );
    }
  }
  if (element.kind === 'stack') {
    const partial = element.dependencies.find((dependency) => dependency.type !== 'all');
    if (partial) {
      throw new ProjectError(
        partial,
        `all dependencies of a stack element must be both build and runtime dependencies (list '${partial.name}' in 'depends' without a 'type')`,
      );
    }
  }
  if (element.kind === 'filter') {
    const build = element.dependencies.filter((dependency) => dependency.type !== 'runtime');
    if (build.length !== 1) {
      throw new ProjectError(at, `a filter element needs exactly one build dependency, it has ${build.length}`);
    }
    if (build[0]!.type === 'all') {
      throw new ProjectError(build[0]!, "a filter element's build dependency cannot also be a runtime dependency");
    }
    if (lookup(build[0]!.name)?.kind === 'stack') {
      throw new ProjectError(
        build[0]!,
        `a filter element's build dependency must have an artifact, and the stack '${build[0]!.name}' has none`,
      );
    }
  }
}

function linkTarget(node: YMap): { text: string; loc: Loc } {
  const config = optionalMap(node, 'config');
  if (config) checkKeys(config, ['target'], (key) => `unknown key '${key}' in the config of a link`);
  const target = config ? optional(config, 'target') : undefined;
  if (!target) throw new ProjectError(config?.loc ?? node.loc, "a link element needs 'config: target'");
  return { text: expectString(target, "link 'target'").trim(), loc: target.loc };
}

function normalizeName(raw: string, loc: Loc | undefined): string {
  const name = posix.normalize(raw.trim());
  if (raw.trim() === '' || posix.isAbsolute(name) || name === '..' || name.startsWith('../')) {
    throw new ProjectError(loc, `invalid element name '${raw}': must be a file inside element-path`);
  }
  return name;
}

async function readInclude(state: ProjectState, path: string, loc: Loc): Promise<YMap> {
  const relative = posix.normalize(path);
  const text = await readProjectFile(
    state,
    relative,
    () => new ProjectError(loc, `included file '${path}' does not exist in the project`),
  );
  return parseYaml(text, state.fileName(relative), { noAnchors: true });
}

/** The sources of a junction as SourceSpecs, expanded with the junction's variables. */
function sourceSpecs(node: YMap, file: string, variables: Variables): SourceSpec[] {
  const list = optional(node, 'sources');
  if (list?.type !== 'seq') return [];
  return list.items.map((item, index) =>
    sourceSpecOf(expandNode(expectMap(item, `sources[${index}]`), variables) as YMap, index, file),
  );
}

/**
 * A subproject's aliases and mirrors as its junction maps them onto the
 * parent's: an alias named in the junction's `aliases` (or any alias, with
 * `map-aliases: identity`) takes the parent's URL and mirrors.
 */
function mapAliases(config: ProjectConfig, parent: ProjectConfig, junction: JunctionSettings): ProjectConfig {
  const aliases = { ...config.aliases };
  const mapped = new Map<string, string>();
  for (const alias of Object.keys(aliases)) {
    const parentAlias = junction.aliases[alias] ?? (junction.mapAliases === 'identity' ? alias : undefined);
    if (parentAlias === undefined) continue;
    const url = parent.aliases[parentAlias];
    if (url === undefined) {
      if (junction.aliases[alias] !== undefined) {
        throw new ProjectError(
          junction.loc,
          `junction '${junction.name}' maps alias '${alias}' to '${parentAlias}', which the parent project does not define`,
        );
      }
      continue;
    }
    aliases[alias] = url;
    mapped.set(alias, parentAlias);
  }
  const mirrors: SourceMirror[] = (parent.format2?.mirrors ?? []).map((mirror) => {
    const translated: Record<string, readonly string[]> = {};
    for (const [alias, parentAlias] of mapped) {
      const urls = mirror.aliases[parentAlias];
      if (urls) translated[alias] = urls;
    }
    return { name: mirror.name, aliases: translated };
  });
  const own = (config.format2?.mirrors ?? []).map((mirror) => ({
    name: mirror.name,
    aliases: Object.fromEntries(Object.entries(mirror.aliases).filter(([alias]) => !mapped.has(alias))),
  }));
  return { ...config, aliases, format2: { ...config.format2!, mirrors: [...mirrors, ...own] } };
}

/** Element names (relative, '/'-separated) of every `*.bst` file under `root`, sorted. */
async function findElementFiles(root: string, prefix = ''): Promise<string[]> {
  const names: string[] = [];
  const entries = await readdir(join(root, prefix), { withFileTypes: true }).catch(() => []);
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const name = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (entry.name !== '.bst') names.push(...(await findElementFiles(root, name)));
    } else if (entry.name.endsWith('.bst')) names.push(name);
  }
  return names;
}

/** The value of `key` in `map`, created (and kept) on first use: each file and subproject is read once. */
function cached<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}

/** A file of a project, or the error `missing` makes when it is not there (or is a directory). */
async function readProjectFile(state: ProjectState, relative: string, missing: () => ProjectError): Promise<string> {
  try {
    return await readFile(join(state.directory, relative), 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EISDIR') throw error;
    throw missing();
  }
}
