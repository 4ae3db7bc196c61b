/**
 * What a bounded store tells about its evictions, so that the server can log each
 * round and count it in its metrics without the store knowing about either.
 */

/** One eviction round: the least recently used blobs a store removed to make room for a write. */
export interface EvictionRound {
  readonly blobs: number;
  readonly bytes: number;
  /** Size of the write that needed the room. */
  readonly incomingBytes: number;
  /** What the store holds after the round (the write not yet counted), and its bound. */
  readonly usedBytes: number;
  readonly maximumBytes: number;
}

/** Called after each round, synchronously; it must be cheap and must not throw. */
export type EvictionListener = (round: EvictionRound) => void;
