/**
 * Directory trees on the host, hashed into REAPI messages: a file's digest, and
 * a directory's Directory messages and Tree (every subdirectory, empty ones too;
 * symlinks kept as symlinks with their targets verbatim, never followed;
 * sockets, FIFOs and devices left out). The worker describes its output
 * directories this way and the meta-build client its local sources.
 */
import { constants, type Dirent } from 'node:fs';
import { lstat, open, readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, type DigestFunction, digestKey, digestOf, SHA256 } from '../digest/digest.js';
import {
  Directory,
  type DirectoryNode,
  type FileNode,
  type SymlinkNode,
  Tree,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { BlobStore } from '../storage/blobStore.js';
import { Semaphore } from '../util/concurrency.js';
import { invalidArgument } from '../util/status.js';
import { TreeEditor } from './editor.js';
import { type UploadItem, uploadMissing } from './upload.js';

/** Hashes a file without following a symlink at its last component. */
export async function hashFile(path: string, fn: DigestFunction): Promise<Digest> {
  return (await readAndHashFile(path, fn, 0)).digest;
}

/**
 * Hashes a file like hashFile and, when it is at most `keepBytes` long, returns
 * its bytes too: a small output is then read once, to hash it and to send it.
 */
export async function readAndHashFile(
  path: string,
  fn: DigestFunction,
  keepBytes: number,
): Promise<{ digest: Digest; data?: Buffer }> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const hasher = fn.createHasher();
    const buffer = Buffer.allocUnsafe(1024 * 1024);
    const kept: Buffer[] = [];
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hasher.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
      if (size <= keepBytes) kept.push(Buffer.from(buffer.subarray(0, bytesRead)));
    }
    const digest = { hash: hasher.digest('hex'), sizeBytes: size };
    return size <= keepBytes ? { digest, data: Buffer.concat(kept) } : { digest };
  } finally {
    await handle.close();
  }
}

interface BuiltDirectory {
  directory: Directory;
  digest: Digest;
  data: Buffer;
  /** Every directory below this one, each listed before its own children. */
  descendants: BuiltDirectory[];
}

/** A host directory hashed: its Tree message and every Directory message in it. */
export interface BuiltTree {
  treeDigest: Digest;
  treeData: Buffer;
  rootDigest: Digest;
  /** Root and child Directory messages, for DIRECTORY_ONLY / TREE_AND_DIRECTORY. */
  directories: UploadItem[];
}

/**
 * Hashes a host directory into its Tree message (children topologically sorted)
 * and Directory messages. Every file met is added to `uploads` (by path), so the
 * caller can send what the CAS lacks; `limiter` bounds open files.
 */
export async function buildHostTree(
  hostPath: string,
  fn: DigestFunction,
  limiter: Semaphore,
  uploads: UploadItem[],
): Promise<BuiltTree> {
  const root = await buildDirectory(hostPath, fn, limiter, uploads);
  const children: Directory[] = [];
  const directories: UploadItem[] = [{ digest: root.digest, data: root.data }];
  const seen = new Set<string>();
  for (const child of root.descendants) {
    const key = digestKey(child.digest);
    if (seen.has(key)) continue;
    seen.add(key);
    children.push(child.directory);
    directories.push({ digest: child.digest, data: child.data });
  }
  const treeData = Buffer.from(Tree.encode({ root: root.directory, children }).finish());
  return { treeDigest: digestOf(treeData, fn), treeData, rootDigest: root.digest, directories };
}

