/**
 * ByteStream semantics for the CAS: streamed reads with offset and limit, and
 * resumable uploads. An upload in progress is kept, keyed by its full resource
 * name (some clients reuse one upload id for every blob), so that a client whose
 * stream broke can ask QueryWriteStatus and continue from the committed offset.
 * Nothing reaches the CAS before the whole blob has arrived and been verified.
 */
import { type Blob, type BlobStore, type BlobWriter } from '../storage/blobStore.js';
import { digestKey } from '../digest/digest.js';
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
  private committed = 0;
  private busy = true;
  lastActivityMs: number;

  constructor(
    readonly resource: UploadResource,
    private readonly writer: BlobWriter,
    private readonly now: () => number,
  ) {
    this.lastActivityMs = now();
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
  }

  async write(writeOffset: number, data: Buffer): Promise<void> {
    if (writeOffset !== this.committed) {
      throw invalidArgument(`write_offset ${writeOffset} does not match the ${this.committed} bytes committed so far`);
    }
    this.lastActivityMs = this.now();
    if (data.length === 0) return;
    await this.writer.write(data);
    this.committed += data.length;
  }

  async finish(): Promise<number> {
    await this.writer.commit();
    return this.committed;
  }

  /** The call ended without finish_write; keep what was written for a retry. */
  suspend(): void {
    this.busy = false;
    this.lastActivityMs = this.now();
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
  async openRead(resourceName: string, readOffset: number, readLimit: number): Promise<{ blob: Blob; offset: number; limit: number | undefined }> {
    const resource = parseReadResourceName(resourceName, this.compressors);
    if (resource.compressor !== 'identity') throw invalidArgument('compressed reads are not supported');
    if (readLimit < 0) throw invalidArgument(`read_limit ${readLimit} must not be negative`);
    if (readOffset < 0) throw outOfRange(`read_offset ${readOffset} must not be negative`);
    const blob = await this.store.get(resource.digest);
    if (!blob) throw notFound(`blob ${digestKey(resource.digest)} not found`);
    if (readOffset > blob.sizeBytes) {
      throw outOfRange(`read_offset ${readOffset} is beyond the end of the ${blob.sizeBytes}-byte blob`);
    }
    return { blob, offset: readOffset, limit: readLimit === 0 ? undefined : readLimit };
  }

  /**
   * Handles the first WriteRequest of a call. A blob the CAS already holds ends the
   * call at once; otherwise the upload starts at offset 0 or resumes where a
   * previous call stopped.
   */
  async startWrite(resourceName: string, writeOffset: number): Promise<WriteStart> {
    const resource = parseWriteResourceName(resourceName, this.compressors);
    if (resource.compressor !== 'identity') throw invalidArgument('compressed uploads are not supported');
    if (writeOffset < 0) throw invalidArgument(`write_offset ${writeOffset} must not be negative`);
    if ((await this.store.findMissing([resource.digest])).length === 0) {
      return { kind: 'exists', status: { committedSizeBytes: resource.digest.sizeBytes, complete: true } };
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
    const upload = new Upload(resource, await this.store.put(resource.digest), this.now);
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

  async queryWriteStatus(resourceName: string): Promise<WriteStatus> {
    const resource = parseWriteResourceName(resourceName, this.compressors);
    if ((await this.store.findMissing([resource.digest])).length === 0) {
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
