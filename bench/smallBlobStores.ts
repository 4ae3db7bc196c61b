/**
 * The CPU cost per 4 KiB blob of the CAS's batch operations over each local
 * backend, in this process, without gRPC: ContentAddressableStorage.batchUpdate
 * and batchRead (200 blobs per call, as the side-by-side bench sends them) over
 * a verified DiskBlobStore and over a verified SegmentBlobStore with a choice
 * of synchronous I/O threshold. It is how SegmentBlobStore's default
 * (synchronous reads and appends up to 64 KiB) was chosen: run each variant a
 * few times and compare (docs/performance.md).
 *
 * Usage: node dist-test/bench/smallBlobStores.js disk|segments [--sync-bytes N] [--blobs N]
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ContentAddressableStorage } from '../src/cas/contentAddressableStorage.js';
import { backgroundContext } from '../src/context/requestContext.js';
import { SHA256 } from '../src/digest/digest.js';
import { DiskBlobStore } from '../src/storage/diskBlobStore.js';
import { SegmentBlobStore } from '../src/storage/segmentBlobStore.js';
import { VerifyingBlobStore } from '../src/storage/verifyingBlobStore.js';

const BATCH = 200;
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'sync-bytes': { type: 'string' }, blobs: { type: 'string', default: '10000' } },
});
const kind = positionals[0];
if (kind !== 'disk' && kind !== 'segments') {
  console.error('usage: smallBlobStores.js disk|segments [--sync-bytes N] [--blobs N]');
  process.exit(2);
}
const count = Number(values.blobs);
const context = backgroundContext();
const directory = await mkdtemp(join(tmpdir(), 'granary-small-blobs-'));
const maximumSizeBytes = 8 * 1024 ** 3;
const inner =
  kind === 'disk'
    ? await DiskBlobStore.open({ directory, maximumSizeBytes })
    : await SegmentBlobStore.open({
        directory,
        maximumSizeBytes,
        ...(values['sync-bytes'] === undefined ? {} : { synchronousIoBytes: Number(values['sync-bytes']) }),
      });
const cas = new ContentAddressableStorage(new VerifyingBlobStore(inner), 4 * 1024 * 1024);
const items = Array.from({ length: count }, () => {
  const data = randomBytes(4096);
  return { digest: { hash: createHash('sha256').update(data).digest('hex'), sizeBytes: 4096 }, data };
});

/** Runs the batches and prints CPU microseconds per blob and blobs per second. */
async function measure(label: string, run: (first: number) => Promise<Array<{ error?: Error }>>): Promise<void> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (let first = 0; first < count; first += BATCH) {
    const failed = (await run(first)).find((result) => result.error);
    if (failed) throw failed.error;
  }
  const used = process.cpuUsage(cpu);
  const seconds = (performance.now() - start) / 1000;
  const perBlob = (used.user + used.system) / count;
  console.log(`${kind} ${label}: ${perBlob.toFixed(1)} µs CPU/blob, ${(count / seconds).toFixed(0)} blobs/s`);
}

try {
  await measure('batchUpdate', (first) => cas.batchUpdate(context, items.slice(first, first + BATCH), SHA256));
  await measure('batchRead', (first) =>
    cas.batchRead(
      context,
      items.slice(first, first + BATCH).map((item) => item.digest),
      SHA256,
    ),
  );
} finally {
  await inner.close();
  await rm(directory, { recursive: true, force: true });
}
