/**
 * ByteStream semantics for the CAS: streamed reads with offset and limit, and
 * resumable uploads. An upload in progress is kept, keyed by its full resource
 * name (some clients reuse one upload id for every blob), so that a client whose
 * stream broke can ask QueryWriteStatus and continue from the committed offset.
 * Nothing reaches the CAS before the whole blob has arrived and been verified.
 *
 * Compressed uploads (compressed-blobs/zstd) are decompressed as they arrive and
 * verified against the uncompressed digest like any other. Their offsets follow
 * REAPI: a call's first write_offset is an offset into the uncompressed blob (0, or
 * where a resumed upload continues), later ones add the compressed bytes sent in
 * the call, and the committed size of a finished call is counted the same way.
 * QueryWriteStatus reports uncompressed bytes, from where a client resumes with a
 * fresh compressed stream of the rest.
 */
import { DecompressingWriter } from '../compression/blobs.js';
import { detachedContext, type RequestContext } from '../context/requestContext.js';
import { digestKey } from '../digest/digest.js';
import type { Blob, BlobStore, BlobWriter } from '../storage/blobStore.js';
import { invalidArgument, notFound, outOfRange } from '../util/status.js';
import { type Compressor, parseReadResourceName, parseWriteResourceName, type UploadResource } from './resourceName.js';

export interface WriteStatus {
  committedSizeBytes: number;
  complete: boolean;
}

export interface ByteStreamOptions {
  supportedCompressors?: readonly Compressor[];
  /** Abandoned partial uploads are dropped after this long without activity. */
  uploadIdleTimeoutMs?: number;
  /** At most this many partial uploads are kept for resumption; the oldest go first. */
  maximumSuspendedUploads?: number;
  now?: () => number;
}

/** One upload in progress. The gRPC adapter feeds it the WriteRequests of one call. */
export class Upload {
  /** Uncompressed bytes handed to the writer: where a resumed upload continues. */
  private committed = 0;
  private busy = true;
  lastActivityMs: number;
  /** Where the current call started (uncompressed) and the bytes it sent (compressed if the upload is). */
  private callStart = 0;
  private callBytes = 0;
  /** The current call's decoder for a compressed upload; a resumed call starts a new stream. */
  private decompressing: DecompressingWriter | undefined;

  constructor(
    readonly resource: UploadResource,
    private readonly writer: BlobWriter,
    private readonly now: () => number,
  ) {
    this.lastActivityMs = now();
    this.beginCall();
  }

  get committedSizeBytes(): number {
    return this.committed;
  }

  get active(): boolean {
    return this.busy;
  }

  /** @internal */
  claim(): void {
    this.busy = true;
    this.lastActivityMs = this.now();
    this.beginCall();
  }

  private beginCall(): void {
    this.callStart = this.committed;
    this.callBytes = 0;
    this.decompressing =
      this.resource.compressor === 'identity'
        ? undefined
        : new DecompressingWriter(this.writer, this.resource.digest, this.committed);
  }

  async write(writeOffset: number, data: Buffer): Promise<void> {
    const expected = this.callStart + this.callBytes;
    if (writeOffset !== expected) {
      throw invalidArgument(
        this.decompressing
          ? `write_offset ${writeOffset} does not match ${expected} (the call's first offset plus the compressed bytes sent since)`
          : `write_offset ${writeOffset} does not match the ${this.committed} bytes committed so far`,
      );
    }
    this.lastActivityMs = this.now();
    if (data.length === 0) return;
    if (this.decompressing) {
      await this.decompressing.write(data);
      this.committed = this.decompressing.writtenBytes;
    } else {
      await this.writer.write(data);
      this.committed += data.length;
    }
    this.callBytes += data.length;
  }

  /** Commits the blob; returns the committed size of the call (see the header for compressed uploads). */
  async finish(): Promise<number> {
    if (this.decompressing) {
      await this.decompressing.end();
      this.committed = this.decompressing.writtenBytes;
    }
    await this.writer.commit();
    return this.callStart + this.callBytes;
  }

  /**
   * The call ended without finish_write; keep what was written for a retry. A
   * compressed upload drops its decoder: output it still held was not committed,
   * and the retry resends it in a new stream.
   */
  suspend(): void {
    this.busy = false;
    this.lastActivityMs = this.now();
    this.decompressing = undefined;
  }

  abort(): Promise<void> {
    this.busy = false;
    return this.writer.abort();
  }
}

export type WriteStart = { kind: 'exists'; status: WriteStatus } | { kind: 'upload'; upload: Upload };

