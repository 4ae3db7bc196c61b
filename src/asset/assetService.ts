/**
 * The Remote Asset API (build.bazel.remote.asset.v1) over the asset store, the
 * CAS and the downloader: what Fetch and Push do, independent of grpc-js.
 *
 * Status codes, following the specification:
 * - A request without URIs, an empty URI, repeated qualifier names, a malformed
 *   `http_header_url:` name or `checksum.sri`, or a malformed digest: RPC error
 *   INVALID_ARGUMENT. (BuildStream probes with empty requests and reads
 *   INVALID_ARGUMENT as "Remote Asset supported".)
 * - A fetch that matches no servable record and has no http(s) URI to download
 *   (pushed URNs, FetchDirectory, a record only Push makes such as a provenance
 *   record): RPC error NOT_FOUND, which BuildStream and Bazel treat as a cache miss.
 * - A download that fails at the origin: RPC OK with the failure in the response's
 *   `status` (errors "outside the server's control"): see downloader.ts.
 * - A push naming content not in the CAS (the client MUST upload it first):
 *   FAILED_PRECONDITION with a PreconditionFailure listing each missing blob as
 *   type MISSING, subject "blobs/HASH/SIZE", as REAPI does for missing inputs.
 *   A root or referenced directory that is not a Directory message: INVALID_ARGUMENT.
 *
 * A digest_function that differs from the `checksum.sri` algorithm is accepted:
 * the content is checked with the SRI algorithm and addressed with the requested
 * function (Bazel sends sha384/sha512 integrity with SHA256 digests).
 */
import { detachedContext, type RequestContext } from '../context/requestContext.js';
import {
  type Digest,
  type DigestFunction,
  formatDigest,
  parseDigest,
  resolveDigestFunction,
} from '../digest/digest.js';
import type {
  FetchBlobRequest,
  FetchBlobResponse,
  FetchDirectoryRequest,
  FetchDirectoryResponse,
  PushBlobRequest,
  PushDirectoryRequest,
  Qualifier,
} from '../gen/build/bazel/remote/asset/v1/remote_asset.js';
import type { Status } from '../gen/google/rpc/status.js';
import { Code, failedPrecondition, invalidArgument, notFound } from '../util/status.js';
import { msFromDuration, msFromTimestamp, timestampFromMs } from '../util/time.js';
import type { AssetKey, AssetKind, AssetRecord, AssetStore } from './assetStore.js';
import type { Downloader, DownloadOutcome, DownloadTarget } from './downloader.js';
import {
  asksForPushedRecord,
  CHECKSUM_SRI,
  headersOf,
  parseSri,
  publicQualifiers,
  qualifiersForUri,
  sha256SriOf,
  validateQualifiers,
} from './qualifiers.js';

export interface AssetServiceOptions {
  /** Download timeout when the request sets none. */
  defaultTimeoutMs?: number;
  /** Longest download timeout honoured (longer requests are clamped). */
  maximumTimeoutMs?: number;
  now?: () => number;
}

const OK: Status = { code: Code.OK, message: '', details: [] };
/** Missing blobs listed in a PreconditionFailure, at most. */
const MAXIMUM_VIOLATIONS = 100;

interface ParsedFetch {
  instanceName: string;
  digestFunction: DigestFunction;
  uris: string[];
  /** Canonical qualifiers of each URI. */
  perUri: Qualifier[][];
  oldestAcceptedMs: number;
  timeoutMs: number;
  sri: ReturnType<typeof parseSri> | undefined;
}

interface InFlight {
  startedAtMs: number;
  outcome: Promise<DownloadOutcome>;
}

export class RemoteAssetService {
  private readonly defaultTimeoutMs: number;
  private readonly maximumTimeoutMs: number;
  private readonly now: () => number;
  /** Downloads in progress, so a retried or concurrent identical fetch joins the first. */
  private readonly inFlight = new Map<string, InFlight>();

  constructor(
    private readonly store: AssetStore,
    private readonly downloader: Downloader | undefined,
    options: AssetServiceOptions = {},
  ) {
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 5 * 60_000;
    this.maximumTimeoutMs = options.maximumTimeoutMs ?? 60 * 60_000;
    this.now = options.now ?? Date.now;
  }

