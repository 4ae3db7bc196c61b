/**
 * Downloads http(s) resources from their origin into the CAS for Fetch.FetchBlob
 * (what Bazel's --experimental_remote_downloader needs).
 *
 * URIs are tried in order and the first success wins. The body is hashed while it
 * streams in (the digest function of the request, and the `checksum.sri`
 * algorithm when one is given), staged in memory or, past a threshold, in a
 * scratch file, and only written to the CAS once it is complete and matches the
 * checksum: a mismatch stores nothing. Downloads are bounded in size and time.
 *
 * Connections go only where the FetchPolicy allows (see guardedHttp.ts): by
 * default never to loopback, private, link-local and other internal addresses,
 * checked after DNS and on every redirect, so a client cannot aim the server at
 * its own network.
 *
 * Failures at the origin are outcomes, not exceptions, because the API reports
 * them in FetchBlobResponse.status: NOT_FOUND (404, 410 and other client errors,
 * too many redirects), PERMISSION_DENIED (401, 403, 407, and "an asset from a
 * disallowed origin": an address the policy refuses, a redirect to another
 * scheme), RESOURCE_EXHAUSTED (429, or larger than the limit), UNAVAILABLE (5xx,
 * connection failures), DEADLINE_EXCEEDED (timeout) and ABORTED (checksum
 * mismatch: "a failed consistency check"). Failures of the CAS itself are thrown.
 */
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestContext } from '../context/requestContext.js';
import type { Digest, DigestFunction } from '../digest/digest.js';
import { type BlobStore, putChunks } from '../storage/blobStore.js';
import { SpillBuffer } from '../util/spillBuffer.js';
import { Code } from '../util/status.js';
import { FetchPolicy, OriginRefused } from './fetchPolicy.js';
import { type GuardedResponse, guardedGet, RedirectError, type Resolver } from './guardedHttp.js';
import { type SriHash, SriVerifier } from './qualifiers.js';

export interface DownloadTarget {
  uri: string;
  /** Position in the request's URI list (reported back). */
  index: number;
  headers: Record<string, string>;
}

export interface DownloadRequest {
  targets: readonly DownloadTarget[];
  digestFunction: DigestFunction;
  /** Expected content (hashes of the strongest algorithm, from parseSri); none: anything. */
  sri?: readonly SriHash[];
  timeoutMs: number;
}

export type DownloadOutcome =
  | { ok: true; target: DownloadTarget; digest: Digest }
  | { ok: false; target: DownloadTarget; code: Code; message: string };

export interface DownloaderOptions {
  /** Largest resource accepted. */
  maximumBytes: number;
  /** Redirects followed per URI (default DEFAULT_MAXIMUM_REDIRECTS). */
  maximumRedirects?: number;
  /** Where downloads may connect; by default only to globally reachable addresses. */
  policy?: FetchPolicy;
  /** Where bodies larger than the in-memory threshold are staged. */
  scratchDirectory?: string;
  /** DNS resolution, substitutable for tests. */
  resolve?: Resolver;
}

/** Redirects followed per URI by default: more than real mirrors chain, few enough to stop a loop quickly. */
export const DEFAULT_MAXIMUM_REDIRECTS = 10;

/** Bodies up to this size are staged in memory. */
const MEMORY_STAGING_BYTES = 8 * 1024 * 1024;

class OriginError extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}

/** Wraps a failure to stage a body locally, to tell it apart from the origin's failures. */
class StagingError extends Error {
  constructor(override readonly cause: unknown) {
    super('staging failed');
  }
}

export class Downloader {
  private readonly maximumBytes: number;
  private readonly maximumRedirects: number;
  private readonly policy: FetchPolicy;
  private readonly scratchDirectory: string;
  private readonly resolve: Resolver | undefined;

  constructor(
    private readonly cas: BlobStore,
    options: DownloaderOptions,
  ) {
    this.maximumBytes = options.maximumBytes;
    this.maximumRedirects = options.maximumRedirects ?? DEFAULT_MAXIMUM_REDIRECTS;
    this.policy = options.policy ?? new FetchPolicy();
    this.scratchDirectory = options.scratchDirectory ?? tmpdir();
    this.resolve = options.resolve;
  }

