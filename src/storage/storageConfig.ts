/**
 * Storage is built from configuration: a nested object whose single key names a
 * backend or decorator. The all-in-one server uses a built-in default; scaled-out
 * deployments describe other graphs with the same vocabulary.
 *
 *   { "disk": { "directory": "/var/cache/granary/cas", "maximumSizeBytes": 10737418240 } }
 *   { "memory": { "maximumSizeBytes": 1073741824 } }
 */
import type { BlobStore } from './blobStore.js';
import { DiskBlobStore } from './diskBlobStore.js';
import type { EvictionListener } from './eviction.js';
import { MemoryBlobStore } from './memoryBlobStore.js';

export type StorageConfig =
  | { memory: { maximumSizeBytes: number } }
  | { disk: { directory: string; maximumSizeBytes: number } };

export interface OpenedStore {
  store: BlobStore;
  close(): Promise<void>;
}

/** What the server wants to hear from the stores it opens. */
export interface StorageHooks {
  onEviction?: EvictionListener;
}

export async function openStorage(config: StorageConfig, hooks: StorageHooks = {}): Promise<OpenedStore> {
  if ('memory' in config) {
    return { store: new MemoryBlobStore(config.memory.maximumSizeBytes), close: async () => {} };
  }
  if ('disk' in config) {
    const store = await DiskBlobStore.open({ ...config.disk, onEviction: hooks.onEviction });
    return { store, close: () => store.close() };
  }
  throw new Error(`unknown storage configuration: ${JSON.stringify(config)}`);
}
