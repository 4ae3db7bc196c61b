/**
 * gRPC adapter for google.bytestream.ByteStream over the CAS. Serve it with
 * FramedByteStreamService (readResponseFrames.ts), whose serializer sends the
 * ReadResponses this adapter frames by hand without encoding them again.
 */
import type { ByteStreamBlobs, Upload } from '../cas/byteStream.js';
import { createCompressStream } from '../compression/zstd.js';
import type { RequestContext } from '../context/requestContext.js';
import type {
  ByteStreamServer,
  QueryWriteStatusRequest,
  ReadRequest,
  ReadResponse,
  WriteRequest,
  WriteResponse,
} from '../gen/google/bytestream/bytestream.js';
import type { UploadQuota } from '../quota/uploadQuota.js';
import { invalidArgument } from '../util/status.js';
import { clientStreaming, serverStreaming, unary, writeWithBackpressure } from './handlers.js';
import { readResourceInstance, writeResourceInstance } from './instanceNames.js';
import { frameReadResponse, READ_CHUNK_POOL } from './readResponseFrames.js';

export interface ByteStreamServerOptions {
  /** Per-caller upload allowance a Write spends (what is left of the blob when it starts); unlimited when absent. */
  uploadQuota?: UploadQuota;
}

export function byteStreamServer(blobs: ByteStreamBlobs, options: ByteStreamServerOptions = {}): ByteStreamServer {
  return {
    read: serverStreaming(
      async (request: ReadRequest, context, call) => {
        const { blob, offset, limit, compressor } = await blobs.openRead(
          context,
          request.resourceName,
          request.readOffset,
          request.readLimit,
        );
        // Compressed reads compress on the fly, from the requested uncompressed offset. Plain reads lend
        // the store the buffers their responses are framed in, given back once grpc-js copied each one.
        const chunks: AsyncIterable<Buffer> =
          compressor === 'zstd'
            ? createCompressStream({ pledgedSizeBytes: blob.sizeBytes - offset })(blob.read(offset, limit))
            : blob.read(offset, limit, { chunkPool: READ_CHUNK_POOL });
        for await (const data of chunks) {
          if (context.signal.aborted) return;
          await writeWithBackpressure<ReadResponse>(call, frameReadResponse(data));
        }
      },
      { instanceName: readResourceInstance },
    ),
    write: clientStreaming(
      async (requests: AsyncIterable<WriteRequest>, context): Promise<WriteResponse> => ({
        committedSize: await handleWrite(blobs, requests, context, options.uploadQuota),
      }),
      { instanceName: writeResourceInstance },
    ),
    queryWriteStatus: unary(
      async (request: QueryWriteStatusRequest, context) => {
        const status = await blobs.queryWriteStatus(context, request.resourceName);
        return { committedSize: status.committedSizeBytes, complete: status.complete };
      },
      { instanceName: writeResourceInstance },
    ),
  };
}

async function handleWrite(
  blobs: ByteStreamBlobs,
  requests: AsyncIterable<WriteRequest>,
  context: RequestContext,
  uploadQuota: UploadQuota | undefined,
): Promise<number> {
  let upload: Upload | undefined;
  let resourceName = '';
  let finished = false;
  try {
    for await (const request of requests) {
      if (!upload) {
        resourceName = request.resourceName;
        if (resourceName === '') throw invalidArgument('the first WriteRequest must name the resource');
        const start = await blobs.startWrite(context, resourceName, request.writeOffset);
        if (start.kind === 'exists') {
          // The blob is already stored: end the call early, as the specification allows.
          finished = true;
          return start.status.committedSizeBytes;
        }
        upload = start.upload;
        uploadQuota?.charge(context, upload.resource.digest.sizeBytes - upload.committedSizeBytes);
      } else if (request.resourceName !== '' && request.resourceName !== resourceName) {
        throw invalidArgument('resource_name changed in the middle of a Write call');
      }
      await upload.write(request.writeOffset, request.data);
      if (request.finishWrite) {
        finished = true;
        blobs.release(resourceName, upload);
        return await upload.finish();
      }
    }
    if (!upload) throw invalidArgument('Write call carried no WriteRequest');
    // Half-closed without finish_write: keep the data so a retry can resume.
    await blobs.suspend(resourceName, upload);
    return upload.committedSizeBytes;
  } catch (error) {
    if (upload && !finished) {
      if (context.signal.aborted) {
        await blobs.suspend(resourceName, upload);
      } else {
        blobs.release(resourceName, upload);
        await upload.abort();
      }
    } else if (upload) {
      await upload.abort();
    }
    throw error;
  }
}
