/**
 * The REAPI Action of a BuildStream 2 element that runs commands (build
 * elements, script elements, and compose elements that integrate).
 *
 * BuildStream 2 runs an element's commands as one batch: a single
 * `sh -c -e SCRIPT` whose script runs each command as `sh -c -e 'COMMAND\n'`
 * in a subshell with `set -ex`, stopping at the first failure, in the working
 * directory, with the element's environment. Integration commands of the
 * staged dependencies run first, each with `sh -e -c` from '/', in that
 * dependency's environment. Granary writes the same script (plus marker
 * lines naming each command, for progress and failure reports) into one
 * Action whose input root is the whole sandbox and whose output is the
 * directory the element collects.
 */
import { posix } from 'node:path';
import type { Digest } from '../digest/digest.js';
import type { PlatformProperty } from '../execution/types.js';
import { encodeAction, ONE_LOG_STREAM, type PreparedAction, shellQuote, stepMarkerLine } from './buildAction.js';

/** The integration commands of one staged dependency and the environment they run in. */
export interface IntegrationStep {
  readonly element: string;
  readonly commands: readonly string[];
  readonly environment: Readonly<Record<string, string>>;
}

/** A group of commands, labelled in the log ('configure-commands', 'commands', ...). */
export interface CommandGroup {
  readonly label: string;
  readonly commands: readonly string[];
}

/** Shell lines running the integration commands, each in its dependency's environment, from '/'. */
export function integrationLines(
  steps: readonly IntegrationStep[],
  environment: Readonly<Record<string, string>>,
): string[] {
  const lines: string[] = [];
  for (const step of steps) {
    const setup: string[] = ['cd /'];
    for (const name of Object.keys(environment).sort()) if (!(name in step.environment)) setup.push(`unset ${name}`);
    for (const [name, value] of Object.entries(step.environment)) {
      if (environment[name] !== value) setup.push(`export ${name}=${shellQuote(value)}`);
    }
    step.commands.forEach((command, index) => {
      lines.push(stepMarkerLine(`integration of ${step.element} ${index + 1}/${step.commands.length}`, command));
      lines.push(`(${setup.join('; ')}; sh -e -c ${shellQuote(command)}) || exit 1`);
    });
  }
  return lines;
}

/** Shell lines running command groups the way BuildStream 2's sandbox batches do. */
export function commandLines(groups: readonly CommandGroup[]): string[] {
  const lines: string[] = [];
  for (const group of groups) {
    group.commands.forEach((command, index) => {
      lines.push(stepMarkerLine(`${group.label} ${index + 1}/${group.commands.length}`, command));
      const invocation = `sh -c -e ${shellQuote(`${command}\n`)}`;
      const failure = `echo Command ${shellQuote(`'${command}'`)} failed with exitcode $? >&2 ; exit 1`;
      lines.push(`(set -ex; ${invocation}) || (${failure})`);
    });
  }
  return lines;
}

export interface Action2Spec {
  readonly lines: readonly string[];
  readonly environment: Readonly<Record<string, string>>;
  /** Absolute path in the sandbox. */
  readonly workingDirectory: string;
  /** Absolute path in the sandbox of the directory collected as the result ('/' for the whole root). */
  readonly outputDirectory: string;
  readonly platform: readonly PlatformProperty[];
  readonly inputRoot: Digest;
}

/** Encodes the Action and Command of a script. */
export function prepareAction2(spec: Action2Spec): PreparedAction {
  const workingDirectory = spec.workingDirectory.replace(/^\/+/, '');
  const relative = posix.relative(`/${workingDirectory}`, spec.outputDirectory);
  const installOutput = relative === '' ? '.' : relative;
  return encodeAction({
    arguments: ['sh', '-c', '-e', `${[ONE_LOG_STREAM, ...spec.lines].join('\n')}\n`],
    environment: spec.environment,
    workingDirectory,
    installOutput,
    platform: spec.platform,
    inputRoot: spec.inputRoot,
  });
}
