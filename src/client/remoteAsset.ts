/**
 * Client side of the Remote Asset API (build.bazel.remote.asset.v1): names
 * (URIs plus qualifiers) that resolve to blobs or directory trees in the CAS.
 * `granary publish` and `push-dir` push assets; the `remote-asset` source kind
 * fetches them. AssetService is the narrow view the rest of the client uses, so
 * tests can stand in an in-memory implementation.
 */
import { type Digest, digestFunctionOf } from '../digest/digest.js';
import {
  type FetchBlobResponse,
  FetchClient,
  type FetchDirectoryResponse,
  PushClient,
  type Qualifier,
} from '../gen/build/bazel/remote/asset/v1/remote_asset.js';
import { Code, StatusError } from '../util/status.js';
import { type Connection, unary } from './connection.js';

export type { Qualifier };

export interface FetchedAsset {
  digest: Digest;
  /** The URI that resolved (one of those asked for). */
  uri: string;
  qualifiers: Qualifier[];
}

export interface PushOptions {
  qualifiers?: readonly Qualifier[];
  /** Blobs kept alive with the asset. */
  referencesBlobs?: readonly Digest[];
  /** Directory trees kept alive with the asset. */
  referencesDirectories?: readonly Digest[];
}

/** What Granary's client needs from a Remote Asset server. */
export interface AssetService {
  /** The blob an asset names; undefined when the server knows no such asset. */
  fetchBlob(uris: readonly string[], qualifiers?: readonly Qualifier[]): Promise<FetchedAsset | undefined>;
  /** The directory tree an asset names; undefined when the server knows no such asset. */
  fetchDirectory(uris: readonly string[], qualifiers?: readonly Qualifier[]): Promise<FetchedAsset | undefined>;
  pushBlob(uris: readonly string[], blob: Digest, options?: PushOptions): Promise<void>;
  pushDirectory(uris: readonly string[], root: Digest, options?: PushOptions): Promise<void>;
}

/** Qualifiers from a plain mapping, sorted by name (the API treats them as a set). */
export function qualifiersFrom(map: Readonly<Record<string, string>>): Qualifier[] {
  return Object.entries(map)
    .map(([name, value]) => ({ name, value }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The `checksum.sri` qualifier value Bazel sends for a sha256 checksum: "sha256-BASE64". */
export function sha256Sri(hexDigest: string): string {
  return `sha256-${Buffer.from(hexDigest, 'hex').toString('base64')}`;
}

/** The Fetch and Push services of a farm, over the connection's channel. */
export class GrpcAssetClient implements AssetService {
  private readonly fetch: InstanceType<typeof FetchClient>;
  private readonly push: InstanceType<typeof PushClient>;

  constructor(private readonly connection: Connection) {
    this.fetch = connection.channel.client(FetchClient);
    this.push = connection.channel.client(PushClient);
  }

  fetchBlob(uris: readonly string[], qualifiers: readonly Qualifier[] = []): Promise<FetchedAsset | undefined> {
    return this.fetchAsset('blob', uris, qualifiers);
  }

  fetchDirectory(uris: readonly string[], qualifiers: readonly Qualifier[] = []): Promise<FetchedAsset | undefined> {
    return this.fetchAsset('directory', uris, qualifiers);
  }

  async pushBlob(uris: readonly string[], blob: Digest, options: PushOptions = {}): Promise<void> {
    await unary((done) =>
      this.push.pushBlob(
        {
          instanceName: this.connection.instanceName,
          uris: [...uris],
          qualifiers: [...(options.qualifiers ?? [])],
          expireAt: undefined,
          blobDigest: blob,
          referencesBlobs: [...(options.referencesBlobs ?? [])],
          referencesDirectories: [...(options.referencesDirectories ?? [])],
          digestFunction: digestFunctionOf(blob).value,
        },
        done,
      ),
    );
  }

  async pushDirectory(uris: readonly string[], root: Digest, options: PushOptions = {}): Promise<void> {
    await unary((done) =>
      this.push.pushDirectory(
        {
          instanceName: this.connection.instanceName,
          uris: [...uris],
          qualifiers: [...(options.qualifiers ?? [])],
          expireAt: undefined,
          rootDirectoryDigest: root,
          referencesBlobs: [...(options.referencesBlobs ?? [])],
          referencesDirectories: [...(options.referencesDirectories ?? [])],
          digestFunction: digestFunctionOf(root).value,
        },
        done,
      ),
    );
  }

  private async fetchAsset(
    kind: 'blob' | 'directory',
    uris: readonly string[],
    qualifiers: readonly Qualifier[],
  ): Promise<FetchedAsset | undefined> {
    const request = {
      instanceName: this.connection.instanceName,
      timeout: undefined,
      oldestContentAccepted: undefined,
      uris: [...uris],
      qualifiers: [...qualifiers],
      digestFunction: 0,
    };
    let response: FetchBlobResponse | FetchDirectoryResponse;
    try {
      response =
        kind === 'blob'
          ? await unary<FetchBlobResponse>((done) => this.fetch.fetchBlob(request, done))
          : await unary<FetchDirectoryResponse>((done) => this.fetch.fetchDirectory(request, done));
    } catch (error) {
      if (error instanceof StatusError && error.code === Code.NOT_FOUND) return undefined;
      throw error;
    }
    // A server may also report failure in the response's status field.
    const status = response.status;
    if (status && status.code !== Code.OK) {
      if (status.code === Code.NOT_FOUND) return undefined;
      throw new StatusError(status.code, status.message);
    }
    const digest = 'blobDigest' in response ? response.blobDigest : response.rootDirectoryDigest;
    if (!digest) throw new StatusError(Code.INTERNAL, `the server resolved ${uris.join(', ')} to no digest`);
    return { digest, uri: response.uri, qualifiers: response.qualifiers };
  }
}
