/**
 * Helpers for the worker's tests: an in-memory verified CAS, builders that upload
 * input trees and Actions, a throwaway local cache and work directory, and
 * executeAction run on them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backgroundContext, type RequestContext } from '../../src/context/requestContext.js';
import { type Digest, digestOf } from '../../src/digest/digest.js';
import {
  Action,
  Command,
  type Command_OutputDirectoryFormat,
  Directory,
  type ExecuteResponse,
  type Platform_Property,
  Tree,
} from '../../src/gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type BlobStore, getBuffer, putBuffer } from '../../src/storage/blobStore.js';
import { MemoryBlobStore } from '../../src/storage/memoryBlobStore.js';
import { VerifyingBlobStore } from '../../src/storage/verifyingBlobStore.js';
import { durationFromMs } from '../../src/util/time.js';
import { type ExecuteActionDeps, executeAction } from '../../src/worker/executeAction.js';
import { LocalCache } from '../../src/worker/localCache.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

export type Entry =
  | { kind: 'file'; data: Buffer; executable: boolean }
  | { kind: 'symlink'; target: string }
  | { kind: 'dir'; entries: Record<string, Entry> };

export const file = (data: string | Buffer, executable = false): Entry => ({
  kind: 'file',
  data: typeof data === 'string' ? Buffer.from(data) : data,
  executable,
});
export const dir = (entries: Record<string, Entry> = {}): Entry => ({ kind: 'dir', entries });
export const link = (target: string): Entry => ({ kind: 'symlink', target });

/** Builds nested entries from slash-separated paths, e.g. {'usr/bin/sh': file(...), bin: link('usr/bin')}. */
export function treeFromPaths(paths: Record<string, Entry>): Record<string, Entry> {
  const root: Record<string, Entry> = {};
  for (const [path, entry] of Object.entries(paths)) {
    const parts = path.split('/').filter((p) => p !== '');
    let entries = root;
    for (const part of parts.slice(0, -1)) {
      if (entries[part] === undefined) entries[part] = dir();
      const existing = entries[part] as Entry;
      if (existing.kind !== 'dir') throw new Error(`${path}: ${part} is not a directory`);
      entries = existing.entries;
    }
    entries[parts[parts.length - 1] as string] = entry;
  }
  return root;
}

export function newCas(): BlobStore {
  return new VerifyingBlobStore(new MemoryBlobStore());
}

export async function putBlob(cas: BlobStore, data: Buffer | string): Promise<Digest> {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const digest = digestOf(bytes);
  await putBuffer(context, cas, digest, bytes);
  return digest;
}

/** Uploads a tree (files, then Directory messages) and returns the root Directory digest. */
export async function uploadTree(
  cas: BlobStore,
  entries: Record<string, Entry>,
  skipFiles = new Set<string>(),
): Promise<Digest> {
  const directory: Directory = { files: [], directories: [], symlinks: [], nodeProperties: undefined };
  for (const name of Object.keys(entries).sort()) {
    const entry = entries[name] as Entry;
    if (entry.kind === 'file') {
      const digest = digestOf(entry.data);
      if (!skipFiles.has(entry.data.toString())) await putBuffer(context, cas, digest, entry.data);
      directory.files.push({ name, digest, isExecutable: entry.executable, nodeProperties: undefined });
    } else if (entry.kind === 'symlink') {
      directory.symlinks.push({ name, target: entry.target, nodeProperties: undefined });
    } else {
      directory.directories.push({ name, digest: await uploadTree(cas, entry.entries, skipFiles) });
    }
  }
  return putBlob(cas, Buffer.from(Directory.encode(directory).finish()));
}

export interface ActionSpec {
  arguments: string[];
  env?: Record<string, string>;
  workingDirectory?: string;
  outputPaths?: string[];
  outputFiles?: string[];
  outputDirectories?: string[];
  outputDirectoryFormat?: Command_OutputDirectoryFormat;
  inputRoot: Digest;
  timeoutMs?: number;
  platform?: Platform_Property[];
}