  /** Tries each target in order; resolves with the first success or the failures. */
  async download(context: RequestContext, request: DownloadRequest): Promise<DownloadOutcome> {
    const deadline = Date.now() + request.timeoutMs;
    const failures: string[] = [];
    let last: (DownloadOutcome & { ok: false }) | undefined;
    for (const target of request.targets) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        last = {
          ok: false,
          target,
          code: Code.DEADLINE_EXCEEDED,
          message: `${target.uri}: not tried, the ${request.timeoutMs} ms timeout expired`,
        };
        failures.push(last.message);
        break;
      }
      const staged = new SpillBuffer({
        memoryLimitBytes: MEMORY_STAGING_BYTES,
        temporaryPath: () => join(this.scratchDirectory, `granary-download-${randomBytes(12).toString('hex')}`),
      });
      try {
        const digest = await this.fetchInto(staged, target, request, remaining);
        await this.store(context, staged, digest);
        return { ok: true, target, digest };
      } catch (error) {
        if (!(error instanceof OriginError)) throw error;
        last = { ok: false, target, code: error.code, message: `${target.uri}: ${error.message}` };
        failures.push(last.message);
      } finally {
        await staged.dispose();
      }
    }
    if (!last || last.ok) throw new Error('download needs at least one target');
    return failures.length > 1 ? { ...last, message: `every URI failed: ${failures.join('; ')}` } : last;
  }

  /** Streams the origin's body into `staged`; returns its digest. Origin failures throw OriginError. */
  private async fetchInto(
    staged: SpillBuffer,
    target: DownloadTarget,
    request: DownloadRequest,
    timeoutMs: number,
  ): Promise<Digest> {
    const signal = AbortSignal.timeout(timeoutMs);
    const timedOut = () => new OriginError(Code.DEADLINE_EXCEEDED, `timed out after ${timeoutMs} ms`);
    let response: GuardedResponse;
    try {
      // Ask for the bytes as stored: a transparently decompressed .tar.gz would not match its checksum.
      response = await guardedGet(target.uri, {
        headers: { 'accept-encoding': 'identity', ...target.headers },
        signal,
        policy: this.policy,
        maximumRedirects: this.maximumRedirects,
        resolve: this.resolve,
      });
    } catch (error) {
      if (error instanceof OriginRefused) throw new OriginError(Code.PERMISSION_DENIED, `refused: ${error.message}`);
      if (error instanceof RedirectError) {
        throw new OriginError(error.tooMany ? Code.NOT_FOUND : Code.PERMISSION_DENIED, error.message);
      }
      if (signal.aborted) throw timedOut();
      throw new OriginError(Code.UNAVAILABLE, `request failed: ${describe(error)}`);
    }
    const body = response.body;
    if (response.statusCode < 200 || response.statusCode > 299) {
      body.destroy();
      throw new OriginError(
        httpStatusCode(response.statusCode),
        `the origin answered HTTP ${response.statusCode} ${response.statusMessage}`.trim(),
      );
    }
    const declared = Number(response.headers['content-length'] ?? Number.NaN);
    if (declared > this.maximumBytes) {
      body.destroy();
      throw new OriginError(
        Code.RESOURCE_EXHAUSTED,
        `${declared} bytes exceed the download limit of ${this.maximumBytes} bytes`,
      );
    }
    const hasher = request.digestFunction.createHasher();
    const verifier = request.sri && request.sri.length > 0 ? new SriVerifier(request.sri) : undefined;
    let size = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > this.maximumBytes) {
          throw new OriginError(
            Code.RESOURCE_EXHAUSTED,
            `the body exceeds the download limit of ${this.maximumBytes} bytes`,
          );
        }
        hasher.update(chunk);
        verifier?.update(chunk);
        await staged.append(chunk).catch((error: unknown) => {
          throw new StagingError(error);
        });
      }
    } catch (error) {
      body.destroy();
      if (error instanceof OriginError) throw error;
      // Our own scratch space failed (disk full, ...): a server error, not the origin's.
      if (error instanceof StagingError) throw error.cause;
      if (signal.aborted) throw timedOut();
      throw new OriginError(Code.UNAVAILABLE, `reading the body failed: ${describe(error)}`);
    }
    // A failure here is our own scratch space's (thrown as is), not the origin's.
    await staged.finish();
    const encoding = response.headers['content-encoding'];
    if (Number.isSafeInteger(declared) && (!encoding || encoding === 'identity') && declared !== size) {
      throw new OriginError(Code.UNAVAILABLE, `the body had ${size} bytes but Content-Length said ${declared}`);
    }
    const mismatch = verifier?.mismatch();
    if (mismatch) throw new OriginError(Code.ABORTED, mismatch);
    return { hash: hasher.digest('hex'), sizeBytes: size };
  }

  /** Writes verified content into the CAS (which checks it against the digest again). */
  private async store(context: RequestContext, staged: SpillBuffer, digest: Digest): Promise<void> {
    if ((await this.cas.findMissing(context, [digest])).length === 0) return;
    await putChunks(context, this.cas, digest, staged.read());
  }
}

function httpStatusCode(status: number): Code {
  if (status === 401 || status === 403 || status === 407) return Code.PERMISSION_DENIED;
  if (status === 429) return Code.RESOURCE_EXHAUSTED;
  if (status === 408 || status >= 500) return Code.UNAVAILABLE;
  return Code.NOT_FOUND;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as Error & { cause?: unknown }).cause;
  return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
}
