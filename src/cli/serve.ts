/** `granary serve`: the all-in-one farm on local disk. */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { startStorageServer } from '../server/storageServer.js';
import { formatSize, parseSize } from '../util/size.js';
import { type FlagSpec, flag, parseArgs, parseDuration, UsageError, usage } from './args.js';

const FLAGS: Record<string, FlagSpec> = {
  listen: { type: 'string', default: '127.0.0.1:8980', help: 'address to listen on, HOST:PORT' },
  data: { type: 'string', default: './.granary', help: 'directory for the CAS, action cache and state' },
  'max-size': { type: 'string', default: '10GiB', help: 'upper bound on stored data (e.g. 10GiB, 500MiB)' },
  'retention-grace': {
    type: 'string',
    default: '3h',
    help: 'keep blobs referenced by a served action result at least this long',
  },
  help: { type: 'boolean', help: 'show this help' },
};

export async function serveCommand(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, FLAGS);
  if (flag(args, 'help')) {
    console.log(usage('serve [flags]', 'Runs the all-in-one Granary farm on this machine.', FLAGS));
    return;
  }
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${args.positionals[0]}`);
  const listen = flag(args, 'listen') as string;
  if (!/^.+:\d+$/.test(listen)) throw new UsageError(`--listen must be HOST:PORT, got "${listen}"`);
  const data = resolve(flag(args, 'data') as string);
  const maximumSizeBytes = parseSize(flag(args, 'max-size') as string);
  const retentionGraceMs = parseDuration(flag(args, 'retention-grace') as string);
  await mkdir(data, { recursive: true });
  // The action cache holds small entries; give it a small slice of the budget.
  const actionCacheBytes = Math.max(16 * 1024 * 1024, Math.floor(maximumSizeBytes / 50));
  const server = await startStorageServer({
    listen,
    cas: { disk: { directory: join(data, 'cas'), maximumSizeBytes: maximumSizeBytes - Math.min(actionCacheBytes, maximumSizeBytes / 2) } },
    actionCache: { disk: { directory: join(data, 'ac'), maximumSizeBytes: actionCacheBytes } },
    retentionGraceMs,
  });
  const url = `grpc://${server.address}`;
  console.log(`granary: serving on ${server.address} (data in ${data}, up to ${formatSize(maximumSizeBytes)})`);
  console.log('granary: use it from Bazel with:');
  console.log(`  --remote_cache=${url}`);
  console.log('granary: press Ctrl-C to stop');
  await new Promise<void>((resolveStop) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`granary: ${signal} received, finishing in-flight requests`);
      server.close().then(resolveStop, (error: unknown) => {
        console.error('granary: error while stopping:', error);
        resolveStop();
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  console.log('granary: stopped');
}
