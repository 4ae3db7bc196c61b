/**
 * Bounded concurrency for the worker's many small I/O steps (fetching blobs,
 * linking files, hashing outputs): unbounded Promise.all over thousands of files
 * would exhaust file descriptors and sockets.
 */

/**
 * Runs fn over items with at most `limit` calls in flight. After the first failure
 * no new calls start; in-flight ones are awaited, then the first error is thrown.
 */
export async function forEachLimit<T>(
  items: Iterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const iterator = items[Symbol.iterator]();
  let failed = false;
  let firstError: unknown;
  const lane = async () => {
    while (!failed) {
      const next = iterator.next();
      if (next.done) return;
      try {
        await fn(next.value);
      } catch (error) {
        if (!failed) {
          failed = true;
          firstError = error;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, lane));
  if (failed) throw firstError;
}

/** Limits how many async operations run at once; a caller never holds it while waiting on others. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
