/**
 * A BlobStore backed by a remote REAPI CAS: FindMissingBlobs, ByteStream Read and
 * resumable-free ByteStream Write (small blobs go through the batch calls). It is
 * both the client library's blob transport and a storage leaf, so a frontend can
 * put remote storage nodes behind the same decorators as local ones.
 */
import { randomUUID } from 'node:crypto';
import { type ClientWritableStream, Metadata } from '@grpc/grpc-js';
import { type RequestContext, throwIfAborted } from '../context/requestContext.js';
import { type Digest, type DigestFunction, digestFunctionOf, isEmptyDigest } from '../digest/digest.js';
import type {
  BatchReadBlobsResponse,
  BatchUpdateBlobsResponse,
  FindMissingBlobsResponse,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { ByteStreamService, WriteRequest, type WriteResponse } from '../gen/google/bytestream/bytestream.js';
import type { BatchItem, Blob, BlobStore, BlobWriter } from '../storage/blobStore.js';
import { bufferBlob } from '../storage/memoryBlobStore.js';
import { Code, invalidArgument, notFound, StatusError } from '../util/status.js';
import { type Connection, fromServiceError } from './connection.js';
import { callOptionsOf, cancelOnAbort, unaryIn } from './outgoingContext.js';

/** Blobs up to this size are read and written with the batch calls. */
const BATCH_BLOB_BYTES = 256 * 1024;
/** Upload chunk size for ByteStream writes. */
export const WRITE_CHUNK_BYTES = 1024 * 1024;
/** FindMissingBlobs requests are split to stay far below message limits. */
const FIND_MISSING_BATCH = 10_000;

export class GrpcBlobStore implements BlobStore {
  constructor(private readonly connection: Connection) {}

  async findMissing(context: RequestContext, digests: readonly Digest[]): Promise<Digest[]> {
    const missing: Digest[] = [];
    for (let i = 0; i < digests.length; i += FIND_MISSING_BATCH) {
      const slice = digests.slice(i, i + FIND_MISSING_BATCH).filter((d) => !isEmptyDigest(d));
      if (slice.length === 0) continue;
      const response = await unaryIn<FindMissingBlobsResponse>(context, (metadata, options, done) =>
        this.connection.cas.findMissingBlobs(
          { instanceName: this.connection.instanceName, blobDigests: slice, digestFunction: functionOf(slice).value },
          metadata,
          options,
          done,
        ),
      );
      missing.push(...response.missingBlobDigests);
    }
    return missing;
  }

  async get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    if (isEmptyDigest(digest)) return bufferBlob(Buffer.alloc(0));
    if (digest.sizeBytes <= BATCH_BLOB_BYTES) {
      const response = await unaryIn<BatchReadBlobsResponse>(context, (metadata, options, done) =>
        this.connection.cas.batchReadBlobs(
          {
            instanceName: this.connection.instanceName,
            digests: [digest],
            acceptableCompressors: [],
            digestFunction: digestFunctionOf(digest).value,
          },
          metadata,
          options,
          done,
        ),
      );
      const item = response.responses[0];
      if (!item || item.status?.code === Code.NOT_FOUND) return undefined;
      if (item.status && item.status.code !== Code.OK) throw new StatusError(item.status.code, item.status.message);
      return bufferBlob(item.data);
    }
    const blob: Blob = {
      sizeBytes: digest.sizeBytes,
      read: (offset, limit) => this.read(context, digest, offset, limit),
    };
    // Probe existence so that absent blobs give undefined rather than a failing stream.
    if ((await this.findMissing(context, [digest])).length > 0) return undefined;
    return blob;
  }

  /** Streams a blob with ByteStream Read, without get's existence probe (NOT_FOUND when absent). */
  async *read(context: RequestContext, digest: Digest, offset = 0, limit?: number): AsyncGenerator<Buffer> {
    throwIfAborted(context);
    const stream = this.connection.byteStream.read(
      { resourceName: this.resourceName('blobs', digest), readOffset: offset, readLimit: limit ?? 0 },
      new Metadata(),
      callOptionsOf(context),
    );
    const stopWatching = cancelOnAbort(context, stream);
    try {
      for await (const response of stream as AsyncIterable<{ data: Buffer }>) yield response.data;
    } catch (error) {
      throwIfAborted(context);
      const status = fromServiceError(error as never);
      throw status.code === Code.NOT_FOUND ? notFound(status.message) : status;
    } finally {
      stopWatching();
      // A reader that stops early (break, or an error of its own) ends the call too.
      stream.cancel();
    }
  }

  /**
   * Small blobs are buffered and sent with BatchUpdateBlobs at commit; larger ones
   * stream through one ByteStream Write as they are written, so memory stays
   * bounded whatever the size. Nothing becomes visible on the server before commit
   * (the final request carries finish_write); abort cancels the call.
   */
  async put(context: RequestContext, digest: Digest): Promise<BlobWriter> {
    if (isEmptyDigest(digest)) return emptyWriter();
    if (digest.sizeBytes > BATCH_BLOB_BYTES) {
      return new ByteStreamWriter(this.connection, context, digest, this.prefix());
    }
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
        const data = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
        await this.putBatch(context, [{ digest, data }]);
      },
      abort: async () => {
        chunks.length = 0;
      },
    };
  }

  /** Sends small blobs in one BatchUpdateBlobs call; fails on the first per-blob error. */
  async putBatch(context: RequestContext, items: readonly BatchItem[]): Promise<void> {
    if (items.length === 0) return;
    const response = await unaryIn<BatchUpdateBlobsResponse>(context, (metadata, options, done) =>
      this.connection.cas.batchUpdateBlobs(
        {
          instanceName: this.connection.instanceName,
          requests: items.map((i) => ({ digest: i.digest, data: i.data, compressor: 0 })),
          digestFunction: functionOf(items.map((i) => i.digest)).value,
        },
        metadata,
        options,
        done,
      ),
    );
    for (const r of response.responses) {
      if (r.status && r.status.code !== Code.OK) throw new StatusError(r.status.code, r.status.message);
    }
  }

  private resourceName(kind: 'blobs', digest: Digest): string {
    return `${this.prefix()}${kind}/${digest.hash}/${digest.sizeBytes}`;
  }

  private prefix(): string {
    return this.connection.instanceName ? `${this.connection.instanceName}/` : '';
  }
}

