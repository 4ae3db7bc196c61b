/**
 * The contract every BuildStream source kind implements, and the helpers they
 * share: configuration checking with located errors, and URL alias expansion.
 *
 * A source's config is the YAML mapping of one entry of an element's `sources:`
 * list, `kind` included. Errors carry the location (file:line) the caller gives.
 */
import { isAbsolute, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AssetService } from '../../client/remoteAsset.js';
import type { Digest, DigestFunction } from '../../digest/digest.js';
import type { BlobStore } from '../../storage/blobStore.js';

export type SourceConfig = Readonly<Record<string, unknown>>;

/** JSON-compatible material that identifies a source's content, for cache keys. */
export type SourceKeyMaterial =
  | string
  | number
  | boolean
  | null
  | SourceKeyMaterial[]
  | { [key: string]: SourceKeyMaterial };

export interface SourceContext {
  /** Absolute path of the project directory (where project.conf is). */
  projectDir: string;
  /** Project URL aliases: `alias:rest` expands to aliases[alias] + rest. */
  aliases: Readonly<Record<string, string>>;
  /** Where staged trees and their blobs go. */
  cas: BlobStore;
  /** Download cache (tarballs by sha256) and scratch space. */
  cacheDir: string;
  /** Where the source was declared, e.g. "elements/hello.bst:7", for errors. */
  location?: string;
  digestFunction?: DigestFunction;
  /** The farm's Remote Asset service, for the `remote-asset` source kind. */
  asset?: AssetService;
  /** Mirrors of the project's aliases, tried before the alias's own URL (BuildStream 2). */
  mirrors?: readonly { readonly aliases: Readonly<Record<string, readonly string[]>> }[];
  /** Read tar members as BuildStream 2 does: executable only when the owner may execute. */
  format2?: boolean;
}

export interface SourceKind {
  readonly kind: string;
  /** Checks the config's keys and values without touching the file system or network. */
  validate(config: SourceConfig, location: string): void;
  /**
   * The material that identifies the staged content, for cache keys (the ref:
   * a commit, a tarball checksum, or for local sources the digest of the content).
   */
  key(config: SourceConfig, context: SourceContext): Promise<SourceKeyMaterial>;
  /** Stages the source into the CAS and returns the Directory tree's digest. */
  stage(config: SourceConfig, context: SourceContext): Promise<Digest>;
  /**
   * For kinds that change what the sources before them staged (patch): the
   * new content of the source's directory, given its content so far.
   */
  stageOnto?(config: SourceConfig, context: SourceContext, previous: Digest): Promise<Digest>;
}

/** A configuration or staging error located at a source declaration. */
export class SourceError extends Error {
  override name = 'SourceError';
  constructor(
    readonly location: string | undefined,
    readonly detail: string,
  ) {
    super(location ? `${location}: ${detail}` : detail);
  }
}

/** Keys every source may have besides its own. */
export const COMMON_KEYS = ['kind', 'directory'] as const;

/** Refuses keys outside `allowed` (plus the common keys). */
export function checkKeys(config: SourceConfig, kind: string, allowed: readonly string[], location: string): void {
  const known = new Set<string>([...COMMON_KEYS, ...allowed]);
  const unknown = Object.keys(config).filter((key) => !known.has(key));
  if (unknown.length > 0) {
    throw new SourceError(
      location,
      `${kind} source: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}` +
        ` (valid keys: ${[...known].map((k) => `'${k}'`).join(', ')})`,
    );
  }
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * The `ref` of a source fetched from `url`: the sha256 of `what` it fetches (the
 * tarball, the archive, the file), checked before anything is staged.
 */
export function requireSha256Ref(
  config: SourceConfig,
  kind: string,
  url: string,
  what: string,
  location: string | undefined,
): string {
  const ref = config.ref;
  if (ref === undefined || ref === null) {
    throw new SourceError(location, `${kind} source ${url}: no 'ref' (the sha256 of ${what}); track the source first`);
  }
  if (typeof ref !== 'string' || !SHA256_HEX.test(ref)) {
    throw new SourceError(
      location,
      `${kind} source ${url}: 'ref' must be the sha256 of ${what}, 64 lowercase hex digits`,
    );
  }
  return ref;
}

export function requireString(config: SourceConfig, key: string, kind: string, location: string): string {
  const value = config[key];
  if (value === undefined || value === null)
    throw new SourceError(location, `${kind} source: missing required key '${key}'`);
  if (typeof value !== 'string' || value === '') {
    throw new SourceError(location, `${kind} source: '${key}' must be a non-empty string`);
  }
  return value;
}

export function optionalString(config: SourceConfig, key: string, kind: string, location: string): string | undefined {
  const value = config[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new SourceError(location, `${kind} source: '${key}' must be a string`);
  return value;
}

export function optionalBoolean(
  config: SourceConfig,
  key: string,
  kind: string,
  location: string,
): boolean | undefined {
  const value = config[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean') return value;
  // Values from YAML are strings (BuildStream 2 also reads 1 and 0).
  if (value === 'true' || value === 'True' || value === '1') return true;
  if (value === 'false' || value === 'False' || value === '0') return false;
  throw new SourceError(location, `${kind} source: '${key}' must be true or false`);
}

/**
 * A relative path inside the project or staging area: not absolute, no "..".
 * Returns it normalised ("" for the directory itself).
 */
export function checkRelativePath(value: string, what: string, location: string | undefined): string {
  if (isAbsolute(value)) throw new SourceError(location, `${what} "${value}" must be a relative path`);
  const normal = normalize(value).replace(/\/+$/, '');
  if (normal === '..' || normal.startsWith('../') || value.split('/').includes('..')) {
    throw new SourceError(location, `${what} "${value}" must not contain ".."`);
  }
  return normal === '.' ? '' : normal;
}

/**
 * Expands a project alias: "alias:rest" becomes aliases[alias] + rest when the
 * alias is defined; anything else (a full URL, a plain path) is returned as is.
 */
export function translateUrl(url: string, aliases: Readonly<Record<string, string>>): string {
  const colon = url.indexOf(':');
  if (colon <= 0) return url;
  const alias = url.slice(0, colon);
  const base = aliases[alias];
  return base === undefined ? url : base + url.slice(colon + 1);
}

/**
 * The local file system path a translated URL names: file:// URLs and plain
 * paths (relative to the project directory); undefined for other schemes.
 */
export function localPathOf(url: string, projectDir: string): string | undefined {
  if (url.startsWith('file:')) return fileURLToPath(url);
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(url)) return undefined;
  return resolve(projectDir, url);
}

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
