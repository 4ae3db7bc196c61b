/**
 * The child process of SegmentBlobStore's crash test: writes the blobs
 * testBlob(size, seed) for seeds 0, 1, 2, ... into a segment store, many at a
 * time, and prints each seed on its own line once its commit has resolved (the
 * blob is acknowledged). The parent kills it with SIGKILL at some point and
 * checks the store it leaves behind. With `batch`, each writer puts 8 blobs at a
 * time through putBatch (as BatchUpdateBlobs does) and acknowledges them when
 * the batch resolves.
 *
 *   node segmentCrashWriter.js DIRECTORY MAXIMUM_SIZE_BYTES [batch]
 */
import { pathToFileURL } from 'node:url';
import { backgroundContext } from '../../src/context/requestContext.js';
import { putBuffer, putBuffers } from '../../src/storage/blobStore.js';
import { SegmentBlobStore } from '../../src/storage/segmentBlobStore.js';
import { VerifyingBlobStore } from '../../src/storage/verifyingBlobStore.js';
import { testBlob } from './blobStoreContract.js';

/** The size of the blob with this seed: mostly small, some large enough to take several writes. */
export function crashBlobSize(seed: number): number {
  return seed % 7 === 0 ? 200_000 + seed : 100 + ((seed * 37) % 5000);
}

const [script, directory, maximumSizeBytes, mode] = process.argv.slice(1);
const isMain = script !== undefined && import.meta.url === pathToFileURL(script).href;
if (isMain && directory !== undefined && maximumSizeBytes !== undefined) {
  const context = backgroundContext();
  const store = await SegmentBlobStore.open({ directory, maximumSizeBytes: Number(maximumSizeBytes) });
  const verifying = new VerifyingBlobStore(store);
  let next = 0;
  const writer = async (): Promise<void> => {
    for (;;) {
      if (mode === 'batch') {
        const seeds = Array.from({ length: 8 }, () => next++);
        await putBuffers(
          context,
          verifying,
          seeds.map((seed) => testBlob(crashBlobSize(seed), seed)),
        );
        process.stdout.write(seeds.map((seed) => `${seed}\n`).join(''));
        continue;
      }
      const seed = next++;
      const { data, digest } = testBlob(crashBlobSize(seed), seed);
      await putBuffer(context, verifying, digest, data);
      process.stdout.write(`${seed}\n`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, writer));
}
