/**
 * Assembling the artifact of an element of a BuildStream 2 project, kind by
 * kind, as BuildStream 2.8's plugins do:
 *
 * - build kinds (manual, make, autotools, cmake, meson, pip, setuptools) and
 *   script: dependencies staged in the sandbox (at '/' or their configured
 *   `location`), integration commands of those at '/', sources at
 *   %{build-root}, then the commands in one Action; the artifact is what
 *   ends up in %{install-root};
 * - import: the sources' `source` directory placed at `target`;
 * - stack: nothing (it only groups dependencies);
 * - compose: the staged dependencies (integrated when `integrate`), split by
 *   their domains when `include`, `exclude` or `include-orphans: false` ask;
 * - filter: the split of its one build dependency's artifact.
 *
 * Symlinks are kept as they are (BuildStream 2 does not rewrite them). Staging
 * fails where the project makes `overlaps` or `unstaged-files` fatal and
 * staging would warn of them (overlaps2.ts).
 */

import { backgroundContext } from '../context/requestContext.js';
import type { Digest } from '../digest/digest.js';
import type { PlatformProperty } from '../execution/types.js';
import type { BlobStore } from '../storage/blobStore.js';
import { EMPTY_DIRECTORY_DIGEST } from '../tree/directory.js';
import { mergeTrees, subtreeAt, TreeEditor } from '../tree/editor.js';
import type { Artifact } from './artifactStore.js';
import type { PreparedAction } from './buildAction.js';
import { commandLines, type IntegrationStep, integrationLines, prepareAction2 } from './buildAction2.js';
import { fatalStagingWarning } from './overlaps2.js';
import type { BuildConfig, Element, Project } from './project/index.js';
import { filterTree, relativePaths, splitFilter } from './splitFilter2.js';
import { stagingLayout, stagingOrder } from './staging2.js';

/** What assembling needs from the builder. */
export interface Assembly2Context {
  readonly cas: BlobStore;
  readonly project: Project;
  readonly platform: readonly PlatformProperty[];
  /** The artifact of an element already built or cached. */
  artifactOf(name: string): Artifact;
  /** Runs a prepared Action on the farm; returns the collected output directory, log and Action. */
  run(element: Element, prepared: PreparedAction): Promise<Artifact>;
}

/** A problem with the element's content that the build reveals (an empty import, unknown domains). */
export class Assembly2Error extends Error {}

const BUILD_STEPS: [string, keyof BuildConfig][] = [
  ['configure-commands', 'configureCommands'],
  ['build-commands', 'buildCommands'],
  ['install-commands', 'installCommands'],
  ['strip-commands', 'stripCommands'],
];

export async function assemble2(context: Assembly2Context, element: Element, sources: Digest): Promise<Artifact> {
  const { cas } = context;
  const config = element.config;
  switch (config.type) {
    case 'stack':
      return { root: EMPTY_DIRECTORY_DIGEST };
    case 'import': {
      const picked = config.source.replace(/^\/+|\/+$/g, '');
      const subtree = picked ? await subtreeAt(backgroundContext(), cas, sources, picked) : sources;
      if (!subtree) {
        throw new Assembly2Error(
          `${element.file}: import source directory '${config.source}' does not exist in the sources`,
        );
      }
      if (subtree.hash === EMPTY_DIRECTORY_DIGEST.hash) {
        throw new Assembly2Error(`${element.file}: no files were found inside directory '${config.source}'`);
      }
      const editor = TreeEditor.create(backgroundContext(), cas);
      await editor.merge(subtree, config.target.replace(/^\/+|\/+$/g, ''));
      return { root: await editor.finish() };
    }
    case 'filter':
      return { root: await filterArtifact(context, element) };
    case 'compose':
      return composeArtifact(context, element);
    case 'build':
    case 'script':
      return runCommands(context, element, sources);
  }
}

/** The integration commands an element contributes (a filter passing its dependency's on includes them). */
export function integrationCommandsOf(project: Project, element: Element): string[] {
  if (element.config.type === 'filter' && element.config.passIntegration) {
    const dependency = element.dependencies.find((d) => d.type !== 'runtime');
    const source = dependency ? project.elements.get(dependency.name) : undefined;
    return [...(source ? integrationCommandsOf(project, source) : []), ...element.integrationCommands];
  }
  return [...element.integrationCommands];
}

function integrationSteps(project: Project, names: readonly string[]): IntegrationStep[] {
  return names
    .map((name) => project.elements.get(name)!)
    .map((dependency) => ({
      element: dependency.name,
      commands: integrationCommandsOf(project, dependency),
      environment: dependency.environment,
    }))
    .filter((step) => step.commands.length > 0);
}

async function stagedTree(context: Assembly2Context, names: readonly string[]): Promise<Digest> {
  return mergeTrees(
    backgroundContext(),
    context.cas,
    names.map((name) => context.artifactOf(name).root),
  );
}

