/**
 * Milliseconds <-> google.protobuf.Timestamp and Duration, the one copy every
 * layer uses. Granary counts time in milliseconds (numbers, epoch-based for
 * instants); the wire speaks seconds plus nanoseconds, with rules that are easy
 * to get subtly wrong (a Timestamp's nanos are never negative; a Duration's
 * seconds and nanos share a sign; nanos stay below one second).
 */
import type { Duration } from '../gen/google/protobuf/duration.js';
import type { Timestamp } from '../gen/google/protobuf/timestamp.js';

const NANOS_PER_MS = 1_000_000;
const MAX_NANOS = 999_999_999;

/**
 * Milliseconds since the epoch with sub-millisecond precision, from the
 * high-resolution clock anchored at process start, so instants taken close
 * together keep their order and spacing (for ExecutedActionMetadata).
 */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The Timestamp of an instant in epoch milliseconds (fractions kept to the nanosecond). */
export function timestampFromMs(ms: number): Timestamp {
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.min(MAX_NANOS, Math.round((ms - seconds * 1000) * NANOS_PER_MS));
  return { seconds, nanos };
}

/** The instant of a Timestamp in epoch milliseconds, with the fraction of a millisecond it carries. */
export function msFromTimestamp(timestamp: Timestamp): number {
  return timestamp.seconds * 1000 + timestamp.nanos / NANOS_PER_MS;
}

/** The Duration of a span of milliseconds (negative spans give negative seconds and nanos). */
export function durationFromMs(ms: number): Duration {
  const seconds = Math.trunc(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * NANOS_PER_MS);
  return { seconds, nanos: Math.max(-MAX_NANOS, Math.min(MAX_NANOS, nanos)) };
}

/** The span of a Duration in milliseconds, with the fraction of a millisecond it carries. */
export function msFromDuration(duration: Duration): number {
  return duration.seconds * 1000 + duration.nanos / NANOS_PER_MS;
}