  async fetchBlob(context: RequestContext, request: FetchBlobRequest): Promise<FetchBlobResponse> {
    const parsed = this.parseFetch(request);
    const hit = await this.store.lookup(context, keysOf(parsed, 'blob'), parsed.oldestAcceptedMs);
    if (hit) {
      return {
        status: OK,
        uri: hit.uri,
        qualifiers: publicQualifiers(hit.qualifiers),
        expiresAt: hit.expireAtMs === undefined ? undefined : timestampFromMs(hit.expireAtMs),
        blobDigest: hit.digest,
        digestFunction: hit.digestFunction.value,
      };
    }
    if (asksForPushedRecord(request.qualifiers)) throw notFound(missMessage('record', parsed));
    const targets: DownloadTarget[] = [];
    parsed.uris.forEach((uri, index) => {
      if (/^https?:\/\//i.test(uri))
        targets.push({ uri, index, headers: headersOf(parsed.perUri[index] as Qualifier[]) });
    });
    if (targets.length === 0 || !this.downloader) throw notFound(missMessage('blob', parsed));
    const result = await this.startDownload(context, parsed, targets).outcome;
    if (!result.ok) {
      return {
        status: { code: result.code, message: result.message, details: [] },
        uri: result.target.uri,
        qualifiers: publicQualifiers(parsed.perUri[result.target.index] as Qualifier[]),
        expiresAt: undefined,
        blobDigest: undefined,
        digestFunction: parsed.digestFunction.value,
      };
    }
    const qualifiers = parsed.perUri[result.target.index] as Qualifier[];
    const echoed = publicQualifiers(qualifiers);
    if (!echoed.some((q) => q.name === CHECKSUM_SRI) && parsed.digestFunction.name === 'sha256') {
      echoed.push({ name: CHECKSUM_SRI, value: sha256SriOf(result.digest.hash) });
    }
    return {
      status: OK,
      uri: result.target.uri,
      qualifiers: echoed,
      expiresAt: undefined,
      blobDigest: result.digest,
      digestFunction: parsed.digestFunction.value,
    };
  }

  async fetchDirectory(context: RequestContext, request: FetchDirectoryRequest): Promise<FetchDirectoryResponse> {
    const parsed = this.parseFetch(request);
    const hit = await this.store.lookup(context, keysOf(parsed, 'directory'), parsed.oldestAcceptedMs);
    if (!hit) throw notFound(missMessage('directory', parsed));
    return {
      status: OK,
      uri: hit.uri,
      qualifiers: publicQualifiers(hit.qualifiers),
      expiresAt: hit.expireAtMs === undefined ? undefined : timestampFromMs(hit.expireAtMs),
      rootDirectoryDigest: hit.digest,
      digestFunction: hit.digestFunction.value,
    };
  }

  pushBlob(context: RequestContext, request: PushBlobRequest): Promise<void> {
    return this.push(context, 'blob', request, request.blobDigest, 'blob_digest');
  }

  pushDirectory(context: RequestContext, request: PushDirectoryRequest): Promise<void> {
    return this.push(context, 'directory', request, request.rootDirectoryDigest, 'root_directory_digest');
  }

  private async push(
    context: RequestContext,
    kind: AssetKind,
    request: PushBlobRequest | PushDirectoryRequest,
    rawDigest: Digest | undefined,
    field: string,
  ): Promise<void> {
    validateUris(request.uris);
    validateQualifiers(request.qualifiers, request.uris.length);
    const digestFunction = resolveDigestFunction(request.digestFunction, rawDigest?.hash);
    const digest = parseDigest(rawDigest, digestFunction, field);
    const referencesBlobs = request.referencesBlobs.map((d, i) =>
      parseDigest(d, digestFunction, `references_blobs[${i}]`),
    );
    const referencesDirectories = request.referencesDirectories.map((d, i) =>
      parseDigest(d, digestFunction, `references_directories[${i}]`),
    );
    const expireAtMs = request.expireAt ? Math.floor(msFromTimestamp(request.expireAt)) : undefined;
    const state = await this.store.checkContent(
      context,
      digestFunction,
      kind === 'blob' ? [digest, ...referencesBlobs] : referencesBlobs,
      kind === 'directory' ? [digest, ...referencesDirectories] : referencesDirectories,
      this.store.retainUntil(expireAtMs),
    );
    if (!state.complete) {
      if (state.malformed) throw invalidArgument(`cannot push ${request.uris[0]}: ${state.malformed}`);
      throw failedPrecondition(
        `cannot push ${request.uris[0]}: ${state.missing.length} blob(s) it names are not in the CAS, e.g. ${formatDigest(state.missing[0] as Digest)}`,
        state.missing.slice(0, MAXIMUM_VIOLATIONS).map((d) => ({
          type: 'MISSING',
          subject: `blobs/${d.hash}/${d.sizeBytes}`,
          description: 'upload it to the CAS before pushing the asset',
        })),
      );
    }
    const updatedAtMs = this.now();
    for (const [index, uri] of request.uris.entries()) {
      const record: AssetRecord = {
        instanceName: request.instanceName,
        kind,
        digestFunction,
        uri,
        qualifiers: qualifiersForUri(request.qualifiers, index, request.uris.length),
        digest,
        referencesBlobs,
        referencesDirectories,
        expireAtMs,
        updatedAtMs,
      };
      await this.store.write(context, record);
    }
  }

  private parseFetch(request: FetchBlobRequest | FetchDirectoryRequest): ParsedFetch {
    validateUris(request.uris);
    validateQualifiers(request.qualifiers, request.uris.length);
    const digestFunction = resolveDigestFunction(request.digestFunction);
    const sriValue = request.qualifiers.find((q) => q.name === CHECKSUM_SRI)?.value;
    const requested = request.timeout ? Math.floor(msFromDuration(request.timeout)) : 0;
    if (requested < 0) throw invalidArgument('timeout must not be negative');
    return {
      instanceName: request.instanceName,
      digestFunction,
      uris: request.uris,
      perUri: request.uris.map((_, i) => qualifiersForUri(request.qualifiers, i, request.uris.length)),
      oldestAcceptedMs: request.oldestContentAccepted ? Math.floor(msFromTimestamp(request.oldestContentAccepted)) : 0,
      timeoutMs: Math.min(requested > 0 ? requested : this.defaultTimeoutMs, this.maximumTimeoutMs),
      sri: sriValue === undefined ? undefined : parseSri(sriValue),
    };
  }

  /** Starts a download, or joins an identical one that started late enough for the request. */
  private startDownload(context: RequestContext, parsed: ParsedFetch, targets: DownloadTarget[]): InFlight {
    const key = JSON.stringify([
      parsed.instanceName,
      parsed.digestFunction.name,
      targets.map((t) => [t.uri, parsed.perUri[t.index]]),
    ]);
    const running = this.inFlight.get(key);
    if (running && running.startedAtMs >= parsed.oldestAcceptedMs) return running;
    const startedAtMs = this.now();
    const downloader = this.downloader as Downloader;
    // Other callers may join this download, and it goes on after this caller leaves (see below).
    const downloadContext = detachedContext(context);
    const outcome = (async (): Promise<DownloadOutcome> => {
      const result = await downloader.download(downloadContext, {
        targets,
        digestFunction: parsed.digestFunction,
        sri: parsed.sri,
        timeoutMs: parsed.timeoutMs,
      });
      if (result.ok) {
        const record: AssetRecord = {
          instanceName: parsed.instanceName,
          kind: 'blob',
          digestFunction: parsed.digestFunction,
          uri: result.target.uri,
          qualifiers: parsed.perUri[result.target.index] as Qualifier[],
          digest: result.digest,
          referencesBlobs: [],
          referencesDirectories: [],
          updatedAtMs: startedAtMs,
        };
        await this.store.write(downloadContext, record);
        await this.store.retain(downloadContext, record);
      }
      return result;
    })();
    const entry = { startedAtMs, outcome };
    this.inFlight.set(key, entry);
    // The download goes on even if the caller's RPC ends (the spec asks servers to
    // finish fetches for a retry to pick up); forget it once it settles.
    void outcome.then(
      () => this.inFlight.get(key) === entry && this.inFlight.delete(key),
      () => this.inFlight.get(key) === entry && this.inFlight.delete(key),
    );
    return entry;
  }
}

function validateUris(uris: readonly string[]): void {
  if (uris.length === 0) {
    throw invalidArgument('at least one URI is required', [{ field: 'uris', description: 'empty' }]);
  }
  uris.forEach((uri, i) => {
    if (uri === '') throw invalidArgument(`uris[${i}] is empty`, [{ field: `uris[${i}]`, description: 'empty' }]);
  });
}

function keysOf(parsed: ParsedFetch, kind: AssetKind): AssetKey[] {
  return parsed.uris.map((uri, i) => ({
    instanceName: parsed.instanceName,
    kind,
    digestFunction: parsed.digestFunction,
    uri,
    qualifiers: parsed.perUri[i] as Qualifier[],
  }));
}

/** Why nothing answers a fetch: `record` is a blob that only Push makes (see asksForPushedRecord). */
function missMessage(kind: AssetKind | 'record', parsed: ParsedFetch): string {
  const uris = parsed.uris.slice(0, 3).join(', ') + (parsed.uris.length > 3 ? ', ...' : '');
  const how = {
    blob: ' (only http and https URIs are downloaded)',
    directory: ' (directories are only known by Push)',
    record: ': nothing was pushed under this name (such a record is never downloaded, only pushed)',
  }[kind];
  return `no ${kind === 'directory' ? 'directory' : 'blob'} asset for ${uris} with these qualifiers and ${parsed.digestFunction.name}${how}`;
}
