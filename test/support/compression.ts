/** Test data for compression tests. */
import { randomBytes } from 'node:crypto';

/** `size` bytes of which about half are text-like (compressible) and half random. */
export function compressibleData(size: number): Buffer {
  const words = 'remote execution cache action digest output bazel granary blob tree zstd stream'.split(' ');
  const parts: Buffer[] = [];
  let total = 0;
  let seed = 7;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
    return seed >>> 8;
  };
  while (total < size) {
    const part =
      next() % 2 === 0
        ? randomBytes(4096)
        : Buffer.from(Array.from({ length: 600 }, () => words[next() % words.length]).join(' '));
    parts.push(part);
    total += part.length;
  }
  return Buffer.concat(parts).subarray(0, size);
}
