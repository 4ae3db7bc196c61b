/**
 * The CAS operations of REAPI on top of a BlobStore: batch reads and writes with
 * per-blob statuses, missing-blob queries and tree walks. Wire messages are the
 * generated protobuf types; validation of digests happens here so every front end
 * (gRPC, CLI, tests) gets the same errors.
 */
import { putCompressedBuffer } from '../compression/blobs.js';
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, type DigestFunction, digestKey, isEmptyDigest, parseDigest } from '../digest/digest.js';
import type { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type BlobStore, getBuffer, putBuffer } from '../storage/blobStore.js';
import { walkTree } from '../tree/walk.js';
import { mapLimited } from '../util/concurrency.js';
import { invalidArgument, notFound, type StatusError, toStatusError } from '../util/status.js';
import type { Compressor } from './resourceName.js';

export interface BatchUpdateItem {
  digest: { hash: string; sizeBytes: number } | undefined;
  /** The blob, or its compressed form when `compressor` says so. */
  data: Buffer;
  /** Absent means identity. The caller checks that the compressor is supported. */
  compressor?: Compressor;
}

export interface BatchItemResult {
  digest: { hash: string; sizeBytes: number };
  /** Undefined on success. */
  error?: StatusError;
  data?: Buffer;
}

export interface TreePage {
  directories: Directory[];
  nextPageToken: string;
}

/** Upper bound on concurrently processed blobs within one batch request. */
const BATCH_CONCURRENCY = 16;
/** Directories returned per GetTree page when the client does not ask for a size. */
const DEFAULT_TREE_PAGE_SIZE = 1000;

export class ContentAddressableStorage {
  constructor(
    readonly store: BlobStore,
    readonly maxBatchTotalSizeBytes: number,
  ) {}

  async findMissing(
    context: RequestContext,
    raw: Array<{ hash: string; sizeBytes: number }>,
    fn: DigestFunction,
  ): Promise<Digest[]> {
    const digests = raw.map((d, i) => parseDigest(d, fn, `blob_digests[${i}]`));
    return this.store.findMissing(context, digests);
  }

  async batchUpdate(context: RequestContext, items: BatchUpdateItem[], fn: DigestFunction): Promise<BatchItemResult[]> {
    let total = 0;
    for (const item of items) total += item.data.length;
    if (total > this.maxBatchTotalSizeBytes) {
      throw invalidArgument(
        `batch carries ${total} bytes, more than max_batch_total_size_bytes (${this.maxBatchTotalSizeBytes}); use ByteStream for large blobs`,
      );
    }
    const stored = await this.putTogether(context, items, fn);
    if (stored.size === items.length)
      return items.map((item) => ({ digest: item.digest ?? { hash: '', sizeBytes: 0 } }));
    return mapLimited(items, BATCH_CONCURRENCY, async (item, i): Promise<BatchItemResult> => {
      const echo = item.digest ?? { hash: '', sizeBytes: 0 };
      if (stored.has(i)) return { digest: echo };
      try {
        const digest = parseDigest(item.digest, fn, `requests[${i}].digest`);
        if (item.compressor === 'zstd') {
          // Decompressed into the store, which verifies it before it becomes visible.
          await putCompressedBuffer(context, this.store, digest, item.data);
          return { digest: echo };
        }
        if (item.data.length !== digest.sizeBytes) {
          throw invalidArgument(
            `requests[${i}]: ${item.data.length} bytes of data but the digest declares ${digest.sizeBytes}`,
          );
        }
        if (!isEmptyDigest(digest)) await putBuffer(context, this.store, digest, item.data);
        return { digest: echo };
      } catch (error) {
        return { digest: echo, error: toStatusError(error) };
      }
    });
  }

