/**
 * Qualifiers of the Remote Asset API: validation, the canonical per-URI set that
 * keys an asset record, and the Subresource Integrity (`checksum.sri`) checksums
 * Bazel's downloader sends.
 *
 * Granary rejects no qualifier name: every qualifier is part of the record key,
 * so a fetch matches only a record with exactly the same set (the spec lets a
 * server that also implements Push accept qualifiers it does not interpret).
 * A few names have meaning to the downloader:
 *
 *   checksum.sri                 the downloaded content must match (sha256/384/512)
 *   http_header:NAME             request header sent to the origin for every URI
 *   http_header_url:INDEX:NAME   request header for the INDEX-th URI only (wins
 *                                over http_header:NAME)
 *   resource_type                one naming a record about the URI (an in-toto
 *                                attestation) is never downloaded: only Push makes it
 *
 * Header qualifiers stay part of the key (a resource fetched with credentials is
 * never served to a request without them), but in a URI-independent form: the
 * record of the i-th URI is keyed by its effective headers, `http_header:name`
 * with the header name in lower case, so the same request with its URIs in
 * another order still matches.
 */
import { createHash } from 'node:crypto';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { Qualifier } from '../gen/build/bazel/remote/asset/v1/remote_asset.js';
import { invalidArgument } from '../util/status.js';

export const CHECKSUM_SRI = 'checksum.sri';
export const HTTP_HEADER_PREFIX = 'http_header:';
export const HTTP_HEADER_URL_PREFIX = 'http_header_url:';
export const RESOURCE_TYPE = 'resource_type';

/**
 * Resource types of records that describe a URI rather than being its content, such
 * as the provenance records `granary publish` pushes: downloading the URI can never
 * produce one, so a fetch of them is answered from pushed records only.
 */
const RECORD_RESOURCE_TYPES: ReadonlySet<string> = new Set(['application/vnd.in-toto+json']);

/** True when the qualifiers ask for a record about the URI, which only Push creates. */
export function asksForPushedRecord(qualifiers: readonly Qualifier[]): boolean {
  return qualifiers.some((q) => q.name === RESOURCE_TYPE && RECORD_RESOURCE_TYPES.has(q.value));
}

/** A qualifier set in canonical form: unique names, sorted by name. */
export type CanonicalQualifiers = ReadonlyArray<Readonly<Qualifier>>;

/**
 * Checks a request's qualifiers: names non-empty and unique (the spec's MUST),
 * `http_header_url:` names well formed with an index into `uriCount` URIs, and a
 * parsable `checksum.sri`.
 */
export function validateQualifiers(qualifiers: readonly Qualifier[], uriCount: number): void {
  const seen = new Set<string>();
  for (const { name, value } of qualifiers) {
    if (name === '')
      throw invalidArgument('a qualifier has an empty name', [{ field: 'qualifiers.name', description: 'empty name' }]);
    if (seen.has(name)) {
      throw invalidArgument(`qualifier "${name}" appears more than once; qualifier names must be unique`, [
        { field: 'qualifiers.name', description: `"${name}" repeated` },
      ]);
    }
    seen.add(name);
    if (name.startsWith(HTTP_HEADER_URL_PREFIX)) checkHeader(name, parseUrlHeaderName(name, uriCount).header, value);
    else if (name.startsWith(HTTP_HEADER_PREFIX)) {
      if (name.length === HTTP_HEADER_PREFIX.length) {
        throw invalidArgument(`qualifier "${name}" names no header`, [
          { field: 'qualifiers.name', description: `"${name}" malformed` },
        ]);
      }
      checkHeader(name, name.slice(HTTP_HEADER_PREFIX.length), value);
    }
    if (name === CHECKSUM_SRI) parseSri(value);
  }
}

/**
 * A header qualifier must name a header an HTTP request can carry (a token, a
 * value without control characters): refused here rather than failing at the
 * origin as if it were unreachable.
 */
function checkHeader(qualifier: string, header: string, value: string): void {
  try {
    validateHeaderName(header);
    validateHeaderValue(header, value);
  } catch (error) {
    throw invalidArgument(`qualifier "${qualifier}" is not a valid HTTP header: ${(error as Error).message}`, [
      { field: 'qualifiers', description: `"${qualifier}" is not a valid HTTP header` },
    ]);
  }
}

function parseUrlHeaderName(name: string, uriCount: number): { index: number; header: string } {
  const match = /^http_header_url:(\d+):(.+)$/.exec(name);
  const index = match ? Number(match[1]) : Number.NaN;
  if (!match || !Number.isSafeInteger(index) || index >= uriCount) {
    throw invalidArgument(
      `qualifier "${name}" must be http_header_url:INDEX:NAME with INDEX below the number of URIs (${uriCount})`,
      [{ field: 'qualifiers.name', description: `"${name}" malformed` }],
    );
  }
  return { index, header: match[2] as string };
}

