/**
 * google.protobuf.Timestamp values for ExecutedActionMetadata. Uses the
 * high-resolution clock anchored at process start, so timestamps taken close
 * together keep their order and sub-millisecond spacing.
 */
import type { Timestamp } from '../gen/google/protobuf/timestamp.js';

/** Milliseconds since the epoch with sub-millisecond precision. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export function timestampFromMs(ms: number): Timestamp {
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.min(999_999_999, Math.round((ms - seconds * 1000) * 1e6));
  return { seconds, nanos };
}

export function timestampNow(): Timestamp {
  return timestampFromMs(nowMs());
}
