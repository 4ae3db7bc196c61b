/**
 * Uploads a set of blobs (in-memory messages and files on disk) to the CAS,
 * sending only those FindMissingBlobs reports absent: what the worker does with
 * its outputs and the meta-build client with its trees. When the store offers
 * putBatch (a remote CAS), small blobs travel together in batches; everything else
 * is streamed through put, chunk by chunk from disk, so memory stays bounded.
 */
import { open } from 'node:fs/promises';
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, digestKey, isEmptyDigest } from '../digest/digest.js';
import { type BlobStore, putChunks } from '../storage/blobStore.js';
import { forEachLimit } from '../util/concurrency.js';

/** One blob to upload: either its bytes or the file holding them. */
export interface UploadItem {
  digest: Digest;
  data?: Buffer;
  path?: string;
}

const SMALL_BLOB_BYTES = 256 * 1024;
/** Stays well below the usual 4 MiB gRPC message limit and BuildStream's 1 MiB batch cap. */
const BATCH_TOTAL_BYTES = 1024 * 1024;
const CHUNK_BYTES = 1024 * 1024;

export interface UploadOptions {
  /** Uploads in flight at once; default 8. */
  concurrency?: number;
  /**
   * When the blobs together are at most this many bytes and the store can take
   * them in one batch, send them without asking FindMissingBlobs first: one round
   * trip instead of two, for a few bytes sent again at worst (a worker's outputs).
   */
  skipFindMissingBelowBytes?: number;
}

/** Uploads the blobs the CAS is missing; returns how many were sent. */
export async function uploadMissing(
  context: RequestContext,
  cas: BlobStore,
  items: readonly UploadItem[],
  options: UploadOptions = {},
): Promise<number> {
  const concurrency = options.concurrency ?? 8;
  const unique = new Map<string, UploadItem>();
  for (const item of items) if (!isEmptyDigest(item.digest)) unique.set(digestKey(item.digest), item);
  if (unique.size === 0) return 0;
  const all = [...unique.values()];
  const totalBytes = all.reduce((sum, item) => sum + item.digest.sizeBytes, 0);
  const skipFindMissing =
    cas.putBatch !== undefined &&
    totalBytes <= Math.min(options.skipFindMissingBelowBytes ?? 0, BATCH_TOTAL_BYTES) &&
    all.every((item) => item.digest.sizeBytes <= SMALL_BLOB_BYTES);
  const missing = skipFindMissing
    ? all.map((i) => i.digest)
    : await cas.findMissing(
        context,
        all.map((i) => i.digest),
      );
  const toSend = missing.map((d) => unique.get(digestKey(d))).filter((i): i is UploadItem => i !== undefined);
  const putBatch = cas.putBatch?.bind(cas);
  const batched = putBatch ? toSend.filter((i) => i.digest.sizeBytes <= SMALL_BLOB_BYTES) : [];
  const streamed = putBatch ? toSend.filter((i) => i.digest.sizeBytes > SMALL_BLOB_BYTES) : toSend;
  if (putBatch) {
    const batches: UploadItem[][] = [];
    let current: UploadItem[] = [];
    let currentBytes = 0;
    for (const item of batched) {
      if (currentBytes + item.digest.sizeBytes > BATCH_TOTAL_BYTES && current.length > 0) {
        batches.push(current);
        current = [];
        currentBytes = 0;
      }
      current.push(item);
      currentBytes += item.digest.sizeBytes;
    }
    if (current.length > 0) batches.push(current);
    await forEachLimit(batches, concurrency, async (batch) => {
      const loaded = await Promise.all(batch.map(async (i) => ({ digest: i.digest, data: await bytesOf(i) })));
      await putBatch(context, loaded);
    });
  }
  await forEachLimit(streamed, concurrency, (item) => putChunks(context, cas, item.digest, chunksOf(item)));
  return toSend.length;
}

async function bytesOf(item: UploadItem): Promise<Buffer> {
  if (item.data) return item.data;
  const chunks: Buffer[] = [];
  for await (const chunk of chunksOf(item)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function* chunksOf(item: UploadItem): AsyncGenerator<Buffer> {
  if (item.data) {
    for (let offset = 0; offset < item.data.length; offset += CHUNK_BYTES) {
      yield item.data.subarray(offset, offset + CHUNK_BYTES);
    }
    return;
  }
  const handle = await open(item.path as string, 'r');
  try {
    for (;;) {
      const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
      const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}
