/**
 * The supported element kinds and how each reads its `config`.
 *
 * An element's `config` is composed from its kind's defaults, project.conf
 * `elements:` overrides and the element file; this module then checks it
 * against what the kind accepts and turns it into a typed value with every
 * command variable-expanded, which is what the build layer consumes.
 */
import { builtinKindDefaults } from './builtinDefaults.js';
import { format2KindDefaults } from './defaults2.js';
import { ProjectError } from './errors.js';
import type { Variables } from './variables.js';
import { checkKeys, expectBool, expectSeq, expectString, expectStringList, optional, type YMap } from './yamlTree.js';

/** The element kinds of BuildStream 1 projects. */
export const ELEMENT_KINDS = ['autotools', 'cmake', 'compose', 'import', 'make', 'manual', 'stack'] as const;
/**
 * The element kinds of BuildStream 2 projects that produce artifacts: the
 * core kinds and those of buildstream-plugins. (Junctions and links are
 * resolved while loading and never become elements.)
 */
export const FORMAT2_ELEMENT_KINDS = [
  'autotools',
  'cmake',
  'compose',
  'filter',
  'import',
  'make',
  'manual',
  'meson',
  'pip',
  'script',
  'setuptools',
  'stack',
] as const;
export type ElementKind = (typeof ELEMENT_KINDS)[number] | (typeof FORMAT2_ELEMENT_KINDS)[number];

/** Kinds that run command lists in a sandbox (BuildStream's BuildElement). */
const BUILD_KINDS: readonly string[] = ['autotools', 'cmake', 'make', 'manual', 'meson', 'pip', 'setuptools'];

/** A BuildStream 1 element kind. */
export function isElementKind(kind: string): kind is ElementKind {
  return (ELEMENT_KINDS as readonly string[]).includes(kind);
}

/** A BuildStream 2 element kind Granary builds. */
export function isFormat2ElementKind(kind: string): kind is ElementKind {
  return (FORMAT2_ELEMENT_KINDS as readonly string[]).includes(kind);
}

/** Config of manual, make, autotools and cmake elements: shell commands run in order, one phase after another. */
export interface BuildConfig {
  readonly type: 'build';
  readonly configureCommands: string[];
  readonly buildCommands: string[];
  readonly installCommands: string[];
  readonly stripCommands: string[];
  readonly createDevShm: boolean;
  /** BuildStream 2's %{command-subdir}: commands run in this subdirectory of the build root. */
  readonly commandSubdir?: string;
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

/** Config of filter elements (BuildStream 2): a split of their one build dependency's artifact. */
export interface FilterConfig {
  readonly type: 'filter';
  readonly include: string[];
  readonly exclude: string[];
  readonly includeOrphans: boolean;
  readonly passIntegration: boolean;
}

/** Config of script elements (BuildStream 2): commands run over the staged build dependencies. */
export interface ScriptConfig {
  readonly type: 'script';
  readonly commands: string[];
  readonly rootReadOnly: boolean;
  /** Working directory of the commands (%{cwd}). */
  readonly cwd: string;
  /** Where the output is collected from (%{install-root}). */
  readonly installRoot: string;
}

export type ElementConfig = BuildConfig | ImportConfig | ComposeConfig | StackConfig | FilterConfig | ScriptConfig;

const BUILD_COMMAND_KEYS = ['configure-commands', 'build-commands', 'install-commands', 'strip-commands'] as const;

/** The builtin defaults (variables, config, environment, environment-nocache) of a supported kind. */
export function kindDefaults(kind: ElementKind, format: 1 | 2 = 1): YMap {
  return format === 2 ? format2KindDefaults(kind)! : builtinKindDefaults(kind)!;
}

/**
 * Validates a fully composed `config` mapping for `kind` and expands its
 * variables. Commands are trimmed and expanded like BuildStream does.
 */
export function resolveElementConfig(
  kind: ElementKind,
  config: YMap,
  variables: Variables,
  format: 1 | 2 = 1,
): ElementConfig {
  if (format === 2) return resolveFormat2Config(kind, config, variables);
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

/** BuildStream 2's `config` of each kind: the keys its plugin validates, with its types. */
function resolveFormat2Config(kind: ElementKind, config: YMap, variables: Variables): ElementConfig {
  const commands = (key: string): string[] => {
    const node = optional(config, key);
    if (node === undefined) return [];
    return expectSeq(node, `'${key}'`).items.map((item, index) =>
      variables.subst(expectString(item, `'${key}'[${index}]`), item.loc),
    );
  };
  const flag = (key: string, fallback?: boolean): boolean => {
    const node = optional(config, key);
    if (!node) {
      if (fallback !== undefined) return fallback;
      throw new ProjectError(config.loc, `${kind} element config needs '${key}'`);
    }
    return expectBool(node, `'${key}'`, true);
  };
  const list = (key: string): string[] => {
    const node = optional(config, key);
    return node ? expectStringList(node, `'${key}'`).map((text) => variables.subst(text, node.loc)) : [];
  };
  if (BUILD_KINDS.includes(kind)) {
    checkKeys(config, BUILD_COMMAND_KEYS, (key) => unknownConfigKey(kind, key));
    const subdir = variables.get('command-subdir');
    return {
      type: 'build',
      configureCommands: commands('configure-commands'),
      buildCommands: commands('build-commands'),
      installCommands: commands('install-commands'),
      stripCommands: commands('strip-commands'),
      createDevShm: false,
      ...(subdir ? { commandSubdir: subdir } : {}),
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
    case 'compose':
      checkKeys(config, ['integrate', 'include', 'exclude', 'include-orphans'], (key) => unknownConfigKey(kind, key));
      return {
        type: 'compose',
        integrate: flag('integrate'),
        include: list('include'),
        exclude: list('exclude'),
        includeOrphans: flag('include-orphans'),
      };
    case 'filter':
      checkKeys(config, ['include', 'exclude', 'include-orphans', 'pass-integration'], (key) =>
        unknownConfigKey(kind, key),
      );
      for (const key of ['include', 'exclude']) {
        if (!optional(config, key)) throw new ProjectError(config.loc, `filter element config needs '${key}'`);
      }
      return {
        type: 'filter',
        include: list('include'),
        exclude: list('exclude'),
        includeOrphans: flag('include-orphans'),
        passIntegration: flag('pass-integration', false),
      };
    case 'script': {
      checkKeys(config, ['commands', 'root-read-only'], (key) => unknownConfigKey(kind, key));
      if (!optional(config, 'commands')) throw new ProjectError(config.loc, "script element config needs 'commands'");
      return {
        type: 'script',
        commands: commands('commands'),
        rootReadOnly: flag('root-read-only', false),
        cwd: variables.get('cwd') || '/',
        installRoot: variables.get('install-root') || '/',
      };
    }
    default:
      // BuildStream 2's stack plugin reads no configuration and checks none.
      return { type: 'stack' };
  }
}
