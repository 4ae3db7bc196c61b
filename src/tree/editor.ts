/**
 * Builds and edits REAPI Directory trees in a CAS. Everything here is canonical
 * and deterministic: entries are sorted by the UTF-8 bytes of their names, only
 * content, names, executable bits and symlink targets count (no times, owners or
 * modes), empty directories are kept, and the same input always gives the same
 * root digest. Only blobs the CAS reports missing are uploaded.
 *
 * TreeEditor is the mutable model behind it all: a directory tree whose parts are
 * loaded from the CAS lazily, so overlaying a small tree onto a large sysroot only
 * reads and rewrites the directories on the paths that change.
 */
import type { RequestContext } from '../context/requestContext.js';
import { type Digest, type DigestFunction, digestKey, digestOf, SHA256 } from '../digest/digest.js';
import {
  Directory,
  type DirectoryNode,
  type FileNode,
  type NodeProperties,
  type SymlinkNode,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { BlobStore } from '../storage/blobStore.js';
import { invalidArgument, notFound } from '../util/status.js';
import { EMPTY_DIRECTORY_DIGEST, readDirectory } from './directory.js';
import type { ListedEntry } from './list.js';
import { compareNames, splitTreePath } from './names.js';
import { type UploadItem, uploadMissing } from './upload.js';

/** One entry of an in-memory tree description, for treeFromEntries. */
export type TreeEntry =
  | {
      path: string;
      kind: 'file';
      /** The content; or give `digest` for a blob already in the CAS. */
      data?: Buffer | string;
      digest?: Digest;
      executable?: boolean;
    }
  | { path: string; kind: 'directory' }
  | { path: string; kind: 'symlink'; target: string };

interface FileTreeNode {
  kind: 'file';
  digest: Digest;
  executable: boolean;
  nodeProperties: NodeProperties | undefined;
}
interface SymlinkTreeNode {
  kind: 'symlink';
  target: string;
  nodeProperties: NodeProperties | undefined;
}
/**
 * A directory is either unloaded (only `digest`, its content is in the CAS) or
 * loaded (`children`, possibly edited; `digest` is then meaningless).
 */
interface DirectoryTreeNode {
  kind: 'directory';
  digest?: Digest;
  children?: Map<string, TreeNode>;
  nodeProperties?: NodeProperties | undefined;
}
type TreeNode = FileTreeNode | SymlinkTreeNode | DirectoryTreeNode;

const sameDigest = (a: Digest | undefined, b: Digest | undefined) =>
  a !== undefined && b !== undefined && a.hash === b.hash && a.sizeBytes === b.sizeBytes;

function sameLeaf(a: TreeNode, b: TreeNode): boolean {
  if (a.kind === 'file' && b.kind === 'file') return sameDigest(a.digest, b.digest) && a.executable === b.executable;
  if (a.kind === 'symlink' && b.kind === 'symlink') return a.target === b.target;
  return false;
}

const MAX_SYMLINK_HOPS = 40;

export interface FileToPut {
  digest: Digest;
  executable?: boolean;
  /** Content to upload with the tree (otherwise the blob must already be in the CAS, or given by hostPath). */
  data?: Buffer;
  /** A file holding the content, uploaded with the tree. */
  hostPath?: string;
}

/**
 * A directory tree being assembled. Edits are cheap and in memory; finish()
 * encodes the changed directories and uploads whatever the CAS is missing.
 * Without a CAS (cas undefined) it only computes digests.
 */
export class TreeEditor {
  private readonly uploads: UploadItem[] = [];
  /** Decoded Directory messages by digest, so a directory is fetched once. */
  private readonly fetched = new Map<string, Directory>();

  private constructor(
    private readonly context: RequestContext,
    private readonly cas: BlobStore | undefined,
    private root: DirectoryTreeNode,
    readonly digestFunction: DigestFunction,
  ) {}

  /** An editor over an empty tree. */
  static create(
    context: RequestContext,
    cas: BlobStore | undefined,
    digestFunction: DigestFunction = SHA256,
  ): TreeEditor {
    return new TreeEditor(context, cas, { kind: 'directory', children: new Map() }, digestFunction);
  }

  /** An editor over an existing tree in the CAS, read lazily. */
  static open(
    context: RequestContext,
    cas: BlobStore,
    root: Digest,
    digestFunction: DigestFunction = SHA256,
  ): TreeEditor {
    return new TreeEditor(context, cas, { kind: 'directory', digest: root }, digestFunction);
  }

  /** Adds or replaces a file, creating missing parent directories. */
  async putFile(path: string, file: FileToPut): Promise<void> {
    const { parent, name } = await this.parentFor(path);
    if (file.data) this.uploads.push({ digest: file.digest, data: file.data });
    else if (file.hostPath) this.uploads.push({ digest: file.digest, path: file.hostPath });
    parent.set(name, {
      kind: 'file',
      digest: file.digest,
      executable: file.executable ?? false,
      nodeProperties: undefined,
    });
  }

  /** Adds or replaces a file given by its content. Returns the content digest. */
  async putFileData(path: string, data: Buffer | string, executable = false): Promise<Digest> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const digest = digestOf(bytes, this.digestFunction);
    await this.putFile(path, { digest, data: bytes, executable });
    return digest;
  }

  /** Adds or replaces a symlink; the target is kept verbatim. */
  async putSymlink(path: string, target: string): Promise<void> {
    const { parent, name } = await this.parentFor(path);
    parent.set(name, { kind: 'symlink', target, nodeProperties: undefined });
  }

  /**
   * Creates a directory and its parents (like mkdir -p). A file or symlink at
   * `path` itself is replaced; one on the way to it is an error.
   */
  async makeDirectory(path: string): Promise<void> {
    const parts = splitTreePath(path);
    if (parts.length === 0) return;
    const { parent, name } = await this.parentFor(path);
    if (parent.get(name)?.kind !== 'directory') parent.set(name, { kind: 'directory', children: new Map() });
  }

  /**
   * Places the tree `subtree` (already in the CAS) at `path`, replacing whatever
   * was there; parents are created. An empty path replaces the whole tree.
   */
  async putTree(path: string, subtree: Digest): Promise<void> {
    const parts = splitTreePath(path);
    if (parts.length === 0) {
      this.root = { kind: 'directory', digest: subtree };
      return;
    }
    const { parent, name } = await this.parentFor(path);
    parent.set(name, { kind: 'directory', digest: subtree });
  }

  /** Removes whatever is at `path`; returns whether something was there. */
  async remove(path: string): Promise<boolean> {
    const parts = splitTreePath(path);
    if (parts.length === 0) throw invalidArgument('cannot remove the root directory');
    const stack = await this.directoryStack(parts.slice(0, -1), false);
    if (!stack) return false;
    const children = await this.load(stack[stack.length - 1] as DirectoryTreeNode);
    return children.delete(parts[parts.length - 1] as string);
  }

  /**
   * Overlays the tree `overlay` (already in the CAS) onto the directory at `path`
   * (created if needed). Directories merge recursively; anything else in the
   * overlay replaces what was there. A directory in the overlay that meets a
   * symlink resolving (within this tree) to a directory is merged into that
   * directory, as copying into a real file system would do; this keeps merged-/usr
   * links such as /lib -> usr/lib intact. Returns the paths where something
   * different was replaced, sorted.
   */
  async merge(overlay: Digest, path = ''): Promise<string[]> {
    const parts = splitTreePath(path);
    const stack = (await this.directoryStack(parts, true)) as DirectoryTreeNode[];
    const overlaps: string[] = [];
    await this.mergeInto(stack, { kind: 'directory', digest: overlay }, parts.join('/'), overlaps);
    return overlaps.sort(compareNames);
  }

  /** Describes what is at `path` without following symlinks, or undefined. */
  async lookup(path: string): Promise<ListedEntry | undefined> {
    const parts = splitTreePath(path);
    if (parts.length === 0) return { path: '', kind: 'directory', digest: this.digestOf(this.root) };
    const stack = await this.directoryStack(parts.slice(0, -1), false);
    if (!stack) return undefined;
    const node = (await this.load(stack[stack.length - 1] as DirectoryTreeNode)).get(parts[parts.length - 1] as string);
    if (!node) return undefined;
    return describe(parts.join('/'), node, (dir) => this.digestOf(dir));
  }

  /** Every directory path below the root (not following symlinks), sorted. */
  async directoryPaths(): Promise<string[]> {
    const paths: string[] = [];
    const walk = async (dir: DirectoryTreeNode, prefix: string) => {
      const children = await this.load(dir);
      for (const name of [...children.keys()].sort(compareNames)) {
        const child = children.get(name) as TreeNode;
        if (child.kind !== 'directory') continue;
        const path = prefix ? `${prefix}/${name}` : name;
        paths.push(path);
        await walk(child, path);
      }
    };
    await walk(this.root, '');
    return paths;
  }

  /**
   * Encodes the tree, uploads every missing blob (files added with data or
   * hostPath, and changed Directory messages) and returns the root digest, or the
   * digest of the directory at `path` (then only that subtree's directories are
   * uploaded). The editor stays usable.
   */
  async finish(path = ''): Promise<Digest> {
    const parts = splitTreePath(path);
    const stack = await this.directoryStack(parts, false);
    if (!stack) throw notFound(`no directory "${path}" in the tree`);
    const uploads: UploadItem[] = [...this.uploads];
    const digest = this.encode(stack[stack.length - 1] as DirectoryTreeNode, uploads);
    if (this.cas) await uploadMissing(this.context, this.cas, uploads);
    this.uploads.length = 0;
    return digest;
  }

  // --- internals ---

  private async mergeInto(
    stack: DirectoryTreeNode[],
    upper: DirectoryTreeNode,
    prefix: string,
    overlaps: string[],
  ): Promise<void> {
    const lower = stack[stack.length - 1] as DirectoryTreeNode;
    if (!lower.children && sameDigest(lower.digest, upper.digest)) return;
    const lowerChildren = await this.load(lower);
    if (lowerChildren.size === 0 && upper.digest) {
      // Staging into an empty directory: take the overlay as it is, unread.
      lower.children = undefined;
      lower.digest = upper.digest;
      return;
    }
    const upperChildren = await this.load(upper);
    for (const name of [...upperChildren.keys()].sort(compareNames)) {
      const node = upperChildren.get(name) as TreeNode;
      const path = prefix ? `${prefix}/${name}` : name;
      const existing = lowerChildren.get(name);
      if (!existing) {
        lowerChildren.set(name, node);
        continue;
      }
      if (node.kind === 'directory') {
        if (existing.kind === 'directory') {
          await this.mergeInto([...stack, existing], node, path, overlaps);
          continue;
        }
        if (existing.kind === 'symlink') {
          const resolved = await this.resolve(stack, existing.target, 0);
          if (resolved) {
            await this.mergeInto(resolved, node, path, overlaps);
            continue;
          }
        }
        overlaps.push(path);
        lowerChildren.set(name, node);
        continue;
      }
      if (!sameLeaf(existing, node)) overlaps.push(path);
      lowerChildren.set(name, node);
    }
  }

  /** Follows `target` from the directory at the top of `stack`; the stack of the directory it names, if any. */
  private async resolve(
    stack: DirectoryTreeNode[],
    target: string,
    hops: number,
  ): Promise<DirectoryTreeNode[] | undefined> {
    if (hops > MAX_SYMLINK_HOPS) return undefined;
    let current = target.startsWith('/') ? [this.root] : stack.slice();
    for (const part of target.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (current.length > 1) current = current.slice(0, -1);
        continue;
      }
      const child = (await this.load(current[current.length - 1] as DirectoryTreeNode)).get(part);
      if (!child || child.kind === 'file') return undefined;
      if (child.kind === 'directory') current = [...current, child];
      else {
        const next = await this.resolve(current, child.target, hops + 1);
        if (!next) return undefined;
        current = next;
      }
    }
    return current;
  }

  /** The parent directory's entries and the last name of `path`, creating parents. */
  private async parentFor(path: string): Promise<{ parent: Map<string, TreeNode>; name: string }> {
    const parts = splitTreePath(path);
    if (parts.length === 0) throw invalidArgument('the path of a file or symlink must not be empty');
    const stack = (await this.directoryStack(parts.slice(0, -1), true)) as DirectoryTreeNode[];
    const parent = await this.load(stack[stack.length - 1] as DirectoryTreeNode);
    return { parent, name: parts[parts.length - 1] as string };
  }

  /**
   * Walks `parts` from the root without following symlinks. Missing directories
   * are created when `create`, and a file or symlink in the way is then an error.
   * Returns undefined when not creating and something is missing.
   */
  private async directoryStack(parts: string[], create: boolean): Promise<DirectoryTreeNode[] | undefined> {
    const stack: DirectoryTreeNode[] = [this.root];
    for (let i = 0; i < parts.length; i++) {
      const name = parts[i] as string;
      const children = await this.load(stack[stack.length - 1] as DirectoryTreeNode);
      let child = children.get(name);
      if (child && child.kind !== 'directory') {
        if (!create) return undefined;
        throw invalidArgument(
          `"${parts.slice(0, i + 1).join('/')}" is a ${child.kind}, not a directory, so nothing can be put below it`,
        );
      }
      if (!child) {
        if (!create) return undefined;
        child = { kind: 'directory', children: new Map() };
        children.set(name, child);
      }
      stack.push(child);
    }
    return stack;
  }

  private async load(dir: DirectoryTreeNode): Promise<Map<string, TreeNode>> {
    if (dir.children) return dir.children;
    const digest = dir.digest as Digest;
    const message = await this.fetch(digest);
    const children = new Map<string, TreeNode>();
    for (const file of message.files) {
      children.set(file.name, {
        kind: 'file',
        digest: file.digest as Digest,
        executable: file.isExecutable,
        nodeProperties: file.nodeProperties,
      });
    }
    for (const sub of message.directories) children.set(sub.name, { kind: 'directory', digest: sub.digest as Digest });
    for (const link of message.symlinks) {
      children.set(link.name, { kind: 'symlink', target: link.target, nodeProperties: link.nodeProperties });
    }
    dir.children = children;
    dir.nodeProperties = message.nodeProperties;
    return children;
  }

  private async fetch(digest: Digest): Promise<Directory> {
    const key = digestKey(digest);
    const cached = this.fetched.get(key);
    if (cached) return cached;
    if (digest.sizeBytes === 0) return Directory.decode(Buffer.alloc(0));
    if (!this.cas) throw notFound(`directory ${digest.hash}/${digest.sizeBytes} is unknown (no CAS to read it from)`);
    const message = await readDirectory(this.context, this.cas, digest);
    if (!message) throw notFound(`directory ${digest.hash}/${digest.sizeBytes} is missing from the CAS`);
    this.fetched.set(key, message);
    return message;
  }

  private digestOf(dir: DirectoryTreeNode): Digest {
    return this.encode(dir, undefined);
  }

  private encode(dir: DirectoryTreeNode, uploads: UploadItem[] | undefined): Digest {
    if (!dir.children) return dir.digest as Digest;
    const files: FileNode[] = [];
    const directories: DirectoryNode[] = [];
    const symlinks: SymlinkNode[] = [];
    for (const name of [...dir.children.keys()].sort(compareNames)) {
      const node = dir.children.get(name) as TreeNode;
      if (node.kind === 'file') {
        files.push({ name, digest: node.digest, isExecutable: node.executable, nodeProperties: node.nodeProperties });
      } else if (node.kind === 'symlink') {
        symlinks.push({ name, target: node.target, nodeProperties: node.nodeProperties });
      } else {
        directories.push({ name, digest: this.encode(node, uploads) });
      }
    }
    const data = Buffer.from(
      Directory.encode({ files, directories, symlinks, nodeProperties: dir.nodeProperties }).finish(),
    );
    const digest = digestOf(data, this.digestFunction);
    uploads?.push({ digest, data });
    return digest;
  }
}