async function buildDirectory(
  hostPath: string,
  fn: DigestFunction,
  limiter: Semaphore,
  uploads: UploadItem[],
): Promise<BuiltDirectory> {
  const entries = await limiter.run(() => readdir(hostPath, { withFileTypes: true }));
  entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  const files: Array<Promise<FileNode>> = [];
  const subdirectories: Array<Promise<[string, BuiltDirectory]>> = [];
  const symlinks: Array<Promise<SymlinkNode>> = [];
  for (const entry of entries) {
    const path = join(hostPath, entry.name);
    const kind = await entryKind(entry, path);
    if (kind === 'file') {
      files.push(
        limiter.run(async () => {
          const [digest, stats] = await Promise.all([hashFile(path, fn), lstat(path)]);
          uploads.push({ digest, path });
          return { name: entry.name, digest, isExecutable: (stats.mode & 0o111) !== 0, nodeProperties: undefined };
        }),
      );
    } else if (kind === 'directory') {
      subdirectories.push(buildDirectory(path, fn, limiter, uploads).then((built) => [entry.name, built]));
    } else if (kind === 'symlink') {
      symlinks.push(
        limiter.run(async () => ({ name: entry.name, target: await readlink(path), nodeProperties: undefined })),
      );
    }
    // Sockets, FIFOs and devices cannot be represented and are left out.
  }
  const built = await Promise.all(subdirectories);
  const directories: DirectoryNode[] = built.map(([name, child]) => ({ name, digest: child.digest }));
  const directory: Directory = {
    files: await Promise.all(files),
    directories,
    symlinks: await Promise.all(symlinks),
    nodeProperties: undefined,
  };
  const data = Buffer.from(Directory.encode(directory).finish());
  const descendants = built.flatMap(([, child]) => [child, ...child.descendants]);
  return { directory, digest: digestOf(data, fn), data, descendants };
}

async function entryKind(entry: Dirent, path: string): Promise<'file' | 'directory' | 'symlink' | 'other'> {
  if (entry.isFile()) return 'file';
  if (entry.isDirectory()) return 'directory';
  if (entry.isSymbolicLink()) return 'symlink';
  if (!entry.isBlockDevice() && !entry.isCharacterDevice() && !entry.isFIFO() && !entry.isSocket()) {
    // Some file systems report DT_UNKNOWN: ask lstat.
    const stats = await lstat(path);
    if (stats.isFile()) return 'file';
    if (stats.isDirectory()) return 'directory';
    if (stats.isSymbolicLink()) return 'symlink';
  }
  return 'other';
}

export interface TreeFromPathOptions {
  /** False computes the digest without uploading anything. Default true. */
  upload?: boolean;
  digestFunction?: DigestFunction;
  concurrency?: number;
}

/**
 * The root digest of a host directory's tree, uploading whatever the CAS lacks
 * (unless `upload` is false or there is no CAS). Files are executable when any
 * x bit is set.
 */
export async function treeFromPath(
  context: RequestContext,
  cas: BlobStore | undefined,
  hostPath: string,
  options: TreeFromPathOptions = {},
): Promise<Digest> {
  const stats = await stat(hostPath);
  if (!stats.isDirectory()) throw invalidArgument(`${hostPath} is not a directory`);
  const fn = options.digestFunction ?? SHA256;
  const uploads: UploadItem[] = [];
  const tree = await buildHostTree(hostPath, fn, new Semaphore(options.concurrency ?? 16), uploads);
  if (cas && options.upload !== false) await uploadMissing(context, cas, [...uploads, ...tree.directories]);
  return tree.rootDigest;
}

/** The root digest of a tree holding one host file under `name` (executable when any x bit is set). */
export async function treeFromFile(
  context: RequestContext,
  cas: BlobStore | undefined,
  hostPath: string,
  name: string,
  options: TreeFromPathOptions = {},
): Promise<Digest> {
  const fn = options.digestFunction ?? SHA256;
  const stats = await stat(hostPath);
  if (!stats.isFile()) throw invalidArgument(`${hostPath} is not a regular file`);
  const digest = await hashFile(hostPath, fn);
  const editor = TreeEditor.create(context, options.upload === false ? undefined : cas, fn);
  await editor.putFile(name, { digest, executable: (stats.mode & 0o111) !== 0, hostPath });
  return editor.finish();
}
