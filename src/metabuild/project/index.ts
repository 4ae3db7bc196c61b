/**
 * Public entry point of the project-format layer: reads projects written in
 * (a documented subset of) BuildStream 1.x's format. See
 * docs/project-format.md for what is supported.
 */
export type { Dependency, DependencyType, SourceSpec } from './elementFile.js';
export type { Element, SandboxConfig } from './elementResolve.js';
export { type Loc, ProjectError } from './errors.js';
export {
  type BuildConfig,
  type ComposeConfig,
  ELEMENT_KINDS,
  type ElementConfig,
  type ElementKind,
  type ImportConfig,
  type StackConfig,
} from './kinds.js';
export { type LoadOptions, loadProject, type Project, resolveTargets } from './loader.js';
export { type ProjectConfig, translateAlias } from './projectConf.js';
export { Variables } from './variables.js';
export type { Plain } from './yamlTree.js';
