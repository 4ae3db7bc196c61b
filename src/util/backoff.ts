/**
 * Exponential backoff with jitter, for loops that retry a call until it works
 * (a worker reaching its server): each delay doubles up to a cap, and is spread
 * by up to ±`jitter` of itself so that many clients that failed together (a farm
 * restarting under its workers) do not retry in step.
 */
export interface BackoffOptions {
  /** The first delay (ms). */
  readonly firstMs: number;
  /** No delay is longer than this (ms), jitter included. */
  readonly maximumMs: number;
  /** How far each delay is spread, as a fraction of it (0.2: ±20%). */
  readonly jitter?: number;
  /** A number in [0, 1); Math.random unless given (tests). */
  readonly random?: () => number;
}

export class Backoff {
  private nominalMs: number;
  private readonly jitter: number;
  private readonly random: () => number;

  constructor(private readonly options: BackoffOptions) {
    this.nominalMs = options.firstMs;
    this.jitter = options.jitter ?? 0.2;
    this.random = options.random ?? Math.random;
  }

  /** The delay before the next attempt; the one after is twice as long (up to the cap). */
  next(): number {
    const spread = this.nominalMs * this.jitter * (2 * this.random() - 1);
    const delayMs = Math.min(this.options.maximumMs, Math.max(0, Math.round(this.nominalMs + spread)));
    this.nominalMs = Math.min(this.nominalMs * 2, this.options.maximumMs);
    return delayMs;
  }

  /** After a success: the next failure waits the first delay again. */
  reset(): void {
    this.nominalMs = this.options.firstMs;
  }
}
