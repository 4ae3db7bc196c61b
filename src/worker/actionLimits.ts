/**
 * The limits an action runs under: what its platform asks for (the properties in
 * RESOURCE_LIMIT_PROPERTIES), within the worker's maxima; the maximum itself for
 * what it does not ask for. A value above the maximum is refused with
 * FAILED_PRECONDITION rather than lowered: a build step given less memory than it
 * asked for would fail later, and less clearly.
 */
import { availableParallelism, totalmem } from 'node:os';
import { RESOURCE_LIMIT_PROPERTIES } from '../execution/platformMatch.js';
import type { Platform_Property } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { formatSize, parseSize } from '../util/size.js';
import { failedPrecondition, invalidArgument } from '../util/status.js';
import type { ActionLimits } from './cgroups/actionCgroups.js';

export type { ActionLimits } from './cgroups/actionCgroups.js';

/** Default of --action-processes-max: far above what builds start, far below a fork bomb. */
export const DEFAULT_MAX_PROCESSES = 4096;

/** CPUs ("1.5", "2") or millicores ("1500m") as millicores; the smallest is 10m (1 ms per 100 ms period). */
export function parseCpu(text: string): number {
  const match = /^\s*(?:(\d+(?:\.\d+)?)|(\d+)m)\s*$/.exec(text);
  const millicores = match ? (match[1] !== undefined ? Number(match[1]) * 1000 : Number(match[2])) : Number.NaN;
  if (!Number.isFinite(millicores) || millicores < 10 || millicores > 1_000_000_000) {
    throw new Error(`invalid CPU amount "${text}" (examples: 1.5, 2, 500m; at least 10m)`);
  }
  return Math.round(millicores);
}

export function parseProcessCount(text: string): number {
  const count = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(count) || count < 1)
    throw new Error(`invalid process count "${text}" (a positive integer)`);
  return count;
}

export function formatCpu(millicores: number): string {
  return `${millicores / 1000} CPU`;
}

/** Whether the platform asks for any limit. */
export function asksForLimits(properties: readonly Platform_Property[]): boolean {
  return properties.some(({ name }) => (RESOURCE_LIMIT_PROPERTIES as readonly string[]).includes(name));
}

/** One kind of limit: its property, parser, maximum's flag and how a value is shown. */
const KINDS = [
  { property: 'memory-limit', key: 'memoryBytes', parse: parseSize, flag: '--action-memory-max', show: formatSize },
  { property: 'cpu-limit', key: 'cpuMillicores', parse: parseCpu, flag: '--action-cpu-max', show: formatCpu },
  {
    property: 'process-limit',
    key: 'maxProcesses',
    parse: parseProcessCount,
    flag: '--action-processes-max',
    show: String,
  },
] as const;

/**
 * The action's limits; INVALID_ARGUMENT for a value that is not one, and
 * FAILED_PRECONDITION for one above this worker's maximum. The last of repeated
 * properties wins, as for the environment.
 */
export function actionLimitsFor(properties: readonly Platform_Property[], maxima: ActionLimits): ActionLimits {
  const limits = { ...maxima };
  for (const kind of KINDS) {
    const asked = properties.filter(({ name }) => name === kind.property).at(-1);
    if (!asked) continue;
    let value: number;
    try {
      value = kind.parse(asked.value);
    } catch (error) {
      throw invalidArgument(`platform property ${kind.property}: ${(error as Error).message}`, [
        { field: 'platform.properties', description: `${kind.property} is not valid` },
      ]);
    }
    if (value > maxima[kind.key]) {
      throw failedPrecondition(
        `platform property ${kind.property}=${asked.value} is above this worker's maximum of ` +
          `${kind.show(maxima[kind.key])} (${kind.flag})`,
        [{ type: 'LIMIT', subject: kind.property, description: `at most ${kind.show(maxima[kind.key])}` }],
      );
    }
    limits[kind.key] = value;
  }
  return limits;
}

/** The maxima of a worker that sets none: this machine's memory and CPUs, DEFAULT_MAX_PROCESSES. */
export function defaultLimitMaxima(): ActionLimits {
  return { memoryBytes: totalmem(), cpuMillicores: availableParallelism() * 1000, maxProcesses: DEFAULT_MAX_PROCESSES };
}

export function describeLimits(limits: ActionLimits): string {
  return `memory ${formatSize(limits.memoryBytes)}, ${formatCpu(limits.cpuMillicores)}, ${limits.maxProcesses} processes`;
}
