/** `granary build`, `show`, `checkout` and `log`: the meta-build client's commands. */
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { backgroundContext } from '../context/requestContext.js';
import { elementLogReport } from '../metabuild/buildLog.js';
import { ProgressDisplay } from '../metabuild/progress.js';
import { relativizeSymlinks } from '../metabuild/symlinks.js';
import { BuildTimings } from '../metabuild/timings.js';
import { materializeTree } from '../tree/materialize.js';
import { type FlagSpec, flag, parseArgs, UsageError, usage } from './args.js';
import { CLIENT_FLAGS, openClient } from './buildClient.js';
import { assertCheckoutDestination } from './checkoutDestination.js';

const BUILD_FLAGS: Record<string, FlagSpec> = {
  ...CLIENT_FLAGS,
  jobs: { type: 'string', default: String(cpus().length), help: 'elements built at once' },
  'keep-going': { type: 'boolean', help: 'continue with independent elements after a failure' },
  rebuild: {
    type: 'boolean',
    help: 'build the named elements again even if cached (no artifact or action cache lookups for them)',
  },
  timings: { type: 'boolean', help: 'print how long each element spent in each step' },
};

export async function buildCommand(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, BUILD_FLAGS);
  if (flag(args, 'help'))
    return void console.log(usage('build ELEMENT... [flags]', 'Builds elements through the farm.', BUILD_FLAGS));
  if (args.positionals.length === 0) throw new UsageError('name at least one element to build');
  const jobs = Number(flag(args, 'jobs'));
  if (!Number.isSafeInteger(jobs) || jobs < 1) throw new UsageError('--jobs must be a positive integer');
  const display = new ProgressDisplay();
  const timings = flag(args, 'timings') === 'true' ? new BuildTimings() : undefined;
  const startedMs = Date.now();
  const client = await openClient(args, {
    jobs,
    keepGoing: flag(args, 'keep-going') === 'true',
    rebuild: flag(args, 'rebuild') === 'true' ? args.positionals : undefined,
    onEvent: (e) => {
      display.handle(e);
      timings?.handle(e);
    },
  });
  try {
    const loadedMs = Date.now();
    const { failed, built } = await client.builder.build(args.positionals);
    display.finish();
    if (timings) {
      const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
      console.error(`granary: loading ${seconds(loadedMs - startedMs)}, building ${seconds(Date.now() - loadedMs)}`);
      for (const line of timings.report()) console.error(line);
    }
    console.log(`granary: ${built.length} element(s) built, ${failed.length} failed`);
    // main() turns a thrown error into exit code 1 (setting process.exitCode here would be overwritten).
    if (failed.length > 0) throw new Error(`failed: ${failed.join(', ')}`);
  } finally {
    await client.close();
  }
}

export async function showCommand(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, CLIENT_FLAGS);
  if (flag(args, 'help'))
    return void console.log(usage('show ELEMENT... [flags]', 'Shows cache keys and states.', CLIENT_FLAGS));
  if (args.positionals.length === 0) throw new UsageError('name at least one element');
  const client = await openClient(args);
  try {
    for (const planned of await client.builder.plan(args.positionals)) {
      console.log(`${client.builder.stateOf(planned).padEnd(10)} ${planned.key.slice(0, 16)} ${planned.element.name}`);
    }
  } finally {
    await client.close();
  }
}

export async function checkoutCommand(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, CLIENT_FLAGS);
  if (flag(args, 'help'))
    return void console.log(
      usage('checkout ELEMENT DIR [flags]', "Writes an element's artifact to DIR (new or empty).", CLIENT_FLAGS),
    );
  const [element, directory] = args.positionals;
  if (!element || !directory || args.positionals.length > 2) throw new UsageError('expected ELEMENT DIR');
  await assertCheckoutDestination(resolve(directory), directory);
  const client = await openClient(args, { targets: [element] });
  try {
    const planned = (await client.builder.plan([element])).at(-1);
    if (!planned?.artifact)
      throw new Error(
        `${element} is not built (its cache key ${planned?.key.slice(0, 16)} has no artifact); run granary build ${element}`,
      );
    // Like BuildStream 1's `bst checkout`, absolute symlinks are made relative, so they stay inside DIR;
    // BuildStream 2's `bst artifact checkout` writes them as they are.
    const root =
      planned.element.format === 1
        ? await relativizeSymlinks(client.cas, planned.artifact.root)
        : planned.artifact.root;
    const files = await materializeTree(backgroundContext(), client.cas, root, resolve(directory));
    console.log(`granary: checked out ${element} (${files} files) to ${directory}`);
  } finally {
    await client.close();
  }
}

export async function logCommand(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, CLIENT_FLAGS);
  if (flag(args, 'help'))
    return void console.log(
      usage(
        'log ELEMENT [flags]',
        'Prints the build log of an element: each command, whole, then its output and errors in order.\n' +
          'For an element that ran no commands (import, stack), the logs of the elements it depends on.',
        CLIENT_FLAGS,
      ),
    );
  const [element] = args.positionals;
  if (!element || args.positionals.length > 1) throw new UsageError('expected ELEMENT');
  const client = await openClient(args);
  try {
    process.stdout.write(await elementLogReport(client.cas, await client.builder.plan([element])));
  } finally {
    await client.close();
  }
}
