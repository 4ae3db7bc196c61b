/** Thrown by stream() when the input ends before the requested bytes. */
export class EndOfInputError extends Error {
  override name = 'EndOfInputError';
  constructor() {
    super('unexpected end of input');
  }
}

/** Pull-style reading of exact byte counts and lines from a stream of chunks. */
export class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private readonly iterator: AsyncIterator<Buffer | Uint8Array | string>;

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Reads n bytes; fewer only when the input ends first. */
  async read(n: number): Promise<Buffer> {
    while (this.buffered < n && (await this.pull()));
    return this.take(Math.min(n, this.buffered));
  }

  /** Reads up to and excluding the next "\n" (consumed); undefined at the end of input. */
  async readLine(): Promise<string | undefined> {
    let scanned = 0;
    for (;;) {
      let offset = 0;
      for (const chunk of this.chunks) {
        const start = Math.max(0, scanned - offset);
        if (start < chunk.length) {
          const index = chunk.indexOf(10, start);
          if (index >= 0) {
            const line = this.take(offset + index);
            this.take(1);
            return line.toString('utf8');
          }
        }
        offset += chunk.length;
      }
      scanned = offset;
      if (!(await this.pull())) {
        if (this.buffered === 0) return undefined;
        return this.take(this.buffered).toString('utf8');
      }
    }
  }

  /** Yields exactly n bytes in pieces; throws if the input ends first. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.pull())) throw new EndOfInputError();
      const piece = this.take(Math.min(left, (this.chunks[0] as Buffer).length));
      left -= piece.length;
      yield piece;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n));
  }

  /** Stops the underlying iterator (e.g. after an error). */
  async close(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      await this.iterator.return?.();
    }
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    for (;;) {
      const next = await this.iterator.next();
      if (next.done) {
        this.ended = true;
        return false;
      }
      const value = next.value;
      const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value as Uint8Array);
      if (chunk.length === 0) continue;
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      return true;
    }
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0] as Buffer;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let offset = 0;
    while (offset < n) {
      const chunk = this.chunks[0] as Buffer;
      const count = Math.min(chunk.length, n - offset);
      chunk.copy(out, offset, 0, count);
      if (count === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(count);
      offset += count;
    }
    this.buffered -= n;
    return out;
  }
}
