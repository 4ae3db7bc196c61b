/**
 * Staging an element's sources: each source is validated, staged into the CAS
 * on its own, then overlaid in order onto one tree (under its `directory:` when
 * given), as BuildStream stages them into one directory.
 */

import { backgroundContext } from '../../context/requestContext.js';
import type { Digest } from '../../digest/digest.js';
import { EMPTY_DIRECTORY_DIGEST } from '../../tree/directory.js';
import { TreeEditor } from '../../tree/editor.js';
import { casSource } from './cas.js';
import { gitSource } from './git.js';
import { localSource } from './local.js';
import { patchSource } from './patch.js';
import { remoteSource } from './remote.js';
import { remoteAssetSource } from './remoteAsset.js';
import {
  checkRelativePath,
  optionalString,
  type SourceConfig,
  type SourceContext,
  SourceError,
  type SourceKeyMaterial,
  type SourceKind,
} from './sourceKind.js';
import { tarSource } from './tar.js';
import { zipSource } from './zip.js';

export type { SourceConfig, SourceContext, SourceKeyMaterial, SourceKind } from './sourceKind.js';
export { SourceError, translateUrl } from './sourceKind.js';
export { casSource, gitSource, localSource, patchSource, remoteAssetSource, remoteSource, tarSource, zipSource };

/** One entry of an element's `sources:` list and where it was written. */
export interface SourceDeclaration {
  config: SourceConfig;
  /** "elements/foo.bst:12" */
  location: string;
}

/** The source kinds of BuildStream 1 projects. */
export const BUILTIN_SOURCE_KINDS: readonly SourceKind[] = [
  localSource,
  tarSource,
  gitSource,
  remoteAssetSource,
  casSource,
];

/** The source kinds of BuildStream 2 projects: those, plus remote, zip and patch. */
export const FORMAT2_SOURCE_KINDS: readonly SourceKind[] = [
  ...BUILTIN_SOURCE_KINDS,
  remoteSource,
  zipSource,
  patchSource,
];

export class SourceKindRegistry {
  private readonly kinds = new Map<string, SourceKind>();

  constructor(kinds: readonly SourceKind[] = BUILTIN_SOURCE_KINDS) {
    for (const kind of kinds) this.register(kind);
  }

  register(kind: SourceKind): void {
    this.kinds.set(kind.kind, kind);
  }

  /** The kind named by a source's `kind` key, or a located error. */
  kindOf(config: SourceConfig, location: string): SourceKind {
    const name = config.kind;
    if (name === undefined || name === null) throw new SourceError(location, "source has no 'kind'");
    if (typeof name !== 'string') throw new SourceError(location, "source 'kind' must be a string");
    const kind = this.kinds.get(name);
    if (!kind) {
      throw new SourceError(
        location,
        `unknown source kind '${name}' (supported: ${[...this.kinds.keys()].sort().join(', ')})`,
      );
    }
    return kind;
  }
}

export const defaultSourceKinds = new SourceKindRegistry();
export const format2SourceKinds = new SourceKindRegistry(FORMAT2_SOURCE_KINDS);

/** The staging subdirectory of a source ('' for the root). */
export function directoryOf(config: SourceConfig, location: string): string {
  const value = optionalString(config, 'directory', String(config.kind), location);
  return value === undefined ? '' : checkRelativePath(value, "source 'directory'", location);
}

/** Validates every source of an element: kinds, keys and values. */
export function validateSources(sources: readonly SourceDeclaration[], registry = defaultSourceKinds): void {
  for (const { config, location } of sources) {
    registry.kindOf(config, location).validate(config, location);
    directoryOf(config, location);
  }
}

/**
 * The cache-key material of an element's sources, in order: each source's
 * kind, its key material and its directory when it has one.
 */
export async function sourcesKey(
  sources: readonly SourceDeclaration[],
  context: Omit<SourceContext, 'location'>,
  registry = defaultSourceKinds,
): Promise<SourceKeyMaterial[]> {
  validateSources(sources, registry);
  const keys: SourceKeyMaterial[] = [];
  for (const { config, location } of sources) {
    const kind = registry.kindOf(config, location);
    const entry: { [key: string]: SourceKeyMaterial } = {
      kind: kind.kind,
      key: await kind.key(config, { ...context, location }),
    };
    const directory = directoryOf(config, location);
    if (directory) entry.directory = directory;
    keys.push(entry);
  }
  return keys;
}

/**
 * Stages an element's sources in order into one tree and returns its digest.
 * Later sources overlay earlier ones (files replace, directories merge).
 * Everything is validated before anything is staged.
 */
export async function stageSources(
  sources: readonly SourceDeclaration[],
  context: Omit<SourceContext, 'location'>,
  registry = defaultSourceKinds,
): Promise<Digest> {
  validateSources(sources, registry);
  if (sources.length === 0) return EMPTY_DIRECTORY_DIGEST;
  const editor = TreeEditor.create(backgroundContext(), context.cas, context.digestFunction);
  for (const { config, location } of sources) {
    const kind = registry.kindOf(config, location);
    const directory = directoryOf(config, location);
    if (kind.stageOnto) {
      const current = (await editor.lookup(directory))?.kind === 'directory' || directory === '';
      const previous = current ? await editor.finish(directory) : EMPTY_DIRECTORY_DIGEST;
      await editor.putTree(directory, await kind.stageOnto(config, { ...context, location }, previous));
      continue;
    }
    const tree = await kind.stage(config, { ...context, location });
    await editor.merge(tree, directory);
  }
  return editor.finish();
}
