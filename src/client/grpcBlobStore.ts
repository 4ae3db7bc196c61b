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
import { ByteStreamService, WriteRequest, type WriteResponse } from '../gen/google/bytestream/bytestream.js';
import type { Blob, BlobStore, BlobWriter } from '../storage/blobStore.js';
import { bufferBlob } from '../storage/memoryBlobStore.js';
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
      // The generated client's encoder copies every chunk twice (and zero-fills a buffer
      // twice its size) before grpc-js frames it; encodeWriteRequest copies it once.
      const stream = this.connection.byteStream.makeClientStreamRequest<WriteRequest, WriteResponse>(
        ByteStreamService.write.path,
        encodeWriteRequest,
        ByteStreamService.write.responseDeserialize,
        new Metadata(),
        (error, response) => {
          if (error) reject(fromServiceError(error));
          else if (response && response.committedSize !== digest.sizeBytes && response.committedSize !== -1) {
            reject(
              new StatusError(
                Code.DATA_LOSS,
                `server committed ${response.committedSize} of ${digest.sizeBytes} bytes`,
              ),
            );
          } else resolve();
        },
      );
      (async () => {
        let offset = 0;
        let first = true;
        const send = async (data: Buffer, finishWrite: boolean) => {
          const request = { resourceName: first ? resourceName : '', writeOffset: offset, finishWrite, data };
          first = false;
          offset += data.length;
          if (!stream.write(request)) await new Promise((r) => stream.once('drain', r));
        };
        for await (const data of chunks) await send(data, false);
        await send(Buffer.alloc(0), true);
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

/**
 * Encodes a google.bytestream.WriteRequest into one buffer holding the data with a
 * single copy. The output is byte-for-byte what the generated encoder produces
 * (fields in number order, proto3 defaults omitted).
 */
export function encodeWriteRequest(request: WriteRequest): Buffer {
  const { resourceName, writeOffset, finishWrite, data } = request;
  // Negative offsets take 10-byte two's-complement varints; leave those to the generated code.
  if (!Number.isSafeInteger(writeOffset) || writeOffset < 0) return Buffer.from(WriteRequest.encode(request).finish());
  const nameBytes = resourceName === '' ? 0 : Buffer.byteLength(resourceName, 'utf8');
  let size = 0;
  if (nameBytes > 0) size += 1 + varintSize(nameBytes) + nameBytes;
  if (writeOffset !== 0) size += 1 + varintSize(writeOffset);
  if (finishWrite) size += 2;
  if (data.length > 0) size += 1 + varintSize(data.length) + data.length;
  const out = Buffer.allocUnsafe(size);
  let position = 0;
  if (nameBytes > 0) {
    out[position++] = 0x0a; // field 1 (resource_name), length-delimited
    position = writeVarint(out, position, nameBytes);
    position += out.write(resourceName, position, 'utf8');
  }
  if (writeOffset !== 0) {
    out[position++] = 0x10; // field 2 (write_offset), varint
    position = writeVarint(out, position, writeOffset);
  }
  if (finishWrite) {
    out[position++] = 0x18; // field 3 (finish_write), varint
    out[position++] = 1;
  }
  if (data.length > 0) {
    out[position++] = 0x52; // field 10 (data), length-delimited
    position = writeVarint(out, position, data.length);
    position += data.copy(out, position);
  }
  return out;
}

function varintSize(value: number): number {
  let size = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) size++;
  return size;
}

/** Writes a non-negative safe integer as a varint; returns the next position. */
function writeVarint(out: Buffer, position: number, value: number): number {
  let rest = value;
  let next = position;
  while (rest >= 0x80) {
    out[next++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  out[next++] = rest;
  return next;
}
