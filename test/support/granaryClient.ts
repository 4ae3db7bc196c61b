/**
 * Running `granary` client commands (build, checkout, show, publish, ...) as child processes
 * the way a user would, with caches and configuration of their own, and reading their
 * progress lines.
 */
import { join } from 'node:path';
import { type CommandRun, runCommand } from './commands.js';
import { GRANARY_BIN } from './repository.js';

/**
 * The environment of client commands: caches and configuration in a scratch
 * directory, so nothing is shared with the user's own (no client.yaml, no
 * embedded farm data, no downloads).
 */
export function clientEnvironment(scratch: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: join(scratch, 'home'),
    XDG_CACHE_HOME: join(scratch, 'cache'),
    XDG_CONFIG_HOME: join(scratch, 'config'),
    LANG: 'C.UTF-8',
  };
}

/** `granary ARGS...` in `cwd`. */
export function granary(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<CommandRun> {
  return runCommand(process.execPath, [GRANARY_BIN, ...args], { cwd, env });
}

/** The progress line `[mm:ss] STATE    ELEMENT` of an element in a build's output. */
export function stateLine(state: string, element: string): RegExp {
  return new RegExp(`^\\[\\d{2}:\\d{2}\\] ${state}\\s+${element.replace(/\./g, '\\.')}$`, 'm');
}
