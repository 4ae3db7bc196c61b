/**
 * Strong cache keys of elements: a SHA-256 over everything that determines the
 * artifact (kind, configuration, variables, environment, source refs, the keys
 * of its dependencies, and the platform it builds on). An element whose key has
 * an artifact is never rebuilt.
 */
import { createHash } from 'node:crypto';
import type { PlatformProperty } from '../execution/types.js';
import { fatalStagingWarnings } from './overlaps2.js';
import type { Element } from './project/index.js';
import type { SourceKeyMaterial } from './sources/index.js';

/** Bumped whenever the way Granary builds an element changes its result. */
export const CACHE_KEY_VERSION = 2;

export interface KeyInputs {
  element: Element;
  sources: SourceKeyMaterial[];
  /** name -> cache key of every direct dependency, with its dependency type. */
  dependencies: Array<{ name: string; type: string; key: string; config?: unknown }>;
  platform: PlatformProperty[];
}

export function cacheKey(inputs: KeyInputs): string {
  const { element } = inputs;
  const nocache = new Set(element.environmentNocache);
  const environment = Object.fromEntries(Object.entries(element.environment).filter(([name]) => !nocache.has(name)));
  // An import runs nothing: its sources and its (expanded) config alone make its artifact, so a
  // changed variable or environment (a project option, say) does not import a whole sysroot again.
  const runsNothing = element.kind === 'import';
  const material = {
    version: CACHE_KEY_VERSION,
    // BuildStream 2 elements are assembled differently (staging, scripts, symlinks).
    ...(element.format === 2 ? { format: 2 } : {}),
    // As in BuildStream: an artifact built while overlaps were allowed is not one built while they are fatal.
    ...(fatalStagingWarnings(element).length > 0 ? { fatalWarnings: fatalStagingWarnings(element) } : {}),
    kind: element.kind,
    config: element.config,
    variables: runsNothing ? undefined : element.variables,
    environment: runsNothing ? undefined : environment,
    public: element.public,
    sources: inputs.sources,
    dependencies: [...inputs.dependencies].sort((a, b) => a.name.localeCompare(b.name)),
    platform: inputs.platform,
  };
  return createHash('sha256').update(canonicalJson(material)).digest('hex');
}

/** JSON with object keys sorted, so equal values always hash the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}
