/**
 * The small blobs a lease carries along with its Action, so that a worker starts
 * an action without a round trip per blob: the Command, the input root's
 * Directories, and, when the input tree is small, its small files. A profile of
 * trivial actions showed the worker spending a third of each action fetching
 * exactly these, one request after the other (the Directory before the files it
 * names). The server holds them anyway and reads each once.
 *
 * Bounded: at most `maximumBytes` in all, files only when the tree has few of
 * them (a large tree's files are mostly in the worker's cache already, and
 * sending them again would cost the server reads for nothing). What does not fit
 * is left out; the worker reads it from the CAS as before. Nothing here is
 * trusted by the worker: it checks each blob against its digest.
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, digestKey, isEmptyDigest } from '../digest/digest.js';
import { type Action, Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { InlineBlob } from '../gen/granary/worker/v1/lease.js';
import { type BlobStore, getBuffer } from '../storage/blobStore.js';

export interface LeaseBlobLimits {
  /** Total bytes of blobs one lease carries. */
  maximumBytes: number;
  /** Files are sent only when the whole input tree has at most this many. */
  maximumFiles: number;
  /** Largest single file sent. */
  maximumFileBytes: number;
  /** Directories read at most (a deep tree's rest is read by the worker). */
  maximumDirectories: number;
}

/** Enough for the Command and the tree of a typical small action; far below any gRPC message limit. */
export const DEFAULT_LEASE_BLOB_LIMITS: LeaseBlobLimits = {
  maximumBytes: 256 * 1024,
  maximumFiles: 32,
  maximumFileBytes: 64 * 1024,
  maximumDirectories: 64,
};

/** The blobs of `action` to send with its lease (never the empty blob, never one twice). */
export async function collectLeaseBlobs(
  context: RequestContext,
  cas: BlobStore,
  action: Action,
  limits: LeaseBlobLimits = DEFAULT_LEASE_BLOB_LIMITS,
  readBlob: (digest: Digest) => Promise<Buffer | undefined> = (digest) => getBuffer(context, cas, digest),
): Promise<InlineBlob[]> {
  const blobs: InlineBlob[] = [];
  const sent = new Set<string>();
  let totalBytes = 0;
  /** Adds a blob when it fits; returns its bytes (also when it did not fit), undefined when absent. */
  const add = async (digest: Digest): Promise<Buffer | undefined> => {
    if (isEmptyDigest(digest)) return Buffer.alloc(0);
    const key = digestKey(digest);
    if (sent.has(key) || totalBytes + digest.sizeBytes > limits.maximumBytes) return undefined;
    const data = await readBlob(digest);
    if (data === undefined) return undefined;
    sent.add(key);
    totalBytes += data.length;
    blobs.push({ digest, data });
    return data;
  };

  if (action.commandDigest) await add(action.commandDigest);
  if (!action.inputRootDigest) return blobs;
  const files: Digest[] = [];
  let pending: Digest[] = [action.inputRootDigest];
  let directoriesRead = 0;
  let complete = true;
  while (pending.length > 0) {
    const next: Digest[] = [];
    for (const digest of pending) {
      if (directoriesRead >= limits.maximumDirectories) {
        complete = false;
        break;
      }
      directoriesRead++;
      const data = await add(digest);
      if (data === undefined) {
        complete = false;
        continue;
      }
      let directory: Directory;
      try {
        directory = Directory.decode(data);
      } catch {
        return blobs; // Not a Directory: the worker will say so when it reads it.
      }
      for (const child of directory.directories) if (child.digest) next.push(child.digest);
      for (const file of directory.files) if (file.digest) files.push(file.digest);
    }
    pending = next;
  }
  if (!complete || files.length > limits.maximumFiles) return blobs;
  for (const digest of files) {
    if (digest.sizeBytes <= limits.maximumFileBytes) await add(digest);
  }
  return blobs;
}
