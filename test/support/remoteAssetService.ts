/**
 * An in-memory AssetService for tests of Remote Asset clients: assets keyed by
 * URI and the exact qualifier set, as Granary's server matches them; it records
 * every push so tests can check qualifiers and references.
 */

import type { AssetService, FetchedAsset, PushOptions, Qualifier } from '../../src/client/remoteAsset.js';
import type { Digest } from '../../src/digest/digest.js';

export interface RecordedPush {
  kind: 'blob' | 'directory';
  uris: string[];
  digest: Digest;
  options: PushOptions;
}

function keyOf(kind: string, uri: string, qualifiers: readonly Qualifier[]): string {
  const sorted = [...qualifiers].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return JSON.stringify([kind, uri, sorted.map((q) => [q.name, q.value])]);
}

export class MemoryAssetService implements AssetService {
  readonly pushes: RecordedPush[] = [];
  readonly fetches: Array<{ kind: 'blob' | 'directory'; uris: string[]; qualifiers: Qualifier[] }> = [];
  private readonly assets = new Map<string, Digest>();

  async fetchBlob(uris: readonly string[], qualifiers: readonly Qualifier[] = []): Promise<FetchedAsset | undefined> {
    return this.fetch('blob', uris, qualifiers);
  }

  async fetchDirectory(
    uris: readonly string[],
    qualifiers: readonly Qualifier[] = [],
  ): Promise<FetchedAsset | undefined> {
    return this.fetch('directory', uris, qualifiers);
  }

  async pushBlob(uris: readonly string[], blob: Digest, options: PushOptions = {}): Promise<void> {
    this.push('blob', uris, blob, options);
  }

  async pushDirectory(uris: readonly string[], root: Digest, options: PushOptions = {}): Promise<void> {
    this.push('directory', uris, root, options);
  }

  private push(kind: 'blob' | 'directory', uris: readonly string[], digest: Digest, options: PushOptions): void {
    this.pushes.push({ kind, uris: [...uris], digest, options });
    for (const uri of uris) this.assets.set(keyOf(kind, uri, options.qualifiers ?? []), digest);
  }

  private fetch(
    kind: 'blob' | 'directory',
    uris: readonly string[],
    qualifiers: readonly Qualifier[],
  ): FetchedAsset | undefined {
    this.fetches.push({ kind, uris: [...uris], qualifiers: [...qualifiers] });
    for (const uri of uris) {
      const digest = this.assets.get(keyOf(kind, uri, qualifiers));
      if (digest) return { digest, uri, qualifiers: [...qualifiers] };
    }
    return undefined;
  }
}