export class ByteStreamBlobs {
  private readonly uploads = new Map<string, Upload>();
  private readonly compressors: readonly Compressor[];
  private readonly idleTimeoutMs: number;
  private readonly maximumSuspended: number;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly store: BlobStore,
    options: ByteStreamOptions = {},
  ) {
    this.compressors = options.supportedCompressors ?? [];
    this.idleTimeoutMs = options.uploadIdleTimeoutMs ?? 10 * 60_000;
    this.maximumSuspended = options.maximumSuspendedUploads ?? 1000;
    this.now = options.now ?? Date.now;
    this.sweeper = setInterval(() => void this.dropIdleUploads(), Math.min(60_000, this.idleTimeoutMs));
    this.sweeper.unref();
  }

  /** Opens a blob for a Read call, validating offset and limit. */
  /**
   * For a compressed read, offset counts uncompressed bytes and the caller
   * compresses the blob from there; REAPI requires read_limit 0 then.
   */
  async openRead(
    context: RequestContext,
    resourceName: string,
    readOffset: number,
    readLimit: number,
  ): Promise<{ blob: Blob; offset: number; limit: number | undefined; compressor: Compressor }> {
    const resource = parseReadResourceName(resourceName, this.compressors);
    if (resource.compressor !== 'identity' && readLimit !== 0) {
      throw invalidArgument(`read_limit must be 0 when reading compressed-blobs (got ${readLimit})`);
    }
    if (readLimit < 0) throw invalidArgument(`read_limit ${readLimit} must not be negative`);
    if (readOffset < 0) throw outOfRange(`read_offset ${readOffset} must not be negative`);
    const blob = await this.store.get(context, resource.digest);
    if (!blob) throw notFound(`blob ${digestKey(resource.digest)} not found`);
    if (readOffset > blob.sizeBytes) {
      throw outOfRange(`read_offset ${readOffset} is beyond the end of the ${blob.sizeBytes}-byte blob`);
    }
    return {
      blob,
      offset: readOffset,
      limit: readLimit === 0 ? undefined : readLimit,
      compressor: resource.compressor,
    };
  }

  /**
   * Handles the first WriteRequest of a call. A blob the CAS already holds ends the
   * call at once (with committed_size -1 for a compressed upload, as REAPI says);
   * otherwise the upload starts at offset 0 or resumes where a previous call stopped.
   */
  async startWrite(context: RequestContext, resourceName: string, writeOffset: number): Promise<WriteStart> {
    const resource = parseWriteResourceName(resourceName, this.compressors);
    if (writeOffset < 0) throw invalidArgument(`write_offset ${writeOffset} must not be negative`);
    if ((await this.store.findMissing(context, [resource.digest])).length === 0) {
      const committedSizeBytes = resource.compressor === 'identity' ? resource.digest.sizeBytes : -1;
      return { kind: 'exists', status: { committedSizeBytes, complete: true } };
    }
    const existing = this.uploads.get(resourceName);
    if (writeOffset > 0) {
      if (!existing || existing.active || existing.committedSizeBytes !== writeOffset) {
        const committed = existing && !existing.active ? existing.committedSizeBytes : 0;
        throw invalidArgument(
          `write_offset ${writeOffset} does not match the committed size ${committed} of this upload (see QueryWriteStatus)`,
        );
      }
      existing.claim();
      return { kind: 'upload', upload: existing };
    }
    // The upload may outlive this call (a client resumes it from another), so its writer does not end with the call.
    const upload = new Upload(resource, await this.store.put(detachedContext(context), resource.digest), this.now);
    if (existing && !existing.active) {
      this.uploads.delete(resourceName);
      await existing.abort();
    }
    // A concurrent upload under the same name keeps its slot; this one is not resumable.
    if (!existing || !existing.active) this.register(resourceName, upload);
    return { kind: 'upload', upload };
  }

  /**
   * Keeps a partial upload whose call ended for a later resumption. An upload that
   * is not registered (a concurrent upload under a name already in use) can never
   * be resumed, so it is discarded instead of leaking its writer.
   */
  async suspend(resourceName: string, upload: Upload): Promise<void> {
    if (this.uploads.get(resourceName) === upload) upload.suspend();
    else await upload.abort();
  }

  /** Forgets a finished or failed upload. */
  release(resourceName: string, upload: Upload): void {
    if (this.uploads.get(resourceName) === upload) this.uploads.delete(resourceName);
  }

  async queryWriteStatus(context: RequestContext, resourceName: string): Promise<WriteStatus> {
    const resource = parseWriteResourceName(resourceName, this.compressors);
    if ((await this.store.findMissing(context, [resource.digest])).length === 0) {
      return { committedSizeBytes: resource.digest.sizeBytes, complete: true };
    }
    const upload = this.uploads.get(resourceName);
    return { committedSizeBytes: upload?.committedSizeBytes ?? 0, complete: false };
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const upload of this.uploads.values()) void upload.abort();
    this.uploads.clear();
  }

  private register(resourceName: string, upload: Upload): void {
    this.uploads.set(resourceName, upload);
    if (this.uploads.size <= this.maximumSuspended) return;
    for (const [name, candidate] of this.uploads) {
      if (candidate.active) continue;
      this.uploads.delete(name);
      void candidate.abort();
      if (this.uploads.size <= this.maximumSuspended) return;
    }
  }

  private async dropIdleUploads(): Promise<void> {
    const cutoff = this.now() - this.idleTimeoutMs;
    for (const [name, upload] of this.uploads) {
      if (!upload.active && upload.lastActivityMs < cutoff) {
        this.uploads.delete(name);
        await upload.abort();
      }
    }
  }
}