/** Build and script elements: one Action running the commands over the staged sandbox. */
async function runCommands(context: Assembly2Context, element: Element, sources: Digest): Promise<Artifact> {
  const { cas, project } = context;
  const editor = TreeEditor.create(backgroundContext(), cas);
  let atRoot: string[] = [];
  const layout: [string, string[]][] = [];
  for (const [location, selection] of stagingLayout(element)) {
    const order = stagingOrder(project, selection);
    if (location === '/') atRoot = order;
    layout.push([location, order]);
    await editor.merge(await stagedTree(context, order), location.replace(/^\/+|\/+$/g, ''));
  }
  await refuseFatalStagingWarnings(context, element, layout);
  const config = element.config;
  let workingDirectory: string;
  let outputDirectory: string;
  let groups: { label: string; commands: string[] }[];
  if (config.type === 'build') {
    const buildRoot = element.variables['build-root'] ?? '/';
    outputDirectory = element.variables['install-root'] ?? '/';
    workingDirectory = config.commandSubdir ? `${buildRoot.replace(/\/+$/, '')}/${config.commandSubdir}` : buildRoot;
    const here = buildRoot.replace(/^\/+|\/+$/g, '');
    if (here && (await editor.lookup(here))?.kind === 'directory') {
      // BuildStream stages sources only into an empty directory.
      if ((await editor.finish(here)).hash !== EMPTY_DIRECTORY_DIGEST.hash) {
        throw new Assembly2Error(
          `${element.file}: the build root ${buildRoot} is not empty after staging the dependencies`,
        );
      }
    }
    await editor.merge(sources, here);
    groups = BUILD_STEPS.map(([label, field]) => ({ label, commands: config[field] as string[] }));
  } else if (config.type === 'script') {
    workingDirectory = config.cwd;
    outputDirectory = config.installRoot;
    groups = [{ label: 'commands', commands: config.commands }];
  } else {
    throw new Error(`${element.name} runs no commands`);
  }
  // What BuildStream's sandbox creates before running anything: the mount points and marked directories.
  for (const directory of ['dev', 'proc', 'tmp', workingDirectory, outputDirectory]) {
    const path = directory.replace(/^\/+|\/+$/g, '');
    if (path && (await editor.lookup(path))?.kind !== 'directory') await editor.makeDirectory(path);
  }
  const inputRoot = await editor.finish();
  const lines = [
    ...integrationLines(integrationSteps(project, atRoot), element.environment),
    ...commandLines(groups.filter((group) => group.commands.length > 0)),
  ];
  const prepared = prepareAction2({
    lines,
    environment: element.environment,
    workingDirectory,
    outputDirectory,
    platform: context.platform,
    inputRoot,
  });
  return context.run(element, prepared);
}

/** Filter elements: their one build dependency's artifact, split by that dependency's domains. */
async function filterArtifact(context: Assembly2Context, element: Element): Promise<Digest> {
  if (element.config.type !== 'filter') throw new Error('not a filter');
  const { include, exclude, includeOrphans } = element.config;
  const dependency = context.project.elements.get(element.dependencies.find((d) => d.type !== 'runtime')!.name)!;
  const unknown = [...include, ...exclude].filter((domain) => !(domain in dependency.splitRules));
  if (unknown.length > 0) {
    throw new Assembly2Error(`${element.file}: unknown split domains of ${dependency.name}: ${unknown.join(', ')}`);
  }
  const root = context.artifactOf(dependency.name).root;
  const keep = splitFilter(dependency.splitRules, include, exclude, includeOrphans);
  return keep ? filterTree(context.cas, root, keep) : root;
}

/** Compose elements: the staged build dependencies, integrated and split as configured. */
async function composeArtifact(context: Assembly2Context, element: Element): Promise<Artifact> {
  if (element.config.type !== 'compose') throw new Error('not a compose');
  const { cas, project } = context;
  const { include, exclude, includeOrphans, integrate } = element.config;
  const selection = element.dependencies.filter((d) => d.type !== 'runtime').map((d) => d.name);
  const order = stagingOrder(project, selection);
  await refuseFatalStagingWarnings(context, element, [['/', order]]);
  let root = await stagedTree(context, order);
  const requireSplit = include.length > 0 || exclude.length > 0 || !includeOrphans;
  const before = requireSplit ? new Set(await relativePaths(cas, root)) : undefined;
  let log: Artifact = { root };
  const steps = integrate ? integrationSteps(project, order) : [];
  if (steps.length > 0) {
    const editor = TreeEditor.open(backgroundContext(), cas, root);
    for (const directory of ['dev', 'proc', 'tmp']) {
      if ((await editor.lookup(directory))?.kind !== 'directory') await editor.makeDirectory(directory);
    }
    const prepared = prepareAction2({
      lines: integrationLines(steps, element.environment),
      environment: element.environment,
      workingDirectory: '/',
      outputDirectory: '/',
      platform: context.platform,
      inputRoot: await editor.finish(),
    });
    log = await context.run(element, prepared);
    root = log.root;
  }
  if (!requireSplit || !before) return { ...log, root };
  const manifest = new Set<string>();
  for (const name of order) {
    const dependency = project.elements.get(name)!;
    const keep = splitFilter(dependency.splitRules, include, exclude, includeOrphans);
    for (const path of await relativePaths(cas, context.artifactOf(name).root)) {
      if (!keep || keep(path)) manifest.add(path);
    }
  }
  if (steps.length > 0) {
    const after = new Set(await relativePaths(cas, root));
    for (const path of after) if (!before.has(path)) manifest.add(path);
    for (const path of [...manifest]) if (before.has(path) && !after.has(path)) manifest.delete(path);
  }
  return { ...log, root: await filterTree(cas, root, (path) => manifest.has(path)) };
}

/** Fails the element as BuildStream 2 does when its project makes an overlap or unstaged file fatal. */
async function refuseFatalStagingWarnings(
  context: Assembly2Context,
  element: Element,
  layout: ReadonlyArray<readonly [string, readonly string[]]>,
): Promise<void> {
  const lookup = {
    cas: context.cas,
    project: context.project,
    artifactRoot: (name: string) => context.artifactOf(name).root,
  };
  const problem = await fatalStagingWarning(lookup, element, layout);
  if (problem) throw new Assembly2Error(problem);
}
