/**
 * A small command-line parser: `--name value`, `--name=value`, repeated flags and
 * booleans. Unknown flags are errors so typos do not pass silently.
 */
import { parseSize } from '../util/size.js';

export interface FlagSpec {
  /** 'string' takes a value, 'boolean' does not, 'list' may repeat. */
  type: 'string' | 'boolean' | 'list';
  default?: string;
  help: string;
}

export interface ParsedArgs {
  flags: Map<string, string[]>;
  positionals: string[];
}

export class UsageError extends Error {}

/**
 * Parses argv against the flag specs. `withDefaults: false` leaves unset flags
 * unset, for commands that fill them from a configuration file first.
 */
export function parseArgs(
  argv: readonly string[],
  specs: Record<string, FlagSpec>,
  { withDefaults = true } = {},
): ParsedArgs {
  const flags = new Map<string, string[]>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = specs[name];
    if (!spec) throw new UsageError(`unknown flag --${name}`);
    let value: string;
    if (spec.type === 'boolean') {
      value = eq < 0 ? 'true' : arg.slice(eq + 1);
    } else if (eq >= 0) {
      value = arg.slice(eq + 1);
    } else {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`flag --${name} needs a value`);
      value = next;
    }
    const values = flags.get(name) ?? [];
    if (spec.type === 'list') values.push(value);
    else values.splice(0, values.length, value);
    flags.set(name, values);
  }
  if (withDefaults) {
    for (const [name, spec] of Object.entries(specs)) {
      if (!flags.has(name) && spec.default !== undefined) flags.set(name, [spec.default]);
    }
  }
  return { flags, positionals };
}

export function flag(args: ParsedArgs, name: string): string | undefined {
  return args.flags.get(name)?.[0];
}

export function usage(command: string, summary: string, specs: Record<string, FlagSpec>): string {
  const lines = [`usage: granary ${command}`, '', summary, '', 'flags:'];
  for (const [name, spec] of Object.entries(specs)) {
    const value = spec.type === 'boolean' ? '' : ' VALUE';
    const def = spec.default !== undefined ? ` (default ${spec.default})` : '';
    lines.push(`  --${name}${value}`.padEnd(30) + spec.help + def);
  }
  return lines.join('\n');
}

/** Parses durations like "90s", "15m", "3h", "500ms" into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) throw new UsageError(`invalid duration "${text}" (examples: 500ms, 90s, 15m, 3h)`);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(match[1]) * factor);
}

/** The size flag `--NAME` (10GiB, 500MiB, ...) in bytes; a bad one is a UsageError naming the flag. */
export function parseSizeFlag(args: ParsedArgs, name: string, options: { allowZero?: boolean } = {}): number {
  try {
    return parseSize(flag(args, name) as string, options);
  } catch (error) {
    throw new UsageError(`--${name}: ${(error as Error).message}`);
  }
}
