/**
 * `granary storage`: one storage node of a farm on several machines. It keeps a
 * share of the CAS on its disk and serves it to the farm's frontends (`granary
 * serve --storage-node grpc://HOST:PORT`), which decide which blobs it holds. It
 * has no authentication of its own: run it on the farm's private network.
 */
import { resolve } from 'node:path';
import { startStorageNode } from '../server/storageNode.js';
import { formatSize, parseSize } from '../util/size.js';
import { type FlagSpec, flag, parseArgs, UsageError, usage } from './args.js';
import { ensureFlagDirectory } from './directoryFlag.js';
import { inTermsOfListenFlag } from './listenFlag.js';
import { onShutdownRequests } from './shutdownRequests.js';

const FLAGS: Record<string, FlagSpec> = {
  listen: { type: 'string', default: '127.0.0.1:8981', help: 'address to serve the frontends on, HOST:PORT' },
  data: { type: 'string', default: './.granary-storage', help: 'directory for the blobs' },
  'max-size': { type: 'string', default: '10GiB', help: 'upper bound on stored blobs (e.g. 500GiB); LRU eviction' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function storageCommand(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, FLAGS);
  if (flag(args, 'help')) {
    console.log(
      usage(
        'storage [flags]',
        "Serves one storage node's share of a farm's CAS (CAS, ByteStream, Capabilities).",
        FLAGS,
      ),
    );
    return;
  }
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${args.positionals[0]}`);
  const listen = flag(args, 'listen') as string;
  if (!/^.+:\d+$/.test(listen)) throw new UsageError(`--listen must be HOST:PORT, got "${listen}"`);
  const directory = resolve(flag(args, 'data') as string);
  let maximumSizeBytes: number;
  try {
    maximumSizeBytes = parseSize(flag(args, 'max-size') as string);
  } catch (error) {
    throw new UsageError(`--max-size: ${(error as Error).message}`);
  }
  await ensureFlagDirectory(directory, 'data');
  const node = await startStorageNode({ listen, directory, maximumSizeBytes }).catch((error: unknown) => {
    throw inTermsOfListenFlag(error, listen);
  });
  console.log(
    `granary storage: serving on ${node.address} (blobs in ${directory}, up to ${formatSize(maximumSizeBytes)})`,
  );
  let stopListening = () => {};
  await new Promise<void>((resolveStop) => {
    stopListening = onShutdownRequests({
      graceful: (reason) => {
        console.log(`granary storage: ${reason} received, finishing calls in flight (again to stop at once)`);
        node.close().then(resolveStop, (error: unknown) => {
          console.error('granary storage: error while stopping:', error);
          resolveStop();
        });
      },
      // Like a crash, which the disk store survives (blobs are committed by rename).
      immediate: (reason, exitCode) => {
        console.log(`granary storage: ${reason}: stopping at once`);
        process.exit(exitCode);
      },
    });
  });
  stopListening();
  console.log('granary storage: stopped');
}
