/**
 * Collects file contents read from a stream (a tar archive, git cat-file) and
 * uploads them to the CAS in batches, so memory stays bounded: small blobs wait
 * in memory until a batch is full, large ones are spilled to a temporary file
 * while they are hashed and uploaded from there. A full batch uploads while the
 * next one fills (at most one batch in flight), so reading the stream and
 * uploading overlap.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backgroundContext } from '../../context/requestContext.js';
import { type Digest, type DigestFunction, digestOf, SHA256 } from '../../digest/digest.js';
import type { BlobStore } from '../../storage/blobStore.js';
import { type UploadItem, uploadMissing } from '../../tree/upload.js';
import { SpillBuffer } from '../../util/spillBuffer.js';

export interface BlobUploaderOptions {
  digestFunction?: DigestFunction;
  /** Pending in-memory bytes that trigger an upload. Default 64 MiB. */
  batchBytes?: number;
  /** Blobs larger than this are spilled to disk. Default 16 MiB. */
  spillBytes?: number;
  /** Where spill files go; default the system temporary directory. */
  tempDir?: string;
}

export class BlobUploader {
  private pending: UploadItem[] = [];
  private pendingBytes = 0;
  /** The batch being uploaded, if any. */
  private inFlight: Promise<void> | undefined;
  /** Created on the first spill, removed by dispose. */
  private spillDirectory: Promise<string> | undefined;
  private readonly fn: DigestFunction;
  private readonly batchBytes: number;
  private readonly spillBytes: number;

  constructor(
    private readonly cas: BlobStore | undefined,
    private readonly options: BlobUploaderOptions = {},
  ) {
    this.fn = options.digestFunction ?? SHA256;
    this.batchBytes = options.batchBytes ?? 64 * 1024 * 1024;
    this.spillBytes = options.spillBytes ?? 16 * 1024 * 1024;
  }

  async addBuffer(data: Buffer): Promise<Digest> {
    const digest = digestOf(data, this.fn);
    if (this.cas) await this.addPending(digest, data);
    return digest;
  }

  /** Consumes the chunks of one blob; returns its digest. */
  async addStream(chunks: AsyncIterable<Buffer>): Promise<Digest> {
    const hasher = this.fn.createHasher();
    if (!this.cas) {
      let length = 0;
      for await (const chunk of chunks) {
        hasher.update(chunk);
        length += chunk.length;
      }
      return { hash: hasher.digest('hex'), sizeBytes: length };
    }
    const content = new SpillBuffer({ memoryLimitBytes: this.spillBytes, temporaryPath: () => this.spillPath() });
    try {
      for await (const chunk of chunks) {
        hasher.update(chunk);
        await content.append(chunk);
      }
      await content.finish();
      const digest = { hash: hasher.digest('hex'), sizeBytes: content.sizeBytes };
      const data = content.inMemory();
      if (data) await this.addPending(digest, data);
      else await uploadMissing(backgroundContext(), this.cas, [{ digest, path: content.spilledPath() as string }]);
      return digest;
    } finally {
      await content.dispose();
    }
  }

  /** Uploads what is pending and waits for every upload to finish. */
  async flush(): Promise<void> {
    this.startBatch();
    await this.settle();
  }

  /** Starts uploading the pending batch, after the one in flight. */
  private startBatch(): void {
    if (!this.cas || this.pending.length === 0) return;
    const cas = this.cas;
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const previous = this.inFlight ?? Promise.resolve();
    const upload = previous.then(async () => {
      await uploadMissing(backgroundContext(), cas, batch);
    });
    // A failure surfaces at the next settle(); until then it is not unhandled.
    upload.catch(() => undefined);
    this.inFlight = upload;
  }

  private async settle(): Promise<void> {
    const inFlight = this.inFlight;
    this.inFlight = undefined;
    await inFlight;
  }

  /** Uploads what is pending and removes spill files. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.dispose();
    }
  }

  /** Drops what is pending without uploading (after a failure). */
  async dispose(): Promise<void> {
    this.pending = [];
    this.pendingBytes = 0;
    await this.settle().catch(() => undefined);
    const spillDirectory = this.spillDirectory;
    this.spillDirectory = undefined;
    if (spillDirectory) await rm(await spillDirectory, { recursive: true, force: true });
  }

  private async addPending(digest: Digest, data: Buffer): Promise<void> {
    this.pending.push({ digest, data });
    this.pendingBytes += data.length;
    if (this.pendingBytes >= this.batchBytes) {
      // Wait for the batch in flight (bounding memory to two batches), then start this one.
      await this.settle();
      this.startBatch();
    }
  }

  private async spillPath(): Promise<string> {
    this.spillDirectory ??= mkdtemp(join(this.options.tempDir ?? tmpdir(), 'granary-spill-'));
    return join(await this.spillDirectory, randomUUID());
  }
}