export async function uploadAction(cas: BlobStore, spec: ActionSpec): Promise<Digest> {
  const command: Command = {
    arguments: spec.arguments,
    environmentVariables: Object.entries(spec.env ?? { PATH: '/usr/bin:/bin' })
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, value]) => ({ name, value })),
    outputFiles: spec.outputFiles ?? [],
    outputDirectories: spec.outputDirectories ?? [],
    outputPaths: spec.outputPaths ?? [],
    platform: undefined,
    workingDirectory: spec.workingDirectory ?? '',
    outputNodeProperties: [],
    outputDirectoryFormat: spec.outputDirectoryFormat ?? 0,
  };
  const commandDigest = await putBlob(cas, Buffer.from(Command.encode(command).finish()));
  const timeout = spec.timeoutMs === undefined ? undefined : durationFromMs(spec.timeoutMs);
  const action: Action = {
    commandDigest,
    inputRootDigest: spec.inputRoot,
    timeout,
    doNotCache: false,
    salt: Buffer.alloc(0),
    platform: spec.platform ? { properties: spec.platform } : undefined,
  };
  return putBlob(cas, Buffer.from(Action.encode(action).finish()));
}

export async function blobText(cas: BlobStore, digest: Digest | undefined): Promise<string | undefined> {
  if (!digest) return undefined;
  return (await getBuffer(context, cas, digest))?.toString();
}

export async function readTree(cas: BlobStore, digest: Digest | undefined): Promise<Tree> {
  const data = digest && (await getBuffer(context, cas, digest));
  if (!data) throw new Error('tree missing from the CAS');
  return Tree.decode(data);
}

export interface Harness {
  cas: BlobStore;
  cache: LocalCache;
  directory: string;
  workDirectory: string;
  close(): Promise<void>;
}

export async function newHarness(cas: BlobStore = newCas()): Promise<Harness> {
  const directory = await mkdtemp(join(tmpdir(), 'granary-worker-test-'));
  const cache = await LocalCache.open({ directory: join(directory, 'cache'), maximumSizeBytes: 256 * 1024 * 1024 });
  return {
    cas,
    cache,
    directory,
    workDirectory: join(directory, 'work'),
    close: async () => {
      await cache.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * What executeAction runs with on a harness: its CAS, cache and work directory,
 * the host-tools sandbox and a 30 s default timeout; `extra` adds or overrides.
 */
export function harnessDeps(h: Harness, extra: Partial<ExecuteActionDeps> = {}): ExecuteActionDeps {
  return {
    cas: h.cas,
    cache: h.cache,
    workDirectory: h.workDirectory,
    sandbox: 'host-tools',
    defaultTimeoutMs: 30_000,
    workerName: 'test-worker',
    ...extra,
  };
}

/** An action to upload, its input root given as entries (none: an empty root). */
export type ActionWithInputs = Omit<ActionSpec, 'inputRoot'> & { inputs?: Record<string, Entry> };

/** Uploads the action and its inputs to the harness's CAS and runs it there (see harnessDeps). */
export async function runAction(
  h: Harness,
  spec: ActionWithInputs,
  extra: Partial<ExecuteActionDeps> = {},
): Promise<ExecuteResponse> {
  const inputRoot = await uploadTree(h.cas, spec.inputs ?? {});
  const actionDigest = await uploadAction(h.cas, { ...spec, inputRoot });
  return executeAction({ actionDigest }, harnessDeps(h, extra));
}

/** A BlobStore wrapper counting get() calls, to show what was fetched. */
export class CountingBlobStore implements BlobStore {
  gets = 0;
  constructor(private readonly inner: BlobStore) {}
  findMissing(context: RequestContext, digests: readonly Digest[]) {
    return this.inner.findMissing(context, digests);
  }
  get(context: RequestContext, digest: Digest) {
    this.gets++;
    return this.inner.get(context, digest);
  }
  put(context: RequestContext, digest: Digest) {
    return this.inner.put(context, digest);
  }
}

/** True while some process has exactly this argument (a test's marker) on its command line. */
export async function processWithArgumentExists(marker: string): Promise<boolean> {
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(marker)) return true;
  }
  return false;
}

/** /bin/sh and the shared libraries ldd lists for it, at the same paths, plus a bin -> usr/bin symlink. */
export async function minimalShellRoot(): Promise<Record<string, Entry>> {
  const shell = await realpath('/bin/sh');
  const paths: Record<string, Entry> = {
    'usr/bin/sh': file(await readFile(shell), true),
    bin: link('usr/bin'),
  };
  const ldd = execFileSync('ldd', [shell], { encoding: 'utf8' });
  for (const line of ldd.split('\n')) {
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (!match) continue;
    const library = match[1] as string;
    paths[library.slice(1)] = file(await readFile(await realpath(library)), ((await stat(library)).mode & 0o111) !== 0);
  }
  return treeFromPaths(paths);
}
