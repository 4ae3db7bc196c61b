/**
 * Reading configuration values (parsed YAML or JSON, or built from flags) into
 * typed settings, with errors that name the exact path of the bad key, e.g.
 * `storage.cas.sharding.shards[1].backend.disk.maxSizeBytes: ...`. Unknown
 * keys are errors, so a misspelt setting never passes silently.
 */
import { parseSize } from './size.js';

/** A configuration mistake at `path`. */
export class ConfigError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`);
    this.name = 'ConfigError';
  }
}

/** The path of a key below `path`. */
export function keyPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

/** A mapping with only the allowed keys (`required` among them must be present). */
export function readObject(
  value: unknown,
  path: string,
  allowed: readonly string[],
  required: readonly string[] = [],
): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(path, `expected a mapping with keys ${allowed.join(', ')}, got ${describe(value)}`);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) {
      throw new ConfigError(keyPath(path, key), `unknown key (expected one of ${allowed.join(', ')})`);
    }
  }
  for (const key of required) {
    if (record[key] === undefined) throw new ConfigError(keyPath(path, key), 'is required');
  }
  return record;
}

/** A mapping with exactly one key out of `kinds` (a tagged union such as a storage node). */
export function readOneOf(value: unknown, path: string, kinds: readonly string[]): [string, unknown] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(path, `expected a mapping with one key out of ${kinds.join(', ')}, got ${describe(value)}`);
  }
  const keys = Object.keys(value);
  if (keys.length !== 1) {
    throw new ConfigError(
      path,
      `expected exactly one key out of ${kinds.join(', ')}, got ${keys.length === 0 ? 'none' : keys.join(', ')}`,
    );
  }
  const kind = keys[0] as string;
  if (!kinds.includes(kind)) {
    throw new ConfigError(keyPath(path, kind), `unknown kind (expected one of ${kinds.join(', ')})`);
  }
  return [kind, (value as Record<string, unknown>)[kind]];
}

export function readString(value: unknown, path: string): string {
  if (typeof value !== 'string' || value === '')
    throw new ConfigError(path, `expected a non-empty string, got ${describe(value)}`);
  return value;
}

export function readOptionalString(value: unknown, path: string): string | undefined {
  return value === undefined ? undefined : readString(value, path);
}

export function readBoolean(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') throw new ConfigError(path, `expected true or false, got ${describe(value)}`);
  return value;
}

/** A number in [minimum, maximum]; integers only unless `fractional`. */
export function readNumber(
  value: unknown,
  path: string,
  { minimum = 0, maximum = Number.MAX_SAFE_INTEGER, fractional = false } = {},
): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || (!fractional && !Number.isInteger(value))) {
    throw new ConfigError(path, `expected ${fractional ? 'a number' : 'an integer'}, got ${describe(value)}`);
  }
  if (value < minimum || value > maximum)
    throw new ConfigError(path, `must be between ${minimum} and ${maximum}, got ${value}`);
  return value;
}

/** A size in bytes: a positive integer or a text such as "10GiB". */
export function readSize(value: unknown, path: string): number {
  if (typeof value === 'number') return readNumber(value, path, { minimum: 1 });
  if (typeof value === 'string') {
    try {
      return parseSize(value);
    } catch (error) {
      throw new ConfigError(path, (error as Error).message);
    }
  }
  throw new ConfigError(path, `expected a size such as 10GiB or a number of bytes, got ${describe(value)}`);
}

/** A duration in milliseconds: a non-negative number of ms or a text such as "500ms", "90s", "15m", "3h", "1d". */
export function readDurationMs(value: unknown, path: string): number {
  if (typeof value === 'number') return readNumber(value, path);
  if (typeof value === 'string') {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim());
    if (match) {
      const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms'];
      return Math.round(Number(match[1]) * factor);
    }
  }
  throw new ConfigError(path, `expected a duration such as 500ms, 90s, 15m or 3h, got ${describe(value)}`);
}

export function readArray(value: unknown, path: string, { minimumLength = 0 } = {}): unknown[] {
  if (!Array.isArray(value)) throw new ConfigError(path, `expected a list, got ${describe(value)}`);
  if (value.length < minimumLength)
    throw new ConfigError(path, `expected at least ${minimumLength} entries, got ${value.length}`);
  return value;
}

export function readStringList(value: unknown, path: string): string[] {
  return readArray(value, path).map((entry, index) => readString(entry, keyPath(path, index)));
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}