function emptyWriter(): BlobWriter {
  return {
    write: async (chunk) => {
      if (chunk.length > 0) throw invalidArgument('more data than the digest declares');
    },
    commit: async () => {},
    abort: async () => {},
  };
}

/**
 * One ByteStream Write call fed by BlobWriter calls. The call opens at the first
 * write; each write waits for the channel to take its data. A server that already
 * holds the blob may answer before the end (REAPI allows it): later data is then
 * dropped and commit reports that answer.
 */
class ByteStreamWriter implements BlobWriter {
  private call: ClientWritableStream<WriteRequest> | undefined;
  /** Settles with the server's answer; observed so an early failure is never unhandled. */
  private answer: Promise<void> | undefined;
  private answered = false;
  private named = false;
  private offset = 0;
  private written = 0;
  private finished = false;
  private stopWatching = () => {};

  constructor(
    private readonly connection: Connection,
    private readonly context: RequestContext,
    private readonly digest: Digest,
    private readonly prefix: string,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    if (this.finished) throw invalidArgument('write after the blob was committed or aborted');
    this.written += chunk.length;
    if (this.written > this.digest.sizeBytes) throw invalidArgument('more data than the digest declares');
    for (let position = 0; position < chunk.length; position += WRITE_CHUNK_BYTES) {
      await this.send(chunk.subarray(position, position + WRITE_CHUNK_BYTES), false);
    }
  }

  async commit(): Promise<void> {
    if (this.finished) throw invalidArgument('blob already committed or aborted');
    if (this.written !== this.digest.sizeBytes) {
      await this.abort();
      throw invalidArgument(`wrote ${this.written} of ${this.digest.sizeBytes} bytes`);
    }
    await this.send(Buffer.alloc(0), true);
    this.finished = true;
    this.call?.end();
    await this.answer;
  }

  async abort(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    if (this.call && !this.answered) this.call.cancel();
    await this.answer?.catch(() => undefined);
  }

  private open(): ClientWritableStream<WriteRequest> {
    const { digest } = this;
    let call: ClientWritableStream<WriteRequest> | undefined;
    this.answer = new Promise<void>((resolve, reject) => {
      // The generated client's encoder copies every chunk twice (and zero-fills a buffer
      // twice its size) before grpc-js frames it; encodeWriteRequest copies it once.
      call = this.connection.byteStream.makeClientStreamRequest<WriteRequest, WriteResponse>(
        ByteStreamService.write.path,
        encodeWriteRequest,
        ByteStreamService.write.responseDeserialize,
        new Metadata(),
        callOptionsOf(this.context),
        (error, response) => {
          this.answered = true;
          this.stopWatching();
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
    });
    this.answer.catch(() => undefined);
    this.call = call as ClientWritableStream<WriteRequest>;
    this.stopWatching = cancelOnAbort(this.context, this.call);
    return this.call;
  }

  private async send(data: Buffer, finishWrite: boolean): Promise<void> {
    const call = this.call ?? this.open();
    if (this.answered) return;
    // Only the first request names the resource.
    const resourceName = this.named
      ? ''
      : `${this.prefix}uploads/${randomUUID()}/blobs/${this.digest.hash}/${this.digest.sizeBytes}`;
    this.named = true;
    const request = { resourceName, writeOffset: this.offset, finishWrite, data };
    this.offset += data.length;
    if (call.write(request)) return;
    // Wait until the channel takes more, or the server has answered (then nothing more is sent).
    await new Promise<void>((resolve) => {
      const done = () => {
        call.off('drain', done);
        resolve();
      };
      call.on('drain', done);
      void this.answer?.then(done, done);
    });
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
