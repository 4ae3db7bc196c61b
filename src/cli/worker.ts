/** `granary worker`: a standalone Remote Workers API bot that runs actions. */

import { existsSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { PlatformProperty } from '../execution/types.js';
import { parseSize } from '../util/size.js';
import { type SandboxChoice, startWorker } from '../worker/workerProcess.js';
import { type FlagSpec, flag, parseArgs, parseDuration, UsageError, usage } from './args.js';

const FLAGS: Record<string, FlagSpec> = {
  server: { type: 'string', default: 'grpc://127.0.0.1:8980', help: 'the farm to serve, grpc://HOST:PORT' },
  slots: { type: 'string', default: String(cpus().length), help: 'actions run at once' },
  platform: { type: 'list', help: 'a platform property KEY=VALUE this worker offers (repeatable)' },
  instance: { type: 'string', default: '', help: 'instance name of the bot session' },
  'work-dir': { type: 'string', default: './.granary-worker', help: 'scratch space and local blob cache' },
  'cache-size': { type: 'string', default: '4GiB', help: 'upper bound of the local blob cache' },
  sandbox: { type: 'string', default: 'auto', help: 'bubblewrap (auto uses it when installed) or none' },
  'default-timeout': {
    type: 'string',
    default: '15m',
    help: 'timeout of actions that set none, when the server does not say (a Granary server always does)',
  },
  'bot-id': { type: 'string', help: 'bot id (default HOSTNAME-PID)' },
  'execution-root': {
    type: 'list',
    help: 'NAME=DIR: actions asking for execution-root=NAME see DIR/usr, /bin, /lib*, /etc (repeatable)',
  },
  help: { type: 'boolean', help: 'show this help' },
};

export function parsePlatform(values: readonly string[]): PlatformProperty[] {
  return values.map((text) => {
    const eq = text.indexOf('=');
    if (eq <= 0) throw new UsageError(`--platform expects KEY=VALUE, got "${text}"`);
    return { name: text.slice(0, eq), value: text.slice(eq + 1) };
  });
}

/** OSFamily and ISA of this machine, named as REAPI clients name them. */
export function hostPlatform(): PlatformProperty[] {
  const isa = process.arch === 'x64' ? 'x86-64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
  return [
    { name: 'OSFamily', value: process.platform },
    { name: 'ISA', value: isa },
  ];
}

export async function workerCommand(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, FLAGS);
  if (flag(args, 'help')) {
    console.log(usage('worker [flags]', 'Runs actions for a Granary farm (Remote Workers API bot).', FLAGS));
    return;
  }
  const slots = Number(flag(args, 'slots'));
  if (!Number.isSafeInteger(slots) || slots < 1) throw new UsageError('--slots must be a positive integer');
  const sandbox = flag(args, 'sandbox') as SandboxChoice;
  if (!['auto', 'bubblewrap', 'none'].includes(sandbox))
    throw new UsageError('--sandbox must be auto, bubblewrap or none');
  const explicit = parsePlatform(args.flags.get('platform') ?? []);
  // Explicit properties replace the host defaults of the same name.
  const platform = [...hostPlatform().filter((p) => !explicit.some((e) => e.name === p.name)), ...explicit];
  const worker = await startWorker({
    server: flag(args, 'server') as string,
    instanceName: flag(args, 'instance') ?? '',
    botId: flag(args, 'bot-id') ?? `${hostname()}-${process.pid}`,
    slots,
    platform,
    workDirectory: resolve(flag(args, 'work-dir') as string),
    cacheSizeBytes: parseSize(flag(args, 'cache-size') as string),
    sandbox,
    defaultTimeoutMs: parseDuration(flag(args, 'default-timeout') as string),
    executionRoots: parseExecutionRoots(args.flags.get('execution-root') ?? []),
  });
  await new Promise<void>((resolveStop) => {
    const stop = () => {
      worker.stop().then(resolveStop, resolveStop);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

function parseExecutionRoots(values: readonly string[]): Record<string, string> {
  const roots: Record<string, string> = {};
  for (const text of values) {
    const eq = text.indexOf('=');
    if (eq <= 0 || eq === text.length - 1) throw new UsageError(`--execution-root expects NAME=DIR, got "${text}"`);
    const directory = resolve(text.slice(eq + 1));
    if (!existsSync(join(directory, 'usr')))
      throw new UsageError(`--execution-root ${text}: ${directory}/usr does not exist`);
    roots[text.slice(0, eq)] = directory;
  }
  return roots;
}
