/**
 * The matching rule between an action's platform and a worker's properties, one
 * rule per property name (as NativeLink configures it):
 *
 * - `exact` (the default): the worker offers that name with that value (a worker
 *   may offer several values for one name, e.g. two pools).
 * - `minimum`: both values are numbers and the worker's is at least the action's
 *   (cores, memory); an action asking for a non-number is refused at Execute.
 * - `priority`: never restricts; a worker is handed the actions whose value it
 *   offers before those it does not (within one ExecutionPolicy priority).
 * - `ignore`: plays no part in matching at all.
 *
 * Values are compared as users write them: `OSFamily` case-insensitively (Bazel
 * users write `OSFamily=Linux`; the REAPI lexicon's values are lowercase) and
 * `ISA` through aliases (`x86-64`, `x86_64`, `amd64`, `x64` are one ISA).
 * Worker-side hints listed in WORKER_HINT_PROPERTIES are handled by the worker
 * itself: unless a rule names them, each requires the worker property it maps to.
 */
import { invalidArgument } from '../util/status.js';
import type { PlatformProperty } from './types.js';

/** How one property name is matched; see the file comment. */
export type PropertyMatch = 'exact' | 'minimum' | 'priority' | 'ignore';

export const PROPERTY_MATCHES: readonly PropertyMatch[] = ['exact', 'minimum', 'priority', 'ignore'];

/** Per-property rules; names not listed are matched `exact`. */
export type PlatformMatchRules = Readonly<Record<string, PropertyMatch>>;

/**
 * Platform properties asking for per-action limits, read by the worker
 * (src/worker/actionLimits.ts): `memory-limit` (a size such as 512MiB),
 * `cpu-limit` (CPUs such as 1.5, or millicores such as 1500m), `process-limit`
 * (processes and threads at once).
 */
export const RESOURCE_LIMIT_PROPERTIES = ['memory-limit', 'cpu-limit', 'process-limit'] as const;

/** What a worker that enforces those limits (with cgroups) offers. */
export const RESOURCE_LIMITS_OFFER: PlatformProperty = { name: 'resource-limits', value: 'cgroup' };

/**
 * Properties that tune how a worker runs an action rather than which worker runs
 * it, each with the worker property it requires instead.
 *
 * - RESOURCE_LIMIT_PROPERTIES: whatever their value, they need a worker that
 *   enforces limits (RESOURCE_LIMITS_OFFER); which values a worker accepts is its
 *   own maximum, checked when it runs the action (FAILED_PRECONDITION above it).
 *
 * - `unixUID`, `unixGID`: BuildStream 2 sends them (when a project sets
 *   `sandbox: build-uid` / `build-gid`) for BuildBox's runners, whose input root is
 *   '/'. Granary's workers take them as a request for the hermetic sandbox (see
 *   sandboxProfileFor in src/worker/executeAction.ts), so they need a worker that
 *   offers `sandbox=hermetic`, never an unsandboxed one. The command runs as the
 *   user the worker runs as (root for `granary serve` started as root), whatever
 *   the value.
 *
 * `network` is deliberately not a hint: Granary's sandboxes never give actions the
 * network, and a sandboxing worker advertises `network=off`; an action asking for
 * `network=on` (BuildStream only does for non-isolated `bst shell`) matches only
 * workers that advertise it and otherwise fails at once instead of running offline.
 */
export const WORKER_HINT_PROPERTIES: ReadonlyMap<string, PlatformProperty> = new Map([
  ['unixUID', { name: 'sandbox', value: 'hermetic' }],
  ['unixGID', { name: 'sandbox', value: 'hermetic' }],
  ...RESOURCE_LIMIT_PROPERTIES.map((name) => [name, RESOURCE_LIMITS_OFFER] as const),
]);

/** Spellings of one ISA, each mapped to the REAPI lexicon's name. */
const ISA_ALIASES: ReadonlyMap<string, string> = new Map([
  ['x86-64', 'x86-64'],
  ['x86_64', 'x86-64'],
  ['amd64', 'x86-64'],
  ['x64', 'x86-64'],
  ['x86-32', 'x86-32'],
  ['i386', 'x86-32'],
  ['i686', 'x86-32'],
  ['x86', 'x86-32'],
  ['arm-a64', 'arm-a64'],
  ['aarch64', 'arm-a64'],
  ['arm64', 'arm-a64'],
]);

/**
 * The form a value is compared in: OSFamily lowercased, ISA through its aliases,
 * every other property as written.
 */
export function canonicalValue(name: string, value: string): string {
  if (name === 'OSFamily') return value.toLowerCase();
  if (name === 'ISA') return ISA_ALIASES.get(value.toLowerCase()) ?? value;
  return value;
}

