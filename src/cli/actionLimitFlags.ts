/**
 * The flags of the per-action limits' maxima, shared by `granary worker` and
 * `granary serve` (which hands them to its embedded worker).
 */
import { availableParallelism, totalmem } from 'node:os';
import { formatSize, parseSize } from '../util/size.js';
import { DEFAULT_MAX_PROCESSES, parseCpu, parseProcessCount } from '../worker/actionLimits.js';
import type { ActionLimits } from '../worker/cgroups/actionCgroups.js';
import { type FlagSpec, flag, type ParsedArgs, UsageError } from './args.js';
import type { ConfigSetting } from './configFile.js';

export const ACTION_LIMIT_FLAGS: Record<string, FlagSpec> = {
  'action-memory-max': {
    type: 'string',
    default: formatSize(totalmem()),
    help: 'most memory an action may ask for (memory-limit), and its limit when it asks for none (needs cgroups)',
  },
  'action-cpu-max': {
    type: 'string',
    default: String(availableParallelism()),
    help: 'most CPUs an action may ask for (cpu-limit, e.g. 1.5 or 500m), and its limit when it asks for none',
  },
  'action-processes-max': {
    type: 'string',
    default: String(DEFAULT_MAX_PROCESSES),
    help: 'most processes and threads an action may ask for (process-limit), and its limit when it asks for none',
  },
};

/** The configuration file settings of those flags, under `prefix` (e.g. 'embeddedWorker.'). */
export function actionLimitSettings(prefix: string): ConfigSetting[] {
  return [
    { path: `${prefix}actionMemoryMax`, flag: 'action-memory-max', kind: 'string' },
    { path: `${prefix}actionCpuMax`, flag: 'action-cpu-max', kind: 'string' },
    { path: `${prefix}actionProcessesMax`, flag: 'action-processes-max', kind: 'string' },
  ];
}

export function parseActionLimitFlags(args: ParsedArgs): ActionLimits {
  const parse = <T>(name: string, parser: (text: string) => T): T => {
    try {
      return parser(flag(args, name) as string);
    } catch (error) {
      throw new UsageError(`--${name}: ${(error as Error).message}`);
    }
  };
  return {
    memoryBytes: parse('action-memory-max', parseSize),
    cpuMillicores: parse('action-cpu-max', parseCpu),
    maxProcesses: parse('action-processes-max', parseProcessCount),
  };
}

/** The same flags as arguments of a `granary worker` (serve's embedded worker). */
export function actionLimitArguments(args: ParsedArgs): string[] {
  return Object.keys(ACTION_LIMIT_FLAGS).flatMap((name) => [`--${name}`, flag(args, name) as string]);
}
