/**
 * Which element and source kinds a BuildStream 2 project may use.
 *
 * BuildStream 2 projects name the plugins they use in project.conf's
 * `plugins:` list, each entry an origin: `pip` (a Python package, such as
 * buildstream-plugins), `local` (Python files in the project) or `junction`
 * (whatever a subproject declares). Core kinds need no declaration. Granary
 * runs no Python: it implements the core kinds and those of the
 * buildstream-plugins package itself, so a kind is usable when its declared
 * origin leads to one of those implementations. Declaring other plugins is
 * fine; only an element or source that uses one is an error, which says
 * where the kind was declared.
 */
import { type Loc, ProjectError } from './errors.js';
import { checkKeys, describeNode, expectBool, expectSeq, expectString, optional, type YMap } from './yamlTree.js';

/** Element kinds every BuildStream 2 project has. */
export const CORE_ELEMENT_KINDS = ['compose', 'filter', 'import', 'junction', 'link', 'manual', 'script', 'stack'];
/** Source kinds every BuildStream 2 project has (Granary adds its own remote-asset and cas). */
export const CORE_SOURCE_KINDS = ['local', 'remote', 'tar', 'remote-asset', 'cas'];

/** The pip packages whose plugins Granary implements, and which of their kinds. */
const PIP_PACKAGES: Record<string, { elements: string[]; sources: string[] }> = {
  'buildstream-plugins': {
    elements: ['autotools', 'cmake', 'make', 'meson', 'pip', 'setuptools'],
    sources: ['git', 'patch'],
  },
  // The zip source lives in the community plugin collections.
  'buildstream-plugins-community': { elements: [], sources: ['zip'] },
  'bst-plugins-experimental': { elements: [], sources: ['zip'] },
};

export type PluginType = 'element' | 'source';

/** Where a declared kind comes from. */
export type PluginOrigin =
  | { readonly origin: 'pip'; readonly packageName: string; readonly loc: Loc }
  | { readonly origin: 'local'; readonly path: string; readonly loc: Loc }
  | { readonly origin: 'junction'; readonly junction: string; readonly loc: Loc };

/** The plugin declarations of one project. */
export interface PluginDeclarations {
  readonly elements: ReadonlyMap<string, PluginOrigin>;
  readonly sources: ReadonlyMap<string, PluginOrigin>;
}

const COMMON_ORIGIN_KEYS = ['origin', 'sources', 'elements', 'source-mirrors', 'allow-deprecated'];

