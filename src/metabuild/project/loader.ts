/**
 * Loading a whole project and walking its dependency graph.
 *
 * `loadProject` reads project.conf and every `*.bst` file under element-path
 * and resolves each element, so any error in any element file surfaces at
 * load time with its file and line. `resolveTargets` then checks that the
 * dependencies of the requested elements exist and form no cycle, and orders
 * them so every element comes after everything it depends on.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, posix, resolve } from 'node:path';
import type { Dependency } from './elementFile.js';
import { parseElement } from './elementFile.js';
import { type Element, resolveElement } from './elementResolve.js';
import { formatLoc, ProjectError } from './errors.js';
import { type JunctionStager, loadFormat2 } from './loader2.js';
import { loadProjectConf, PROJECT_CONF, type ProjectConfig } from './projectConf.js';
import { parseYaml } from './yamlTree.js';

export interface Project {
  readonly config: ProjectConfig;
  /**
   * Every element, keyed by its name relative to element-path ('base.bst',
   * 'libs/foo.bst'); elements of subprojects by their junction path too
   * ('base.bst:gcc.bst'). BuildStream 2 projects hold the elements the
   * targets given to loadProject need.
   */
  readonly elements: ReadonlyMap<string, Element>;
  /** BuildStream 2 `link` elements: their qualified name to the element they stand for. */
  readonly links?: ReadonlyMap<string, string>;
}

export interface LoadOptions {
  /** Value of %{max-jobs}; BuildStream's default, min(CPUs, 8), when omitted. */
  readonly maxJobs?: number;
  /**
   * The elements a BuildStream 2 project is loaded for (with everything they
   * depend on); none means its default targets. BuildStream 1 projects load
   * every element file.
   */
  readonly targets?: readonly string[];
  /** `--option NAME VALUE` pairs (BuildStream 2 project options). */
  readonly options?: readonly (readonly [string, string])[];
  /** Stages junction sources other than a local directory (BuildStream 2). */
  readonly stageJunction?: JunctionStager;
}

export async function loadProject(projectDirectory: string, options: LoadOptions = {}): Promise<Project> {
  const directory = resolve(projectDirectory);
  const maxJobs = options.maxJobs ?? Math.min(availableParallelism(), 8);
  if (!Number.isSafeInteger(maxJobs) || maxJobs < 1)
    throw new Error(`maxJobs must be a positive integer, got ${maxJobs}`);
  if (await isFormat2Project(directory)) {
    const loaded = await loadFormat2(directory, {
      maxJobs,
      targets: options.targets ?? [],
      cliOptions: options.options,
      stageJunction: options.stageJunction,
    });
    return { config: loaded.config, elements: loaded.elements, links: loaded.links };
  }
  if (options.options && options.options.length > 0) {
    throw new ProjectError(undefined, 'project options are only supported in BuildStream 2 projects');
  }
  const config = await loadProjectConf(directory);
  const root = join(directory, config.elementPath);
  const elements = new Map<string, Element>();
  for (const name of await findElementFiles(root)) {
    const file = config.elementPath === '.' ? name : posix.join(config.elementPath, name);
    const text = await readFile(join(root, name), 'utf8');
    elements.set(name, resolveElement(config, parseElement(text, name, file), { maxJobs }));
  }
  return { config, elements };
}

/**
 * True for a BuildStream 2 project: its project.conf sets `min-version`
 * (BuildStream 1 projects have `format-version` or nothing).
 */
async function isFormat2Project(directory: string): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(join(directory, PROJECT_CONF), 'utf8');
  } catch {
    return false; // loadProjectConf reports the missing file
  }
  let node: ReturnType<typeof parseYaml>;
  try {
    node = parseYaml(text, PROJECT_CONF);
  } catch {
    return false; // and malformed YAML
  }
  return node.entries.has('min-version');
}

/** Element names (relative, '/'-separated) of every `*.bst` file under `root`, sorted; dot-directories are skipped. */
async function findElementFiles(root: string, prefix = ''): Promise<string[]> {
  const names: string[] = [];
  const entries = await readdir(join(root, prefix), { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const name = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (!entry.name.startsWith('.')) names.push(...(await findElementFiles(root, name)));
    } else if (entry.name.endsWith('.bst')) {
      if (
        entry.isFile() ||
        (entry.isSymbolicLink() && (await stat(join(root, name)).catch(() => undefined))?.isFile())
      ) {
        names.push(name);
      }
    }
  }
  return names;
}

/**
 * The named elements and everything they depend on (of any dependency
 * type), each after all of its dependencies. Fails on unknown targets,
 * dependencies on missing elements, and dependency cycles.
 */
export function resolveTargets(project: Project, names: readonly string[]): Element[] {
  const ordered: Element[] = [];
  const done = new Set<string>();
  // The path being explored: each element with the dependency that led to the next one.
  const path: { element: Element; via?: Dependency }[] = [];

  const visit = (element: Element): void => {
    if (done.has(element.name)) return;
    const onPath = path.findIndex((step) => step.element.name === element.name);
    if (onPath >= 0) throw cycleError(path.slice(onPath), element);
    const step: { element: Element; via?: Dependency } = { element };
    path.push(step);
    for (const dependency of element.dependencies) {
      const target = project.elements.get(dependency.name);
      if (!target) {
        throw new ProjectError(dependency, `depends on '${dependency.name}' which does not exist`);
      }
      step.via = dependency;
      visit(target);
    }
    path.pop();
    done.add(element.name);
    ordered.push(element);
  };

  for (const raw of names) {
    const normal = raw.includes(':') ? raw : posix.normalize(raw);
    const name = project.links?.get(normal) ?? normal;
    const element = project.elements.get(name);
    if (!element) {
      throw new ProjectError(
        undefined,
        `element '${raw}' does not exist in element-path '${project.config.elementPath}'`,
      );
    }
    visit(element);
  }
  return ordered;
}

function cycleError(steps: { element: Element; via?: Dependency }[], closing: Element): ProjectError {
  const links = steps.map(({ element, via }) => `'${element.name}' (${formatLoc(via!)}: depends on '${via!.name}')`);
  return new ProjectError(steps[0]!.via!, `dependency cycle: ${links.join(' -> ')} -> '${closing.name}'`);
}
