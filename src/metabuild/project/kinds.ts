/**
 * The supported element kinds and how each reads its `config`.
 *
 * An element's `config` is composed from its kind's defaults, project.conf
 * `elements:` overrides and the element file; this module then checks it
 * against what the kind accepts and turns it into a typed value with every
 * command variable-expanded, which is what the build layer consumes.
 */
import { builtinKindDefaults } from './builtinDefaults.js';
import { ProjectError } from './errors.js';
import type { Variables } from './variables.js';
import { checkKeys, expectBool, expectSeq, expectString, expectStringList, optional, type YMap } from './yamlTree.js';

export const ELEMENT_KINDS = ['autotools', 'cmake', 'compose', 'import', 'make', 'manual', 'stack'] as const;
export type ElementKind = (typeof ELEMENT_KINDS)[number];

/** Kinds that run command lists in a sandbox (BuildStream's BuildElement). */
const BUILD_KINDS: readonly string[] = ['autotools', 'cmake', 'make', 'manual'];

export function isElementKind(kind: string): kind is ElementKind {
  return (ELEMENT_KINDS as readonly string[]).includes(kind);
}

/** Config of manual, make, autotools and cmake elements: shell commands run in order, one phase after another. */
export interface BuildConfig {
  readonly type: 'build';
  readonly configureCommands: string[];
  readonly buildCommands: string[];
  readonly installCommands: string[];
  readonly stripCommands: string[];
  readonly createDevShm: boolean;
}

/** Config of import elements: the sources' `source` directory is placed at `target` in the artifact. */
export interface ImportConfig {
  readonly type: 'import';
  readonly source: string;
  readonly target: string;
}

/** Config of compose elements: which split domains of the build dependencies to keep. */
export interface ComposeConfig {
  readonly type: 'compose';
  readonly integrate: boolean;
  readonly include: string[];
  readonly exclude: string[];
  readonly includeOrphans: boolean;
}

/** Stack elements have no configuration: they only group dependencies. */
export interface StackConfig {
  readonly type: 'stack';
}

export type ElementConfig = BuildConfig | ImportConfig | ComposeConfig | StackConfig;

const BUILD_COMMAND_KEYS = ['configure-commands', 'build-commands', 'install-commands', 'strip-commands'] as const;

/** The builtin defaults (variables, config, environment, environment-nocache) of a supported kind. */
export function kindDefaults(kind: ElementKind): YMap {
  return builtinKindDefaults(kind)!;
}

/**
 * Validates a fully composed `config` mapping for `kind` and expands its
 * variables. Commands are trimmed and expanded like BuildStream does.
 */
export function resolveElementConfig(kind: ElementKind, config: YMap, variables: Variables): ElementConfig {
  if (BUILD_KINDS.includes(kind)) {
    checkKeys(config, [...BUILD_COMMAND_KEYS, 'create-dev-shm'], (key) => unknownConfigKey(kind, key));
    const commands = (key: string): string[] => {
      const node = optional(config, key);
      if (node === undefined) return [];
      return expectSeq(node, `'${key}'`).items.map((item, index) =>
        variables.subst(expectString(item, `'${key}'[${index}]`), item.loc),
      );
    };
    const devShm = optional(config, 'create-dev-shm');
    return {
      type: 'build',
      configureCommands: commands('configure-commands'),
      buildCommands: commands('build-commands'),
      installCommands: commands('install-commands'),
      stripCommands: commands('strip-commands'),
      createDevShm: devShm ? expectBool(devShm, "'create-dev-shm'") : false,
    };
  }
  switch (kind) {
    case 'import': {
      checkKeys(config, ['source', 'target'], (key) => unknownConfigKey(kind, key));
      const path = (key: string): string => {
        const node = optional(config, key);
        if (!node) throw new ProjectError(config.loc, `import element config needs '${key}'`);
        return variables.subst(expectString(node, `'${key}'`), node.loc);
      };
      return { type: 'import', source: path('source'), target: path('target') };
    }
    case 'compose': {
      checkKeys(config, ['integrate', 'include', 'exclude', 'include-orphans'], (key) => unknownConfigKey(kind, key));
      const flag = (key: string): boolean => {
        const node = optional(config, key);
        if (!node) throw new ProjectError(config.loc, `compose element config needs '${key}'`);
        return expectBool(node, `'${key}'`);
      };
      const list = (key: string): string[] => {
        const node = optional(config, key);
        return node ? expectStringList(node, `'${key}'`).map((text) => text.trim()) : [];
      };
      return {
        type: 'compose',
        integrate: flag('integrate'),
        include: list('include'),
        exclude: list('exclude'),
        includeOrphans: flag('include-orphans'),
      };
    }
    default:
      checkKeys(config, [], (key) => unknownConfigKey(kind, key));
      return { type: 'stack' };
  }
}

function unknownConfigKey(kind: string, key: string): string {
  return `unknown key '${key}' in the config of a '${kind}' element`;
}
