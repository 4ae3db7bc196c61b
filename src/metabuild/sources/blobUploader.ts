/**
 * Collects file contents read from a stream (a tar archive, git cat-file) and
 * uploads them to the CAS in batches, so memory stays bounded: small blobs wait
 * in memory until a batch is full, large ones are spilled to a temporary file
 * while they are hashed and uploaded from there.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Digest, type DigestFunction, digestOf, SHA256 } from '../../digest/digest.js';
import type { BlobStore } from '../../storage/blobStore.js';
import { type UploadItem, uploadMissing } from '../../worker/upload.js';

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
  private spillDir: string | undefined;
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
    if (!this.cas) return digest;
    this.pending.push({ digest, data });
    this.pendingBytes += data.length;
    if (this.pendingBytes >= this.batchBytes) await this.flush();
    return digest;
  }

  /** Consumes exactly the chunks of one blob of `size` bytes. */
  async addStream(chunks: AsyncIterable<Buffer>, size: number): Promise<Digest> {
    if (size <= this.spillBytes || !this.cas) {
      if (!this.cas) {
        const hasher = this.fn.createHasher();
        let length = 0;
        for await (const chunk of chunks) {
          hasher.update(chunk);
          length += chunk.length;
        }
        return { hash: hasher.digest('hex'), sizeBytes: length };
      }
      const parts: Buffer[] = [];
      for await (const chunk of chunks) parts.push(chunk);
      return this.addBuffer(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts));
    }
    this.spillDir ??= await mkdtemp(join(this.options.tempDir ?? tmpdir(), 'granary-spill-'));
    const path = join(this.spillDir, randomUUID());
    const hasher = this.fn.createHasher();
    let length = 0;
    const handle = await open(path, 'w');
    try {
      for await (const chunk of chunks) {
        hasher.update(chunk);
        length += chunk.length;
        await handle.write(chunk);
      }
    } finally {
      await handle.close();
    }
    const digest = { hash: hasher.digest('hex'), sizeBytes: length };
    try {
      await uploadMissing(this.cas, [{ digest, path }]);
    } finally {
      await rm(path, { force: true });
    }
    return digest;
  }

  async flush(): Promise<void> {
    if (!this.cas || this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    await uploadMissing(this.cas, batch);
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
    if (this.spillDir) await rm(this.spillDir, { recursive: true, force: true });
    this.spillDir = undefined;
  }
}