/** Reads project.conf's `plugins:` list (the paths of local origins are checked by the caller). */
export function parsePlugins(node: YMap): PluginDeclarations {
  const elements = new Map<string, PluginOrigin>();
  const sources = new Map<string, PluginOrigin>();
  const list = optional(node, 'plugins');
  if (!list) return { elements, sources };
  for (const item of expectSeq(list, "'plugins'").items) {
    if (item.type !== 'map')
      throw new ProjectError(item.loc, `a plugin origin must be a mapping, found ${describeNode(item)}`);
    const originNode = optional(item, 'origin');
    if (!originNode) throw new ProjectError(item.loc, "plugin origin has no 'origin'");
    const kind = expectString(originNode, "'origin'").trim();
    let origin: PluginOrigin;
    switch (kind) {
      case 'pip': {
        checkKeys(
          item,
          ['package-name', ...COMMON_ORIGIN_KEYS],
          (key) => `unknown key '${key}' in a pip plugin origin`,
        );
        const name = optional(item, 'package-name');
        if (!name) throw new ProjectError(item.loc, "pip plugin origin has no 'package-name'");
        origin = { origin: 'pip', packageName: expectString(name, "'package-name'").trim(), loc: item.loc };
        break;
      }
      case 'local': {
        checkKeys(item, ['path', ...COMMON_ORIGIN_KEYS], (key) => `unknown key '${key}' in a local plugin origin`);
        const path = optional(item, 'path');
        if (!path) throw new ProjectError(item.loc, "local plugin origin has no 'path'");
        origin = { origin: 'local', path: expectString(path, "'path'").trim(), loc: item.loc };
        break;
      }
      case 'junction': {
        checkKeys(
          item,
          ['junction', ...COMMON_ORIGIN_KEYS],
          (key) => `unknown key '${key}' in a junction plugin origin`,
        );
        const junction = optional(item, 'junction');
        if (!junction) throw new ProjectError(item.loc, "junction plugin origin has no 'junction'");
        origin = { origin: 'junction', junction: expectString(junction, "'junction'").trim(), loc: item.loc };
        break;
      }
      default:
        throw new ProjectError(originNode.loc, `unknown plugin origin '${kind}' (pip, local or junction)`);
    }
    const allowDeprecated = optional(item, 'allow-deprecated');
    if (allowDeprecated) expectBool(allowDeprecated, "'allow-deprecated'", true);
    for (const [key, into] of [
      ['elements', elements],
      ['sources', sources],
      ['source-mirrors', undefined],
    ] as const) {
      const kinds = optional(item, key);
      if (!kinds) continue;
      for (const entry of expectSeq(kinds, `'${key}'`).items) {
        let name: string;
        if (entry.type === 'scalar') name = expectString(entry, `'${key}' entry`).trim();
        else if (entry.type === 'map') {
          checkKeys(entry, ['kind', 'allow-deprecated'], (k) => `unknown key '${k}' in a plugin declaration`);
          const kindNode = optional(entry, 'kind');
          if (!kindNode) throw new ProjectError(entry.loc, "plugin declaration has no 'kind'");
          name = expectString(kindNode, "'kind'").trim();
        } else throw new ProjectError(entry.loc, 'a plugin must be named by a string or a mapping with a kind');
        into?.set(name, { ...origin, loc: entry.loc });
      }
    }
  }
  return { elements, sources };
}

/** A project's plugin declarations, and the way to the declarations of its subprojects. */
export interface PluginScope {
  readonly declarations: PluginDeclarations;
  /** The scope of the project a junction (of this project) leads to. */
  junction(name: string, loc: Loc): Promise<PluginScope>;
}

/**
 * Why a kind cannot be used in a project, or undefined when Granary
 * implements it. Junction origins are followed to the subproject's own
 * declaration of the kind.
 */
export async function unsupportedPluginReason(
  type: PluginType,
  kind: string,
  scope: PluginScope,
): Promise<string | undefined> {
  const core = type === 'element' ? CORE_ELEMENT_KINDS : CORE_SOURCE_KINDS;
  const origin = (type === 'element' ? scope.declarations.elements : scope.declarations.sources).get(kind);
  const where = (loc: Loc) => `declared at ${loc.file} line ${loc.line}`;
  if (!origin) {
    if (core.includes(kind)) return undefined;
    const provider = Object.entries(PIP_PACKAGES).find(([, kinds]) =>
      (type === 'element' ? kinds.elements : kinds.sources).includes(kind),
    )?.[0];
    return (
      `${type} kind '${kind}' is not declared in project.conf 'plugins'` +
      (provider ? ` (it comes from the pip package '${provider}')` : '')
    );
  }
  switch (origin.origin) {
    case 'pip': {
      const packageName = origin.packageName.split(/[<>=!~;[ ]/)[0]!.trim();
      const kinds = PIP_PACKAGES[packageName];
      if (kinds && (type === 'element' ? kinds.elements : kinds.sources).includes(kind)) return undefined;
      return `${type} kind '${kind}' from pip package '${origin.packageName}' (${where(origin.loc)}) is not implemented by Granary`;
    }
    case 'local':
      return `${type} kind '${kind}' is a local Python plugin (${origin.path}, ${where(origin.loc)}); Granary cannot run Python plugins`;
    case 'junction': {
      const subproject = await scope.junction(origin.junction, origin.loc);
      const declared = (type === 'element' ? subproject.declarations.elements : subproject.declarations.sources).has(
        kind,
      );
      if (!declared) {
        return `${type} kind '${kind}' is not declared by the project of junction '${origin.junction}' (${where(origin.loc)})`;
      }
      return unsupportedPluginReason(type, kind, subproject);
    }
  }
}