  /**
   * Over a store that takes batches (remote storage nodes, the segment store of small
   * blobs), the plain items of a batch go in one round trip; returns the indices stored. When that fails, nothing is reported
   * stored and each item is put, and answered, on its own.
   */
  private async putTogether(
    context: RequestContext,
    items: BatchUpdateItem[],
    fn: DigestFunction,
  ): Promise<Set<number>> {
    const putBatch = this.store.putBatch?.bind(this.store);
    if (!putBatch) return new Set();
    const plain: { index: number; digest: Digest; data: Buffer }[] = [];
    items.forEach((item, index) => {
      if (item.compressor === 'zstd') return;
      try {
        const digest = parseDigest(item.digest, fn, `requests[${index}].digest`);
        if (item.data.length === digest.sizeBytes && !isEmptyDigest(digest))
          plain.push({ index, digest, data: item.data });
      } catch {
        // Answered on its own.
      }
    });
    if (plain.length < 2) return new Set();
    try {
      await putBatch(
        context,
        plain.map(({ digest, data }) => ({ digest, data })),
      );
      return new Set(plain.map(({ index }) => index));
    } catch {
      return new Set();
    }
  }

  async batchRead(
    context: RequestContext,
    raw: Array<{ hash: string; sizeBytes: number }>,
    fn: DigestFunction,
  ): Promise<BatchItemResult[]> {
    const digests = raw.map((d, i) => parseDigest(d, fn, `digests[${i}]`));
    let total = 0;
    for (const d of digests) total += d.sizeBytes;
    if (total > this.maxBatchTotalSizeBytes) {
      throw invalidArgument(
        `requested ${total} bytes, more than max_batch_total_size_bytes (${this.maxBatchTotalSizeBytes}); use ByteStream for large blobs`,
      );
    }
    return mapLimited(digests, BATCH_CONCURRENCY, async (digest): Promise<BatchItemResult> => {
      try {
        const data = await getBuffer(context, this.store, digest);
        if (!data) return { digest, error: notFound(`blob ${digestKey(digest)} not found`) };
        return { digest, data };
      } catch (error) {
        return { digest, error: toStatusError(error) };
      }
    });
  }

  /**
   * One page of the breadth-first walk of a directory tree. The page token is the
   * number of directories already returned; the walk is deterministic, so a token
   * from an earlier call restarts it and skips that many. Subtrees missing from the
   * CAS are omitted, as the specification allows; a missing root is NOT_FOUND.
   */
  async getTreePage(
    context: RequestContext,
    rawRoot: { hash: string; sizeBytes: number } | undefined,
    fn: DigestFunction,
    pageSize: number,
    pageToken: string,
  ): Promise<TreePage> {
    for await (const page of this.treePages(context, rawRoot, fn, pageSize, pageToken)) return page;
    throw new Error('unreachable: treePages yields at least one page');
  }

  /**
   * Every page from `pageToken` on, in one walk of the tree (so streaming all pages
   * costs one load per directory, not one walk per page). The last page has an
   * empty next_page_token.
   */
  async *treePages(
    context: RequestContext,
    rawRoot: { hash: string; sizeBytes: number } | undefined,
    fn: DigestFunction,
    pageSize: number,
    pageToken: string,
  ): AsyncGenerator<TreePage> {
    const root = parseDigest(rawRoot, fn, 'root_digest');
    if (pageSize < 0) throw invalidArgument('page_size must not be negative');
    const skip = pageToken === '' ? 0 : Number(pageToken);
    if (!/^\d*$/.test(pageToken) || !Number.isSafeInteger(skip) || skip < 0) {
      throw invalidArgument(`page_token "${pageToken.slice(0, 100)}" is not valid`);
    }
    const limit = pageSize === 0 ? DEFAULT_TREE_PAGE_SIZE : pageSize;
    let directories: Directory[] = [];
    let position = 0;
    for await (const walked of walkTree(context, this.store, [root], { concurrency: BATCH_CONCURRENCY })) {
      if (!walked.directory) {
        if (position === 0) throw notFound(`root directory ${digestKey(root)} not found`);
        continue;
      }
      if (position >= skip) {
        if (directories.length === limit) {
          yield { directories, nextPageToken: String(position) };
          directories = [];
        }
        directories.push(walked.directory);
      }
      position++;
    }
    yield { directories, nextPageToken: '' };
  }
}
