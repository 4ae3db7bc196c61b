/**
 * Configuration files for `granary serve --config` and `granary worker --config`.
 * A file is a YAML mapping whose settings each correspond to one flag (the
 * command's table of ConfigSettings says which), plus sections that have no
 * flag of their own (serve's `storage` graph). Flags are shortcuts for the same
 * settings and win over the file; `granary config print` shows the result.
 *
 * Reading goes: flags as given (no defaults), then the file's settings for
 * every flag not given, then the defaults. So a printed configuration, read
 * back, describes the very same farm.
 */
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { ConfigError, keyPath } from '../util/configValues.js';
import { readYamlValue, YamlInputError } from '../util/yamlInput.js';
import { type FlagSpec, type ParsedArgs, UsageError } from './args.js';

/** One setting of a configuration file and the flag it stands for. */
export interface ConfigSetting {
  /** Dotted path in the file, e.g. `scheduler.workerTimeout`. */
  readonly path: string;
  readonly flag: string;
  /**
   * string: a scalar (text, number, size or duration); list: a list of scalars
   * (a single scalar is a list of one); pairs: KEY=VALUE flags, written in the
   * file as a mapping (KEY: VALUE, or KEY: [VALUES...]) or as a list of KEY=VALUE.
   */
  readonly kind: 'string' | 'list' | 'pairs';
}

/** Reads a YAML (or JSON) configuration file; syntax errors name the file and line. */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--config: cannot read ${file}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = readYamlValue(text);
  } catch (error) {
    if (!(error instanceof YamlInputError)) throw error;
    throw new UsageError(`--config: ${file}: ${error.message}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`--config: ${file}: the file must be a mapping of settings`);
  }
  return value as Record<string, unknown>;
}

/**
 * Fills `args` (parsed without defaults) with the file's settings for the flags
 * not given, then with the defaults of `specs`. Keys of the file that are
 * neither settings nor one of `sections` are errors naming their path.
 * Returns the values of the sections, for the command to check.
 */
export function applyConfigFile(
  file: Record<string, unknown>,
  args: ParsedArgs,
  settings: readonly ConfigSetting[],
  sections: readonly string[] = [],
): Record<string, unknown> {
  const byPath = new Map(settings.map((setting) => [setting.path, setting]));
  const found: Record<string, unknown> = {};
  const visit = (value: unknown, path: string) => {
    const setting = byPath.get(path);
    if (setting) {
      if (!args.flags.has(setting.flag)) args.flags.set(setting.flag, flagValues(value, path, setting));
      return;
    }
    if (sections.includes(path)) {
      found[path] = value;
      return;
    }
    const prefix = `${path}.`;
    const expected = [...byPath.keys(), ...sections].filter((known) => known.startsWith(prefix));
    if (expected.length > 0 && (value === null || typeof value !== 'object' || Array.isArray(value))) {
      const children = new Set(expected.map((known) => known.slice(prefix.length).split('.')[0]));
      throw new ConfigError(path, `expected a mapping of ${[...children].join(', ')}`);
    }
    if (expected.length === 0) {
      const parent = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '';
      const siblings = [...byPath.keys(), ...sections]
        .filter((known) => (parent === '' ? true : known.startsWith(`${parent}.`)))
        .map((known) => known.slice(parent === '' ? 0 : parent.length + 1).split('.')[0]);
      throw new ConfigError(path, `unknown setting (expected one of ${[...new Set(siblings)].join(', ')})`);
    }
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) visit(child, keyPath(path, key));
  };
  for (const [key, value] of Object.entries(file)) visit(value, key);
  return found;
}

/** Sets the default of every flag still unset (as parseArgs does). */
export function applyFlagDefaults(args: ParsedArgs, specs: Record<string, FlagSpec>): void {
  for (const [name, spec] of Object.entries(specs)) {
    if (!args.flags.has(name) && spec.default !== undefined) args.flags.set(name, [spec.default]);
  }
}

/** The settings of `args` as a nested document (unset flags left out), for printing. */
export function documentOf(args: ParsedArgs, settings: readonly ConfigSetting[]): Record<string, unknown> {
  const document: Record<string, unknown> = {};
  for (const setting of settings) {
    const values = args.flags.get(setting.flag);
    if (values === undefined || (setting.kind !== 'string' && values.length === 0)) continue;
    setAt(document, setting.path, setting.kind === 'string' ? values[0] : [...values]);
  }
  return document;
}

/** Places `value` at a dotted path of a document. */
export function setAt(document: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = document;
  for (const key of keys.slice(0, -1)) {
    const child = node[key];
    if (child === undefined || child === null || typeof child !== 'object') node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1] as string] = value;
}

/** A document as YAML, as `granary config print` shows it. */
export function formatConfig(document: Record<string, unknown>): string {
  return stringify(document, { lineWidth: 0 });
}

function flagValues(value: unknown, path: string, setting: ConfigSetting): string[] {
  if (setting.kind === 'string') return [scalar(value, path)];
  if (setting.kind === 'pairs' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const pairs: string[] = [];
    for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
      const entries = Array.isArray(entry) ? entry : [entry];
      entries.forEach((item, index) => {
        pairs.push(
          `${key}=${scalar(item, Array.isArray(entry) ? keyPath(keyPath(path, key), index) : keyPath(path, key))}`,
        );
      });
    }
    return pairs;
  }
  const list = Array.isArray(value) ? value : [value];
  return list.map((item, index) => scalar(item, Array.isArray(value) ? keyPath(path, index) : path));
}

function scalar(value: unknown, path: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new ConfigError(
    path,
    `expected a text or a number, got ${value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value}`,
  );
}
