/**
 * A BlobStore backed by a remote REAPI CAS: FindMissingBlobs, ByteStream Read and
 * resumable-free ByteStream Write (small blobs go through the batch calls). It is
 * both the client library's blob transport and a storage leaf, so a frontend can
 * put remote storage nodes behind the same decorators as local ones.
 */
import { randomUUID } from 'node:crypto';
import { Metadata } from '@grpc/grpc-js';
import { type Digest, type DigestFunction, digestFunctionOf, isEmptyDigest } from '../digest/digest.js';
import type {
  BatchReadBlobsResponse,
  BatchUpdateBlobsResponse,
  FindMissingBlobsResponse,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { WriteRequest } from '../gen/google/bytestream/bytestream.js';
import { bufferBlob } from '../storage/memoryBlobStore.js';
import type { Blob, BlobStore, BlobWriter } from '../storage/blobStore.js';
import { Code, invalidArgument, notFound, StatusError } from '../util/status.js';
import { type Connection, fromServiceError, unary } from './connection.js';

/** Blobs up to this size are read and written with the batch calls. */
const BATCH_BLOB_BYTES = 256 * 1024;
/** Upload chunk size for ByteStream writes. */
export const WRITE_CHUNK_BYTES = 1024 * 1024;
/** FindMissingBlobs requests are split to stay far below message limits. */
const FIND_MISSING_BATCH = 10_000;

export class GrpcBlobStore implements BlobStore {
  constructor(private readonly connection: Connection) {}

  async findMissing(digests: readonly Digest[]): Promise<Digest[]> {
    const missing: Digest[] = [];
    for (let i = 0; i < digests.length; i += FIND_MISSING_BATCH) {
      const slice = digests.slice(i, i + FIND_MISSING_BATCH).filter((d) => !isEmptyDigest(d));
      if (slice.length === 0) continue;
      const response = await unary<FindMissingBlobsResponse>((done) =>
        this.connection.cas.findMissingBlobs(
          { instanceName: this.connection.instanceName, blobDigests: slice, digestFunction: functionOf(slice).value },
          done,
        ),
      );
      missing.push(...response.missingBlobDigests);
    }
    return missing;
  }

  async get(digest: Digest): Promise<Blob | undefined> {
    if (isEmptyDigest(digest)) return bufferBlob(Buffer.alloc(0));
    if (digest.sizeBytes <= BATCH_BLOB_BYTES) {
      const response = await unary<BatchReadBlobsResponse>((done) =>
        this.connection.cas.batchReadBlobs(
          {
            instanceName: this.connection.instanceName,
            digests: [digest],
            acceptableCompressors: [],
            digestFunction: digestFunctionOf(digest).value,
          },
          done,
        ),
      );
      const item = response.responses[0];
      if (!item || item.status?.code === Code.NOT_FOUND) return undefined;
      if (item.status && item.status.code !== Code.OK) throw new StatusError(item.status.code, item.status.message);
      return bufferBlob(item.data);
    }
    const blob: Blob = { sizeBytes: digest.sizeBytes, read: (offset, limit) => this.read(digest, offset, limit) };
    // Probe existence so that absent blobs give undefined rather than a failing stream.
    if ((await this.findMissing([digest])).length > 0) return undefined;
    return blob;
  }

  async *read(digest: Digest, offset = 0, limit?: number): AsyncGenerator<Buffer> {
    const stream = this.connection.byteStream.read({
      resourceName: this.resourceName('blobs', digest),
      readOffset: offset,
      readLimit: limit ?? 0,
    });
    try {
      for await (const response of stream as AsyncIterable<{ data: Buffer }>) yield response.data;
    } catch (error) {
      const status = fromServiceError(error as never);
      throw status.code === Code.NOT_FOUND ? notFound(status.message) : status;
    }
  }

  async put(digest: Digest): Promise<BlobWriter> {
    const chunks: Buffer[] = [];
    let written = 0;
    return {
      write: async (chunk) => {
        written += chunk.length;
        if (written > digest.sizeBytes) throw invalidArgument('more data than the digest declares');
        chunks.push(chunk);
      },
      commit: async () => {
        if (written !== digest.sizeBytes) throw invalidArgument(`wrote ${written} of ${digest.sizeBytes} bytes`);
        await this.upload(digest, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
      },
      abort: async () => {
        chunks.length = 0;
      },
    };
  }

  /** Uploads one in-memory blob with the call that suits its size. */
  async upload(digest: Digest, data: Buffer): Promise<void> {
    if (isEmptyDigest(digest)) return;
    if (digest.sizeBytes <= BATCH_BLOB_BYTES) {
      await this.batchUpload([{ digest, data }]);
      return;
    }
    await this.streamUpload(digest, chunked(data));
  }

  /** Uploads small blobs in one BatchUpdateBlobs call; fails on the first per-blob error. */
  async batchUpload(items: Array<{ digest: Digest; data: Buffer }>): Promise<void> {
    if (items.length === 0) return;
    const response = await unary<BatchUpdateBlobsResponse>((done) =>
      this.connection.cas.batchUpdateBlobs(
        {
          instanceName: this.connection.instanceName,
          requests: items.map((i) => ({ digest: i.digest, data: i.data, compressor: 0 })),
          digestFunction: functionOf(items.map((i) => i.digest)).value,
        },
        done,
      ),
    );
    for (const r of response.responses) {
      if (r.status && r.status.code !== Code.OK) throw new StatusError(r.status.code, r.status.message);
    }
  }

  /** Streams a blob through ByteStream Write from any chunk source. */
  streamUpload(digest: Digest, chunks: Iterable<Buffer> | AsyncIterable<Buffer>): Promise<void> {
    const resourceName = `${this.prefix()}uploads/${randomUUID()}/blobs/${digest.hash}/${digest.sizeBytes}`;
    return new Promise<void>((resolve, reject) => {
      const stream = this.connection.byteStream.write(new Metadata(), (error, response) => {
        if (error) reject(fromServiceError(error));
        else if (response && response.committedSize !== digest.sizeBytes && response.committedSize !== -1) {
          reject(new StatusError(Code.DATA_LOSS, `server committed ${response.committedSize} of ${digest.sizeBytes} bytes`));
        } else resolve();
      });
      (async () => {
        let offset = 0;
        let first = true;
        const send = async (request: WriteRequest) => {
          if (!stream.write(request)) await new Promise((r) => stream.once('drain', r));
        };
        for await (const data of chunks) {
          await send({ resourceName: first ? resourceName : '', writeOffset: offset, finishWrite: false, data });
          first = false;
          offset += data.length;
        }
        await send({ resourceName: first ? resourceName : '', writeOffset: offset, finishWrite: true, data: Buffer.alloc(0) });
        stream.end();
      })().catch((error: unknown) => {
        stream.cancel();
        reject(error);
      });
    });
  }

  private resourceName(kind: 'blobs', digest: Digest): string {
    return `${this.prefix()}${kind}/${digest.hash}/${digest.sizeBytes}`;
  }

  private prefix(): string {
    return this.connection.instanceName ? `${this.connection.instanceName}/` : '';
  }
}

function functionOf(digests: readonly Digest[]): DigestFunction {
  return digestFunctionOf(digests[0] ?? { hash: '', sizeBytes: 0 });
}

export function* chunked(data: Buffer, size = WRITE_CHUNK_BYTES): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}
