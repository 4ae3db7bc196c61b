/**
 * Digests and digest functions. A Digest names a blob by the hash of its content
 * and its size. All hashing in Granary goes through a DigestFunction so that
 * storage, verification and the client agree on the algorithm.
 */
import * as nodeCrypto from 'node:crypto';
import { createHash, type Hash } from 'node:crypto';
import { Code, StatusError } from '../util/status.js';

export interface Digest {
  /** Lowercase hex. */
  readonly hash: string;
  readonly sizeBytes: number;
}

/** REAPI DigestFunction.Value numbers. */
export enum DigestFunctionValue {
  UNKNOWN = 0,
  SHA256 = 1,
  SHA1 = 2,
  MD5 = 3,
  VSO = 4,
  SHA384 = 5,
  SHA512 = 6,
  MURMUR3 = 7,
  SHA256TREE = 8,
  BLAKE3 = 9,
}

export interface DigestFunction {
  /** The REAPI DigestFunction.Value number. */
  readonly value: number;
  /** Lowercase name as used in ByteStream resource names and logs. */
  readonly name: string;
  readonly hexLength: number;
  createHasher(): Hash;
  /**
   * The hex hash of data held whole in memory, in one call: for small blobs
   * (BatchUpdateBlobs verifies hundreds per request) it skips the Hash object
   * that createHasher makes, about a fifth of the cost of hashing 4 KiB.
   */
  hashHex(data: Uint8Array): string;
}

/** node:crypto's one-shot hash (Node 20.12 and later); older Node 20 releases lack it. */
const oneShotHash: ((algorithm: string, data: Uint8Array, encoding: 'hex') => string) | undefined = (
  nodeCrypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'hex') => string }
).hash;

function nodeDigestFunction(value: DigestFunctionValue, name: string, algorithm: string, hexLength: number) {
  return {
    value,
    name,
    hexLength,
    createHasher: () => createHash(algorithm),
    hashHex: oneShotHash
      ? (data: Uint8Array) => oneShotHash(algorithm, data, 'hex')
      : (data: Uint8Array) => createHash(algorithm).update(data).digest('hex'),
  } satisfies DigestFunction;
}

export const SHA256 = nodeDigestFunction(DigestFunctionValue.SHA256, 'sha256', 'sha256', 64);
export const SHA384 = nodeDigestFunction(DigestFunctionValue.SHA384, 'sha384', 'sha384', 96);
export const SHA512 = nodeDigestFunction(DigestFunctionValue.SHA512, 'sha512', 'sha512', 128);
export const SHA1 = nodeDigestFunction(DigestFunctionValue.SHA1, 'sha1', 'sha1', 40);
export const MD5 = nodeDigestFunction(DigestFunctionValue.MD5, 'md5', 'md5', 32);

/** Every digest function this server supports; SHA256 first as the default. */
export const SUPPORTED_DIGEST_FUNCTIONS: readonly DigestFunction[] = [SHA256, SHA384, SHA512, SHA1, MD5];

const byValue = new Map(SUPPORTED_DIGEST_FUNCTIONS.map((f) => [f.value, f]));
const byHexLength = new Map(SUPPORTED_DIGEST_FUNCTIONS.map((f) => [f.hexLength, f]));
const byName = new Map(SUPPORTED_DIGEST_FUNCTIONS.map((f) => [f.name, f]));

/** The digest function a stored digest was made with, known from its hash length. */
export function digestFunctionOf(digest: Digest): DigestFunction {
  return byHexLength.get(digest.hash.length) ?? SHA256;
}

export function digestFunctionByName(name: string): DigestFunction | undefined {
  return byName.get(name.toLowerCase());
}

/** 1 for the character codes of lowercase hex digits (a table lookup beats a regular expression per hash). */
const LOWERCASE_HEX = new Uint8Array(128);
for (const digit of '0123456789abcdef') LOWERCASE_HEX[digit.charCodeAt(0)] = 1;

function isLowercaseHex(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 128 || LOWERCASE_HEX[code] === 0) return false;
  }
  return text.length > 0;
}

/**
 * Resolves the digest function of a request. An explicit value must be supported;
 * UNKNOWN means "infer from the hash length", as the specification allows for the
 * classic functions.
 */
export function resolveDigestFunction(value: number, sampleHash?: string): DigestFunction {
  if (value !== DigestFunctionValue.UNKNOWN) {
    const fn = byValue.get(value);
    if (!fn) {
      throw new StatusError(
        Code.INVALID_ARGUMENT,
        `digest function ${DigestFunctionValue[value] ?? value} is not supported by this server`,
      );
    }
    return fn;
  }
  if (sampleHash !== undefined) return byHexLength.get(sampleHash.length) ?? SHA256;
  return SHA256;
}

/**
 * Validates a digest from the wire. `field` names the offending field in the error.
 * When no function is given, it is inferred from the hash length.
 */
export function parseDigest(
  raw: { hash: string; sizeBytes: number } | undefined,
  fn: DigestFunction | undefined,
  field = 'digest',
): Digest {
  if (!raw) throw new StatusError(Code.INVALID_ARGUMENT, `${field} is missing`);
  const { hash, sizeBytes } = raw;
  const expected = fn ?? byHexLength.get(hash.length);
  if (!expected || hash.length !== expected.hexLength || !isLowercaseHex(hash)) {
    throw new StatusError(
      Code.INVALID_ARGUMENT,
      `${field}: "${truncate(hash)}" is not a valid ${fn ? fn.name : 'digest'} hash (lowercase hex of the right length)`,
      { badRequest: [{ field, description: 'malformed hash' }] },
    );
  }
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) {
    throw new StatusError(Code.INVALID_ARGUMENT, `${field}: size ${sizeBytes} is not a valid blob size`, {
      badRequest: [{ field, description: 'invalid size' }],
    });
  }
  return { hash, sizeBytes };
}

function truncate(text: string): string {
  return text.length > 140 ? `${text.slice(0, 140)}...` : text;
}

/** Computes the digest of in-memory data. */
export function digestOf(data: Uint8Array | string, fn: DigestFunction = SHA256): Digest {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  return { hash: fn.hashHex(bytes), sizeBytes: bytes.byteLength };
}

/** A stable string key for maps and file names: "hash-size". */
export function digestKey(digest: Digest): string {
  return `${digest.hash}-${digest.sizeBytes}`;
}

export function formatDigest(digest: Digest): string {
  return `${digest.hash}/${digest.sizeBytes}`;
}

const emptyHashes = new Set(SUPPORTED_DIGEST_FUNCTIONS.map((f) => f.createHasher().digest('hex')));

/** True when the digest names the empty blob, which every store holds implicitly. */
export function isEmptyDigest(digest: Digest): boolean {
  return digest.sizeBytes === 0 && emptyHashes.has(digest.hash);
}
