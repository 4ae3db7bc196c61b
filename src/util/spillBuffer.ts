/**
 * Content of unknown or large size arriving in chunks (an uploaded blob, a body
 * downloaded from an origin, a tar member): kept in memory while small, spilled
 * to a temporary file once it grows past a limit, so memory stays bounded
 * whatever the size. The one copy behind the disk store's writer, the Remote
 * Asset downloader and the meta-build client's uploader.
 *
 * Once spilled, chunks are gathered into batches written with one writev call,
 * and a batch is written while the caller produces the next one (hashing it,
 * reading it from the network), so the disk and the CPU work at the same time.
 */
import { createReadStream } from 'node:fs';
import { type FileHandle, open, unlink, writeFile } from 'node:fs/promises';

export interface SpillBufferOptions {
  /** Content up to this many bytes stays in memory; one byte more spills all of it to a file. */
  memoryLimitBytes: number;
  /** Names the temporary file when the content spills (or when takeFile needs one). */
  temporaryPath: () => string | Promise<string>;
  /** Spilled chunks are gathered up to this many bytes per write call. Default 1 MiB. */
  writeBatchBytes?: number;
  /** Chunk size when reading spilled content back. Default 1 MiB. */
  readChunkBytes?: number;
}

const DEFAULT_BATCH_BYTES = 1024 * 1024;

/**
 * Append chunks, then finish(), then read the content back (inMemory, read or
 * takeFile), then dispose(). Appended chunks are kept until they are written, so
 * a caller must not reuse a chunk's memory after appending it.
 */
export class SpillBuffer {
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  private totalBytes = 0;
  private handle: FileHandle | undefined;
  /** The temporary file, while this buffer owns it. */
  private path: string | undefined;
  /** The batch being written to the file, if any; its failure surfaces at the next flush or at finish. */
  private writing: Promise<void> | undefined;
  private finished = false;
  private readonly writeBatchBytes: number;

  constructor(private readonly options: SpillBufferOptions) {
    this.writeBatchBytes = options.writeBatchBytes ?? DEFAULT_BATCH_BYTES;
  }

  /** Bytes appended so far. */
  get sizeBytes(): number {
    return this.totalBytes;
  }

  /** Whether the content went to a temporary file. */
  get spilled(): boolean {
    return this.path !== undefined;
  }

  async append(chunk: Buffer): Promise<void> {
    if (this.finished) throw new Error('SpillBuffer: append after finish');
    this.totalBytes += chunk.length;
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
    // Batching keeps small chunks (Bazel sends 16 KiB) from costing a write call each.
    const full = this.handle
      ? this.bufferedBytes >= this.writeBatchBytes
      : this.totalBytes > this.options.memoryLimitBytes;
    if (full) await this.flush();
  }

  /** Ends appending; once it resolves, everything spilled is on disk and the file is closed. */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    if (!this.handle) return;
    if (this.chunks.length > 0) await this.flush();
    await this.writing;
    await this.handle.close();
    this.handle = undefined;
  }

  /** After finish: the whole content when it stayed in memory, undefined when it spilled. */
  inMemory(): Buffer | undefined {
    this.assertFinished();
    if (this.path !== undefined) return undefined;
    return this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
  }

  /** After finish: streams the content, from memory or from the file. */
  async *read(): AsyncGenerator<Buffer> {
    this.assertFinished();
    if (this.path === undefined) {
      yield* this.chunks;
      return;
    }
    const highWaterMark = this.options.readChunkBytes ?? DEFAULT_BATCH_BYTES;
    for await (const chunk of createReadStream(this.path, { highWaterMark })) yield chunk as Buffer;
  }

  /** After finish: the file holding the spilled content (still owned by this buffer), or undefined. */
  spilledPath(): string | undefined {
    this.assertFinished();
    return this.path;
  }

  /**
   * After finish: a file holding the content (written now if it stayed in
   * memory), handed over to the caller, who must rename or delete it; dispose()
   * no longer touches it.
   */
  async takeFile(): Promise<string> {
    this.assertFinished();
    if (this.path === undefined) {
      const content = this.inMemory() as Buffer;
      this.path = await this.options.temporaryPath();
      await writeFile(this.path, content);
      this.chunks = [];
      this.bufferedBytes = 0;
    }
    const path = this.path;
    this.path = undefined;
    return path;
  }

  /** Drops the content and deletes the temporary file this buffer still owns. Safe to call more than once. */
  async dispose(): Promise<void> {
    this.finished = true;
    this.chunks = [];
    this.bufferedBytes = 0;
    await this.writing?.catch(() => undefined);
    this.writing = undefined;
    const handle = this.handle;
    this.handle = undefined;
    if (handle) await handle.close().catch(() => undefined);
    const path = this.path;
    this.path = undefined;
    if (path !== undefined) await unlink(path).catch(() => undefined);
  }

  /**
   * Starts writing the buffered chunks to the file (creating it first if needed)
   * once the previous batch is written, and returns without waiting for this one.
   */
  private async flush(): Promise<void> {
    if (!this.handle) {
      this.path = await this.options.temporaryPath();
      this.handle = await open(this.path, 'w');
    }
    const handle = this.handle;
    await this.writing;
    const chunks = this.chunks.splice(0);
    const bytes = this.bufferedBytes;
    this.bufferedBytes = 0;
    this.writing = handle.writev(chunks).then(({ bytesWritten }) => {
      if (bytesWritten !== bytes) throw new Error(`short write: ${bytesWritten} of ${bytes} bytes`);
    });
    this.writing.catch(() => undefined); // Handled by whoever awaits it next.
  }

  private assertFinished(): void {
    if (!this.finished) throw new Error('SpillBuffer: read before finish');
  }
}
