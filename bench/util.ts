/** Timing, statistics and test-data helpers shared by the benchmark modules. */
import { randomBytes } from 'node:crypto';
import { type Digest, digestOf } from '../src/digest/digest.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** Milliseconds from a monotonic clock. */
export function nowMs(): number {
  return performance.now();
}

/** Runs fn once and returns the elapsed seconds. */
export async function timeSeconds(fn: () => Promise<unknown> | unknown): Promise<number> {
  const start = nowMs();
  await fn();
  return (nowMs() - start) / 1000;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export function maximum(values: readonly number[]): number {
  return values.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);
}

/** Per-run rates (something per second) of repeated runs. */
export interface Sample {
  rates: number[];
}

/**
 * Repeats `once` (which returns how many units it processed) `runs` times and
 * collects the rate of each run.
 */
export async function sample(runs: number, once: () => Promise<number>): Promise<Sample> {
  const rates: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = nowMs();
    const units = await once();
    rates.push(units / ((nowMs() - start) / 1000));
  }
  return { rates };
}

/**
 * Calls `step` (which returns how many units it processed) from `concurrency`
 * loops until `durationMs` has passed, and returns units per second.
 */
export async function sustained(
  durationMs: number,
  concurrency: number,
  step: (worker: number) => Promise<number>,
): Promise<number> {
  const start = nowMs();
  const deadline = start + durationMs;
  let units = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (nowMs() < deadline) {
        // Not `units += await step()`: that reads `units` before awaiting and loses the other loops' counts.
        const done = await step(worker);
        units += done;
      }
    }),
  );
  return units / ((nowMs() - start) / 1000);
}

/**
 * Makes blobs of one size that no store has seen: a random buffer whose first
 * bytes are overwritten with a fresh random tag each time. The buffer is reused,
 * so a returned blob is only valid until the next call.
 */
export class FreshBlobs {
  private readonly buffer: Buffer;

  constructor(readonly sizeBytes: number) {
    this.buffer = randomBytes(sizeBytes);
  }

  next(): { digest: Digest; data: Buffer } {
    randomBytes(Math.min(32, this.sizeBytes)).copy(this.buffer, 0);
    return { digest: digestOf(this.buffer), data: this.buffer };
  }
}

/** A random SHA-256-shaped digest that names no stored blob. */
export function absentDigest(sizeBytes = 1234): Digest {
  return { hash: randomBytes(32).toString('hex'), sizeBytes };
}

/** `count` distinct random blobs of `sizeBytes` each (slices of one allocation). */
export function randomBlobs(count: number, sizeBytes: number): Array<{ digest: Digest; data: Buffer }> {
  const all = randomBytes(count * sizeBytes);
  return Array.from({ length: count }, (_, i) => {
    const data = all.subarray(i * sizeBytes, (i + 1) * sizeBytes);
    return { digest: digestOf(data), data };
  });
}
