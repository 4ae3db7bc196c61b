/**
 * Bounded concurrency, the one copy every layer uses: unbounded Promise.all over
 * thousands of blobs, files or directories would exhaust file descriptors,
 * sockets and memory, and one-at-a-time loops leave the disk and network idle.
 */

/**
 * Maps `fn` over `items` with at most `limit` calls in flight, keeping the
 * results in the order of the items. After the first failure no new call
 * starts; the calls in flight are awaited, then the first error is thrown (so no
 * work is left running behind the caller's back).
 */
export async function mapLimited<T, R>(
  items: Iterable<T>,
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  const iterator = items[Symbol.iterator]();
  let position = 0;
  let failed = false;
  let firstError: unknown;
  const lane = async () => {
    while (!failed) {
      const next = iterator.next();
      if (next.done) return;
      const index = position++;
      try {
        results[index] = await fn(next.value, index);
      } catch (error) {
        if (!failed) {
          failed = true;
          firstError = error;
        }
      }
    }
  };
  const lanes = Array.isArray(items) ? Math.min(Math.max(1, limit), Math.max(1, items.length)) : Math.max(1, limit);
  await Promise.all(Array.from({ length: lanes }, lane));
  if (failed) throw firstError;
  return results;
}

/** Runs `fn` over `items` with at most `limit` calls in flight; failures as in mapLimited. */
export async function forEachLimit<T>(
  items: Iterable<T>,
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  await mapLimited(items, limit, fn);
}

/**
 * Limits how many async operations run at once across callers that do not share
 * a list (a recursive directory walk, say). A caller must never hold it while
 * waiting on another `run` of the same semaphore, or the walk can deadlock.
 */
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