/**
 * The canonical qualifier set that keys the record of the `index`-th URI: every
 * qualifier except `http_header_url:*`, header names lower-cased, with the URI's
 * own `http_header_url:INDEX:NAME` folded in as `http_header:name`.
 */
export function qualifiersForUri(qualifiers: readonly Qualifier[], index: number, uriCount: number): Qualifier[] {
  const byName = new Map<string, string>();
  for (const { name, value } of qualifiers) {
    if (name.startsWith(HTTP_HEADER_URL_PREFIX)) continue;
    if (name.startsWith(HTTP_HEADER_PREFIX))
      byName.set(HTTP_HEADER_PREFIX + name.slice(HTTP_HEADER_PREFIX.length).toLowerCase(), value);
    else byName.set(name, value);
  }
  for (const { name, value } of qualifiers) {
    if (!name.startsWith(HTTP_HEADER_URL_PREFIX)) continue;
    const parsed = parseUrlHeaderName(name, uriCount);
    if (parsed.index === index) byName.set(HTTP_HEADER_PREFIX + parsed.header.toLowerCase(), value);
  }
  return [...byName]
    .map(([name, value]) => ({ name, value }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** HTTP request headers of one URI, from its canonical qualifiers (header names in lower case). */
export function headersOf(canonical: CanonicalQualifiers): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const { name, value } of canonical) {
    if (name.startsWith(HTTP_HEADER_PREFIX)) headers[name.slice(HTTP_HEADER_PREFIX.length)] = value;
  }
  return headers;
}

/** Qualifiers worth echoing in a response: everything but headers (which may hold credentials). */
export function publicQualifiers(canonical: CanonicalQualifiers): Qualifier[] {
  return canonical.filter((q) => !q.name.startsWith(HTTP_HEADER_PREFIX)).map((q) => ({ name: q.name, value: q.value }));
}

/** One hash of a Subresource Integrity value. */
export interface SriHash {
  algorithm: 'sha256' | 'sha384' | 'sha512';
  /** The raw digest. */
  digest: Buffer;
}

const SRI_LENGTHS = { sha256: 32, sha384: 48, sha512: 64 } as const;
const SRI_STRENGTH = { sha256: 1, sha384: 2, sha512: 3 } as const;

/**
 * Parses a `checksum.sri` value ("sha256-BASE64", possibly several
 * whitespace-separated hashes, each with optional "?options"). As the SRI
 * specification says, only the strongest algorithm present counts, and content
 * matches if it matches any hash of that algorithm. Returns those hashes.
 */
export function parseSri(value: string): SriHash[] {
  const hashes: SriHash[] = [];
  for (const token of value.trim().split(/\s+/)) {
    if (token === '') continue;
    const match = /^(sha256|sha384|sha512)-([A-Za-z0-9+/_-]+={0,2})(\?.*)?$/.exec(token);
    const algorithm = match?.[1] as SriHash['algorithm'] | undefined;
    const digest = match
      ? Buffer.from((match[2] as string).replace(/-/g, '+').replace(/_/g, '/'), 'base64')
      : undefined;
    if (!algorithm || !digest || digest.length !== SRI_LENGTHS[algorithm]) {
      throw invalidArgument(
        `checksum.sri "${value.slice(0, 200)}" is not a Subresource Integrity value (sha256-, sha384- or sha512- followed by the base64 digest)`,
        [{ field: 'qualifiers.value', description: 'malformed checksum.sri' }],
      );
    }
    hashes.push({ algorithm, digest });
  }
  if (hashes.length === 0) {
    throw invalidArgument('checksum.sri is empty', [
      { field: 'qualifiers.value', description: 'malformed checksum.sri' },
    ]);
  }
  const strongest = Math.max(...hashes.map((h) => SRI_STRENGTH[h.algorithm]));
  return hashes.filter((h) => SRI_STRENGTH[h.algorithm] === strongest);
}

/** Incrementally checks content against SRI hashes (all of one algorithm, from parseSri). */
export class SriVerifier {
  private readonly hasher;

  constructor(private readonly expected: readonly SriHash[]) {
    this.hasher = createHash((expected[0] as SriHash).algorithm);
  }

  update(chunk: Buffer): void {
    this.hasher.update(chunk);
  }

  /** Undefined when the content matches; otherwise a description of the mismatch. */
  mismatch(): string | undefined {
    const actual = this.hasher.digest();
    if (this.expected.some((h) => h.digest.equals(actual))) return undefined;
    const algorithm = (this.expected[0] as SriHash).algorithm;
    const expected = this.expected.map((h) => `${algorithm}-${h.digest.toString('base64')}`).join(' ');
    return `checksum mismatch: expected ${expected}, got ${algorithm}-${actual.toString('base64')}`;
  }
}

/** The SRI value of content hashed with sha256. */
export function sha256SriOf(sha256Hex: string): string {
  return `sha256-${Buffer.from(sha256Hex, 'hex').toString('base64')}`;
}
