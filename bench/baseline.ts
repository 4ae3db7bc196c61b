/**
 * What this machine can do without Granary: hash with node:crypto and write
 * sequentially to the benchmark's temporary directory. Measured in the same run
 * as everything else, so ratios stay meaningful on a noisy machine.
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { MiB, maximum, nowMs } from './util.js';

export interface Baseline {
  /** Best of several runs, MB/s (10^6 bytes/s). */
  sha256MBps: number;
  /** One 256 MiB write + fsync, MB/s. */
  diskWriteMBps: number;
}

export async function measureSha256(runs = 5): Promise<number> {
  const data = randomBytes(64 * MiB);
  createHash('sha256').update(data.subarray(0, MiB)).digest(); // warm-up
  const rates: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = nowMs();
    createHash('sha256').update(data).digest();
    rates.push(data.length / 1e6 / ((nowMs() - start) / 1000));
  }
  return maximum(rates);
}

/** Writes `totalBytes` in 8 MiB writes to a new file in `directory`, then fsyncs. */
export async function measureDiskWrite(directory: string, totalBytes = 256 * MiB): Promise<number> {
  const chunk = randomBytes(8 * MiB);
  const path = join(directory, 'disk-baseline');
  const start = nowMs();
  const handle = await open(path, 'w');
  try {
    for (let written = 0; written < totalBytes; written += chunk.length) await handle.write(chunk);
    await handle.sync();
  } finally {
    await handle.close();
  }
  const seconds = (nowMs() - start) / 1000;
  await unlink(path);
  return totalBytes / 1e6 / seconds;
}
