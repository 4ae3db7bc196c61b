/**
 * Where a segment store's opening time goes, in this process, without the rest
 * of `granary serve`: fills a SegmentBlobStore with 4 KiB records (random
 * bytes under made-up SHA-256 keys: the store does not check content), closes
 * it, then times SegmentBlobStore.open with the index files of the sealed
 * segments, and again with them removed (every segment read and CRC-checked,
 * as before index files; the files are written again in the background), each
 * with the CPU time it took and the first with `rounds` repeats.
 *
 * Usage: node dist-test/bench/segmentReopen.js [--gib 2] [--rounds 3] [--directory DIR]
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { backgroundContext } from '../src/context/requestContext.js';
import { putBuffer } from '../src/storage/blobStore.js';
import { SegmentBlobStore } from '../src/storage/segmentBlobStore.js';

const BLOB_BYTES = 4096;
const { values } = parseArgs({
  options: {
    gib: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    directory: { type: 'string' },
  },
});
const context = backgroundContext();
const parent = values.directory ?? tmpdir();
const directory = await mkdtemp(join(parent, 'granary-segment-reopen-'));
// As granary serve's segment store under the store-scaling bench: room for everything, segments of 128 MiB.
const options = { directory, maximumSizeBytes: 64 * 1024 ** 3 };

async function timedOpen(): Promise<{ seconds: number; cpuSeconds: number; blobs: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const store = await SegmentBlobStore.open(options);
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const blobs = store.usage(context).blobCount;
  await store.close();
  return { seconds, cpuSeconds: (used.user + used.system) / 1e6, blobs };
}

try {
  console.log(`load average at start ${loadavg()[0]?.toFixed(1)}`);
  const store = await SegmentBlobStore.open(options);
  const blobs = Math.round((Number(values.gib) * 1024 ** 3) / BLOB_BYTES);
  const data = randomBytes(BLOB_BYTES);
  for (let i = 0; i < blobs; i += 200) {
    const batch: Promise<void>[] = [];
    for (let j = i; j < Math.min(blobs, i + 200); j++) {
      data.writeUInt32LE(j, 0);
      const hash = randomBytes(32).toString('hex');
      batch.push(putBuffer(context, store, { hash, sizeBytes: BLOB_BYTES }, Buffer.from(data)));
    }
    await Promise.all(batch);
  }
  await store.close();
  const names = await readdir(directory);
  const indexFiles = names.filter((name) => name.endsWith('.idx'));
  console.log(`${blobs} blobs in ${names.filter((n) => n.endsWith('.seg')).length} segments`);
  for (let round = 0; round < Number(values.rounds); round++) {
    console.log('with index files', JSON.stringify(await timedOpen()));
  }
  for (const name of indexFiles) await rm(join(directory, name));
  console.log('without index files', JSON.stringify(await timedOpen()));
  console.log(`load average at end ${loadavg()[0]?.toFixed(1)}`);
} finally {
  await rm(directory, { recursive: true, force: true });
}