/** The matching decisions the scheduler needs, built once from the configured rules. */
export interface PlatformMatcher {
  /** Whether a worker offering `worker` may run an action asking for `action`. */
  satisfies(worker: readonly PlatformProperty[], action: readonly PlatformProperty[]): boolean;
  /** How many of the action's `priority` properties the worker does not offer; fewer is preferred. */
  preferenceMisses(worker: readonly PlatformProperty[], action: readonly PlatformProperty[]): number;
  /** Throws INVALID_ARGUMENT for a platform no worker could ever satisfy (a `minimum` that is not a number). */
  validate(action: readonly PlatformProperty[]): void;
  /**
   * A stable name for the queue an action waits in: its properties that restrict
   * matching, canonical and sorted (`(any)` when none). Actions with one key are
   * interchangeable for every worker.
   */
  queueKey(action: readonly PlatformProperty[]): string;
  /** The rule for one property name. */
  ruleFor(name: string): PropertyMatch;
}

/** Builds the matcher for per-property rules (the defaults when none are given). */
export function platformMatcher(rules: PlatformMatchRules = {}): PlatformMatcher {
  const ruleFor = (name: string): PropertyMatch => rules[name] ?? 'exact';
  const offers = (worker: readonly PlatformProperty[], wanted: PlatformProperty): boolean => {
    const value = canonicalValue(wanted.name, wanted.value);
    return worker.some((p) => p.name === wanted.name && canonicalValue(p.name, p.value) === value);
  };
  const offersAtLeast = (worker: readonly PlatformProperty[], wanted: PlatformProperty): boolean => {
    const asked = numberOf(wanted.value);
    if (asked === undefined) return false;
    return worker.some((p) => {
      if (p.name !== wanted.name) return false;
      const offered = numberOf(p.value);
      return offered !== undefined && offered >= asked;
    });
  };
  const restricts = (name: string) => {
    const rule = ruleFor(name);
    return rule === 'exact' || rule === 'minimum';
  };
  return {
    ruleFor,
    satisfies(worker, action) {
      return action.every((wanted) => {
        if (!(wanted.name in rules)) {
          const hint = WORKER_HINT_PROPERTIES.get(wanted.name);
          if (hint) return offers(worker, hint);
        }
        switch (ruleFor(wanted.name)) {
          case 'exact':
            return offers(worker, wanted);
          case 'minimum':
            return offersAtLeast(worker, wanted);
          default:
            return true;
        }
      });
    },
    preferenceMisses(worker, action) {
      let misses = 0;
      for (const wanted of action) if (ruleFor(wanted.name) === 'priority' && !offers(worker, wanted)) misses++;
      return misses;
    },
    validate(action) {
      for (const { name, value } of action) {
        if (ruleFor(name) === 'minimum' && numberOf(value) === undefined) {
          throw invalidArgument(
            `platform property ${name} is matched as a minimum, so its value must be a number, got "${value}"`,
            [{ field: 'platform.properties', description: `${name} must be a number` }],
          );
        }
      }
    },
    queueKey(action) {
      const parts = action
        .filter((p) => restricts(p.name) || (!(p.name in rules) && WORKER_HINT_PROPERTIES.has(p.name)))
        .map((p) => `${p.name}=${canonicalValue(p.name, p.value)}`)
        .sort();
      return parts.length > 0 ? [...new Set(parts)].join(',') : '(any)';
    },
  };
}

/** The default matcher (every property exact, OSFamily and ISA tolerant). */
export const DEFAULT_PLATFORM_MATCHER: PlatformMatcher = platformMatcher();

/** Whether a worker may run an action under the default rules. */
export function satisfies(worker: readonly PlatformProperty[], action: readonly PlatformProperty[]): boolean {
  return DEFAULT_PLATFORM_MATCHER.satisfies(worker, action);
}

/**
 * Parses `NAME=RULE` settings (from the command line) into rules, rejecting
 * unknown rules with a message naming the allowed ones.
 */
export function parsePlatformMatchRules(settings: readonly string[]): Record<string, PropertyMatch> {
  const rules: Record<string, PropertyMatch> = {};
  for (const setting of settings) {
    const equals = setting.indexOf('=');
    const name = setting.slice(0, equals);
    const rule = setting.slice(equals + 1) as PropertyMatch;
    if (equals <= 0 || !PROPERTY_MATCHES.includes(rule)) {
      throw new Error(`a platform match must be NAME=${PROPERTY_MATCHES.join('|')}, got "${setting}"`);
    }
    rules[name] = rule;
  }
  return rules;
}

function numberOf(value: string): number | undefined {
  if (!/^\s*\d+(\.\d+)?\s*$/.test(value)) return undefined;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : undefined;
}
