/**
 * Turns a build element (manual, make, autotools, cmake) into one REAPI Action:
 * the input root is the dependencies' artifacts staged at / with the sources at
 * %{build-root}; the command runs every configure, build, install and strip
 * command in order, each with `sh -e -c` as BuildStream does, in the build root;
 * the output is what ends up under %{install-root}. The action asks for the
 * hermetic sandbox, where the input root is the whole file system.
 */
import { posix } from 'node:path';
import { type Digest, digestOf } from '../digest/digest.js';
import type { PlatformProperty } from '../execution/types.js';
import {
  Action,
  Command,
  Command_OutputDirectoryFormat,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { BuildConfig, Element } from './project/index.js';

export const PHASES = [
  ['configure-commands', 'configureCommands'],
  ['build-commands', 'buildCommands'],
  ['install-commands', 'installCommands'],
  ['strip-commands', 'stripCommands'],
] as const;

/** Marker lines in the build log that name the command about to run (see buildLog.ts). */
export const STEP_MARKER = '\u2063granary-step ';
/** Marks the further lines of a command of several lines, after its STEP_MARKER line. */
export const STEP_CONTINUATION = '\u2063granary-step+ ';

/**
 * The first line of every build script: the commands' standard output joins their
 * standard error, so the log is one stream in the order things happened (as in
 * BuildStream's own logs) rather than all output followed by all errors.
 */
export const ONE_LOG_STREAM = 'exec 1>&2';

export interface PreparedAction {
  action: Action;
  command: Command;
  actionDigest: Digest;
  /** Blobs to upload: the encoded Action and Command. */
  blobs: Array<{ digest: Digest; data: Buffer }>;
  /** Output path, relative to the working directory, of the install root. */
  installOutput: string;
}

export function buildScript(config: BuildConfig, installRoot: string): string {
  const lines = [ONE_LOG_STREAM, 'set -e', `mkdir -p ${shellQuote(installRoot)}`];
  for (const [phase, field] of PHASES) {
    const commands = config[field];
    commands.forEach((command, i) => {
      const label = `${phase} ${i + 1}/${commands.length}`;
      lines.push(stepMarkerLine(label, command));
      lines.push(`sh -e -c ${shellQuote(command)}`);
    });
  }
  return `${lines.join('\n')}\n`;
}

export function prepareBuildAction(element: Element, inputRoot: Digest, platform: PlatformProperty[]): PreparedAction {
  if (element.config.type !== 'build') throw new Error(`${element.name} is not a build element`);
  const buildRoot = element.variables['build-root'] ?? `/buildstream/${element.name}`;
  const installRoot = element.variables['install-root'] ?? '/buildstream-install';
  const workingDirectory = buildRoot.replace(/^\/+/, '');
  const installOutput = posix.relative(`/${workingDirectory}`, installRoot);
  return encodeAction({
    arguments: ['sh', '-e', '-c', buildScript(element.config, installRoot)],
    environment: element.environment,
    workingDirectory,
    installOutput,
    platform,
    inputRoot,
  });
}

/** What an Action runs, for encodeAction. */
export interface ActionSpec {
  readonly arguments: readonly string[];
  readonly environment: Readonly<Record<string, string>>;
  /** Relative to the input root. */
  readonly workingDirectory: string;
  /** The one output path, relative to the working directory. */
  readonly installOutput: string;
  readonly platform: readonly PlatformProperty[];
  readonly inputRoot: Digest;
}

/** Encodes the Command and Action of both formats' build steps (environment sorted, one output path, Tree outputs). */
export function encodeAction(spec: ActionSpec): PreparedAction {
  const command: Command = {
    arguments: [...spec.arguments],
    environmentVariables: Object.entries(spec.environment)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, value]) => ({ name, value })),
    outputFiles: [],
    outputDirectories: [],
    outputPaths: [spec.installOutput],
    platform: { properties: spec.platform.map((p) => ({ name: p.name, value: p.value })) },
    workingDirectory: spec.workingDirectory,
    outputNodeProperties: [],
    outputDirectoryFormat: Command_OutputDirectoryFormat.TREE_AND_DIRECTORY,
  };
  const commandData = Buffer.from(Command.encode(command).finish());
  const commandDigest = digestOf(commandData);
  const action: Action = {
    commandDigest,
    inputRootDigest: spec.inputRoot,
    timeout: undefined,
    doNotCache: false,
    salt: Buffer.alloc(0),
    platform: command.platform,
  };
  const actionData = Buffer.from(Action.encode(action).finish());
  const actionDigest = digestOf(actionData);
  return {
    action,
    command,
    actionDigest,
    installOutput: spec.installOutput,
    blobs: [
      { digest: commandDigest, data: commandData },
      { digest: actionDigest, data: actionData },
    ],
  };
}

/**
 * The shell line that logs the command about to run, whole: STEP_MARKER, its label
 * and its first line, then a STEP_CONTINUATION line for each further line (trailing
 * empty lines, as YAML block scalars leave, dropped). On stderr.
 */
export function stepMarkerLine(label: string, command: string): string {
  const [first = '', ...rest] = command.replace(/\n+$/, '').split('\n');
  const lines = [`${STEP_MARKER}${label}: ${first}`, ...rest.map((line) => `${STEP_CONTINUATION}${line}`)];
  return `printf '%s\\n' ${lines.map(shellQuote).join(' ')} >&2`;
}

export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
