/**
 * JSON Web Tokens as bearer credentials (`--auth-jwks FILE`): signatures checked
 * with jose against the keys of a JWK Set file (RS256, ES256 and EdDSA only: no
 * `none`, no HMAC, whose "secret" would be a public key), `exp` required, `aud`
 * must name this farm, `iss` checked when configured. Claims map to a Principal:
 *
 *   sub        the principal's name (required)
 *   scope      space-separated Granary scopes (RFC 9068 style); `scp` (a list or a
 *              string) is read too; words that are not Granary scopes are ignored
 *   instances  a list of instance-name patterns (or one string), required
 *
 * Verified tokens are remembered (until they expire, at most a few minutes) so a
 * busy client does not pay a signature check per call.
 */
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, type JSONWebKeySet, type JWTPayload, jwtVerify } from 'jose';
import type { Principal, Scope } from '../context/requestContext.js';
import { Code, StatusError } from '../util/status.js';
import { isScope } from './access.js';

/** The signature algorithms accepted. */
export const JWT_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'];

export interface JwtSettings {
  /** The `aud` a token must carry (required: tokens minted for other services are refused). */
  readonly audience: string;
  /** The `iss` a token must carry, when set. */
  readonly issuer?: string;
  /** Leeway for `exp` and `nbf` between clocks (default 30 s). */
  readonly clockToleranceSeconds?: number;
}

const CACHE_ENTRIES = 4096;
const CACHE_LIFETIME_MS = 5 * 60_000;

/** Maps a verified token's claims to the caller; throws UNAUTHENTICATED when they say too little. */
export function principalOfClaims(claims: JWTPayload): Principal {
  const refuse = (message: string): never => {
    throw new StatusError(Code.UNAUTHENTICATED, `JWT: ${message}`);
  };
  if (typeof claims.sub !== 'string' || claims.sub === '') refuse('no "sub" claim');
  const words: string[] = [];
  const collect = (value: unknown, claim: string) => {
    if (value === undefined) return;
    if (typeof value === 'string') words.push(...value.split(/\s+/));
    else if (Array.isArray(value) && value.every((word) => typeof word === 'string')) words.push(...value);
    else refuse(`"${claim}" must be a string or a list of strings`);
  };
  collect(claims.scope, 'scope');
  collect(claims.scp, 'scp');
  const instances = claims.instances;
  let patterns: string[] = [];
  if (typeof instances === 'string') patterns = [instances];
  else if (Array.isArray(instances) && instances.every((pattern) => typeof pattern === 'string'))
    patterns = instances as string[];
  else refuse('no "instances" claim (a list of instance-name patterns, "*" for all)');
  return {
    name: claims.sub as string,
    kind: 'jwt',
    scopes: new Set(words.filter(isScope) as Scope[]),
    instances: patterns,
  };
}

/** Why jose refused a token, in words for the caller. */
function reasonOf(error: unknown): string {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'the token has expired';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return `the token's algorithm is not accepted (only ${JWT_ALGORITHMS.join(', ')})`;
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'the signature does not verify';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'no key of the JWK Set matches the token';
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'several keys of the JWK Set match the token: give the keys distinct "kid"s';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return message;
    default:
      return `the token is malformed (${message})`;
  }
}

export class JwtVerifier {
  private readonly keys: ReturnType<typeof createLocalJWKSet>;
  private readonly verified = new Map<string, { principal: Principal; untilMs: number }>();

  constructor(
    keySet: JSONWebKeySet,
    private readonly settings: JwtSettings,
  ) {
    this.keys = createLocalJWKSet(keySet);
  }

  /** Reads a JWK Set file (as served at an identity provider's jwks_uri). */
  static async load(path: string, settings: JwtSettings): Promise<JwtVerifier> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(path, 'utf8'));
    } catch (error) {
      throw new Error(`${path}: not a JSON file (${(error as Error).message})`);
    }
    return new JwtVerifier(checkedKeySet(parsed, path), settings);
  }

  /** The caller a token stands for; throws UNAUTHENTICATED with the reason when it is not valid. */
  async verify(token: string, nowMs = Date.now()): Promise<Principal> {
    const remembered = this.verified.get(token);
    if (remembered && remembered.untilMs > nowMs) return remembered.principal;
    if (remembered) this.verified.delete(token);
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, this.keys, {
        algorithms: JWT_ALGORITHMS,
        audience: this.settings.audience,
        issuer: this.settings.issuer,
        requiredClaims: ['exp'],
        clockTolerance: this.settings.clockToleranceSeconds ?? 30,
        currentDate: new Date(nowMs),
      }));
    } catch (error) {
      throw new StatusError(Code.UNAUTHENTICATED, `JWT: ${reasonOf(error)}`);
    }
    const principal = principalOfClaims(claims);
    if (this.verified.size >= CACHE_ENTRIES) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(token, {
      principal,
      untilMs: Math.min((claims.exp as number) * 1000, nowMs + CACHE_LIFETIME_MS),
    });
    return principal;
  }
}

/** A JWK Set with only public signature keys, or an error naming what is wrong. */
function checkedKeySet(parsed: unknown, path: string): JSONWebKeySet {
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new Error(`${path}: expected a JWK Set ({"keys": [...]})`);
  keys.forEach((key: unknown, index) => {
    const kty = (key as { kty?: unknown } | null)?.kty;
    if (kty !== 'RSA' && kty !== 'EC' && kty !== 'OKP') {
      throw new Error(
        `${path}: key ${index} has kty ${JSON.stringify(kty)}; only RSA, EC and OKP public keys are accepted`,
      );
    }
    if ((key as { d?: unknown }).d !== undefined) {
      throw new Error(`${path}: key ${index} includes its private part ("d"): publish only public keys`);
    }
  });
  return parsed as JSONWebKeySet;
}