function describe(path: string, node: TreeNode, digestOfDir: (dir: DirectoryTreeNode) => Digest): ListedEntry {
  if (node.kind === 'file') return { path, kind: 'file', digest: node.digest, executable: node.executable };
  if (node.kind === 'symlink') return { path, kind: 'symlink', target: node.target };
  return { path, kind: 'directory', digest: digestOfDir(node) };
}

/** Builds a tree from an in-memory description. Later entries replace earlier ones at the same path. */
export async function treeFromEntries(
  context: RequestContext,
  cas: BlobStore | undefined,
  entries: readonly TreeEntry[],
  digestFunction: DigestFunction = SHA256,
): Promise<Digest> {
  const editor = TreeEditor.create(context, cas, digestFunction);
  for (const entry of entries) {
    if (entry.kind === 'directory') await editor.makeDirectory(entry.path);
    else if (entry.kind === 'symlink') await editor.putSymlink(entry.path, entry.target);
    else if (entry.data !== undefined) await editor.putFileData(entry.path, entry.data, entry.executable ?? false);
    else if (entry.digest) await editor.putFile(entry.path, { digest: entry.digest, executable: entry.executable });
    else throw invalidArgument(`file entry "${entry.path}" has neither data nor digest`);
  }
  return editor.finish();
}

