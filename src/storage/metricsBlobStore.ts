/**
 * Reports every call through one node of the storage graph to a StorageObserver:
 * calls, bytes, misses, errors and durations under the node's name. Reads and
 * writes are reported when their stream ends or their commit settles, so the
 * bytes and the duration are the whole transfer's. Everything else passes through.
 */
import type { RequestContext } from '../context/requestContext.js';
import type { Digest } from '../digest/digest.js';
import { Code, StatusError } from '../util/status.js';
import {
  type BatchItem,
  type Blob,
  type BlobStore,
  type BlobWriter,
  type FindMissingOptions,
  ForwardingBlobStore,
} from './blobStore.js';
import type { StorageCallEvent, StorageObserver, StorageOperation } from './storageObserver.js';

export class MetricsBlobStore extends ForwardingBlobStore {
  constructor(
    inner: BlobStore,
    /** The node's name in the events. */
    readonly name: string,
    private readonly observer: StorageObserver,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    super(inner);
    // Only the capabilities the inner store has are observed (and offered).
    if (inner.putBatch) {
      this.putBatch = (context, items) => this.observePutBatch(context, items);
    }
    if (inner.list) {
      const list = inner.list.bind(inner);
      this.list = (context) =>
        this.timed(
          'list',
          () => list(context),
          (keys) => ({ digests: keys.length }),
        );
    }
  }

  override findMissing(context: RequestContext, digests: readonly Digest[], options?: FindMissingOptions) {
    return this.timed(
      'findMissing',
      () => this.inner.findMissing(context, digests, options),
      (missing) => ({ digests: digests.length, missing: missing.length }),
    );
  }

  override async get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    const start = this.now();
    let blob: Blob | undefined;
    try {
      blob = await this.inner.get(context, digest);
    } catch (error) {
      this.report('get', start, 'error', 0, 1, error);
      throw error;
    }
    if (!blob) {
      this.report('get', start, 'miss', 0, 1);
      return undefined;
    }
    const inner = blob;
    return {
      sizeBytes: inner.sizeBytes,
      // Counting keeps no chunk, so the reader's options (its chunk pool) pass through.
      read: (offset, limit, options) => this.countedRead(inner.read(offset, limit, options), start),
    };
  }

  override async put(context: RequestContext, digest: Digest): Promise<BlobWriter> {
    const start = this.now();
    let writer: BlobWriter;
    try {
      writer = await this.inner.put(context, digest);
    } catch (error) {
      this.report('put', start, 'error', 0, 1, error);
      throw error;
    }
    let written = 0;
    let reported = false;
    const once = (outcome: StorageCallEvent['outcome'], error?: unknown) => {
      if (reported) return;
      reported = true;
      this.report('put', start, outcome, written, 1, error);
    };
    return {
      write: async (chunk) => {
        written += chunk.length;
        await writer.write(chunk);
      },
      commit: async () => {
        try {
          await writer.commit();
        } catch (error) {
          once('error', error);
          throw error;
        }
        once('ok');
      },
      abort: async () => {
        once('aborted');
        await writer.abort();
      },
    };
  }

  private async observePutBatch(context: RequestContext, items: readonly BatchItem[]): Promise<void> {
    const bytes = items.reduce((total, item) => total + item.data.length, 0);
    await this.timed(
      'putBatch',
      () => (this.inner.putBatch as NonNullable<BlobStore['putBatch']>).call(this.inner, context, items),
      () => ({ digests: items.length, bytes }),
    );
  }

  private async *countedRead(chunks: AsyncIterable<Buffer>, start: number): AsyncGenerator<Buffer> {
    let bytes = 0;
    try {
      for await (const chunk of chunks) {
        bytes += chunk.length;
        yield chunk;
      }
    } catch (error) {
      this.report('get', start, 'error', bytes, 1, error);
      throw error;
    }
    this.report('get', start, 'ok', bytes, 1);
  }

  private async timed<T>(
    operation: StorageOperation,
    call: () => Promise<T>,
    describe: (result: T) => { digests: number; missing?: number; bytes?: number },
  ): Promise<T> {
    const start = this.now();
    let result: T;
    try {
      result = await call();
    } catch (error) {
      this.report(operation, start, 'error', 0, 0, error);
      throw error;
    }
    const { digests, missing, bytes = 0 } = describe(result);
    this.observer.onStorageCall({
      node: this.name,
      operation,
      outcome: 'ok',
      durationMs: this.now() - start,
      bytes,
      digests,
      ...(missing === undefined ? {} : { missing }),
    });
    return result;
  }

  private report(
    operation: StorageOperation,
    start: number,
    outcome: StorageCallEvent['outcome'],
    bytes: number,
    digests: number,
    error?: unknown,
  ): void {
    this.observer.onStorageCall({
      node: this.name,
      operation,
      outcome,
      durationMs: this.now() - start,
      bytes,
      digests,
      ...(outcome === 'error' ? { errorCode: errorCodeOf(error) } : {}),
    });
  }
}

function errorCodeOf(error: unknown): string {
  return error instanceof StatusError ? (Code[error.code] ?? String(error.code)) : 'UNKNOWN';
}
