/**
 * Public entry point of the project-format layer: reads projects written in
 * (a documented subset of) BuildStream 1.x's format and in BuildStream 2's.
 * See docs/project-format.md for what is supported.
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
  type FilterConfig,
  type ImportConfig,
  type ScriptConfig,
  type StackConfig,
} from './kinds.js';
export { type LoadOptions, loadProject, type Project, resolveTargets } from './loader.js';
export type { JunctionStager } from './loader2.js';
export { type ProjectConfig, type SourceMirror, translateAlias } from './projectConf.js';
export { Variables } from './variables.js';
export type { Plain } from './yamlTree.js';