/**
 * Overlays trees in order: later trees win on conflicting files and symlinks,
 * directories merge recursively (see TreeEditor.merge for symlinked directories).
 * No roots gives the empty directory.
 */
export async function mergeTrees(
  context: RequestContext,
  cas: BlobStore,
  roots: readonly Digest[],
  digestFunction: DigestFunction = SHA256,
): Promise<Digest> {
  if (roots.length === 0) return EMPTY_DIRECTORY_DIGEST;
  if (roots.length === 1) return roots[0] as Digest;
  const editor = TreeEditor.open(context, cas, roots[0] as Digest, digestFunction);
  for (const root of roots.slice(1)) await editor.merge(root);
  return editor.finish();
}

/**
 * Places `subtree` at `path` inside `root`, replacing whatever was at that path
 * and creating missing parents. A file or symlink on the way is an error.
 */
export async function graftAt(
  context: RequestContext,
  cas: BlobStore,
  root: Digest,
  path: string,
  subtree: Digest,
  digestFunction: DigestFunction = SHA256,
): Promise<Digest> {
  if (splitTreePath(path).length === 0) return subtree;
  const editor = TreeEditor.open(context, cas, root, digestFunction);
  await editor.putTree(path, subtree);
  return editor.finish();
}

/** The digest of the directory at `path` in `root` (symlinks are not followed), or undefined. */
export async function subtreeAt(
  context: RequestContext,
  cas: BlobStore,
  root: Digest,
  path: string,
): Promise<Digest | undefined> {
  const entry = await TreeEditor.open(context, cas, root).lookup(path);
  return entry?.kind === 'directory' ? entry.digest : undefined;
}
