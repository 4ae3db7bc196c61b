/**
 * Declared outputs, before and after the run. Before: the parent directories of
 * every declared output are created (Bazel's compiles fail without them). After:
 * whatever exists at the declared paths becomes OutputFile, OutputDirectory (a
 * Tree, plus Directory messages when the Command asks for root_directory_digest)
 * or OutputSymlink, following REAPI: Command.output_paths (v2.1) supersedes
 * output_files/output_directories when non-empty.
 *
 * Nothing here ever follows a symlink out of the input root: symlinks in the
 * middle of an output path are resolved within the root (or the output counts as
 * absent), an output that is itself a symlink is reported as a symlink, and
 * symlinks inside output directories become SymlinkNodes.
 *
 * A symlink named by output_paths goes in output_symlinks (v2.1) and, because
 * v2.0 readers know only the older lists and the specification asks servers to
 * keep filling them, also in output_file_symlinks or output_directory_symlinks by
 * what it leads to as the command saw it: within the input root, or for an
 * absolute target outside it, through the sandbox's view (never more of the host
 * than the command could see). A dangling symlink, or one whose target the command
 * could not see, links to neither a file nor a directory, which v2.0 cannot say: it
 * is only in output_symlinks. Outputs named through output_files and
 * output_directories keep the v2.0 lists alone (output_symlinks is only for
 * output_paths, says the specification).
 */
import { lstat, readlink, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import type { DigestFunction } from '../digest/digest.js';
import {
  type ActionResult,
  type Command,
  Command_OutputDirectoryFormat,
  type OutputDirectory,
  type OutputFile,
  type OutputSymlink,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { buildHostTree, readAndHashFile } from '../tree/hostTree.js';
import type { UploadItem } from '../tree/upload.js';
import { Semaphore } from '../util/concurrency.js';
import { failedPrecondition } from '../util/status.js';
import { ensureDirectoryInRoot, type RootSemantics, resolveInRoot, rootRelativePath } from './paths.js';

export interface DeclaredOutputs {
  /** 'paths' when Command.output_paths is used (v2.1), 'legacy' for output_files/output_directories. */
  mode: 'paths' | 'legacy';
  paths: string[];
  files: string[];
  directories: string[];
}

export type OutputFields = Pick<
  ActionResult,
  'outputFiles' | 'outputDirectories' | 'outputSymlinks' | 'outputFileSymlinks' | 'outputDirectorySymlinks'
>;

export interface CollectedOutputs {
  fields: OutputFields;
  /** Every blob the result refers to (file contents, Trees, Directories), for uploading. */
  uploads: UploadItem[];
}

export interface CollectOutputsOptions {
  /** Real path of the input root. */
  root: string;
  command: Command;
  semantics: RootSemantics;
  digestFunction: DigestFunction;
  concurrency?: number;
  /**
   * The sandbox's view (see sandbox.ts `visibility`), to tell whether an output
   * symlink to an absolute path outside the input root leads to a file or a
   * directory. Without it such symlinks are reported in output_symlinks only.
   */
  sandboxView?: (sandboxPath: string) => Promise<string | undefined>;
}

export function declaredOutputs(command: Command): DeclaredOutputs {
  if (command.outputPaths.length > 0) return { mode: 'paths', paths: command.outputPaths, files: [], directories: [] };
  return { mode: 'legacy', paths: [], files: command.outputFiles, directories: command.outputDirectories };
}

/** Validates every output path (INVALID_ARGUMENT if one leaves the root) and creates its parent directories. */
export async function createOutputParents(root: string, command: Command, semantics: RootSemantics): Promise<void> {
  const declared = declaredOutputs(command);
  const parents = new Set<string>();
  for (const path of [...declared.paths, ...declared.files, ...declared.directories]) {
    const relative = rootRelativePath(command.workingDirectory, path, 'output path');
    const slash = relative.lastIndexOf('/');
    parents.add(slash < 0 ? '' : relative.slice(0, slash));
  }
  for (const parent of [...parents].sort()) await ensureDirectoryInRoot(root, parent, semantics);
}

type Found =
  | { kind: 'file'; hostPath: string; executable: boolean }
  | { kind: 'directory'; hostPath: string }
  | { kind: 'symlink'; target: string; targetKind: 'file' | 'directory' | 'other' };

/** Output files this small are read once (kept from hashing to sending), up to the second bound per action. */
export const KEEP_OUTPUT_FILE_BYTES = 64 * 1024;
const KEEP_OUTPUT_BYTES_PER_ACTION = 1024 * 1024;

export async function collectOutputs(options: CollectOutputsOptions): Promise<CollectedOutputs> {
  const { root, command, semantics, digestFunction: fn } = options;
  const limiter = new Semaphore(options.concurrency ?? 16);
  const uploads: UploadItem[] = [];
  const fields: OutputFields = {
    outputFiles: [],
    outputDirectories: [],
    outputSymlinks: [],
    outputFileSymlinks: [],
    outputDirectorySymlinks: [],
  };
  const wantDirectories =
    command.outputDirectoryFormat === Command_OutputDirectoryFormat.DIRECTORY_ONLY ||
    command.outputDirectoryFormat === Command_OutputDirectoryFormat.TREE_AND_DIRECTORY;

  const find = async (path: string): Promise<Found | undefined> => {
    const relative = rootRelativePath(command.workingDirectory, path, 'output path');
    const hostPath = await resolveInRoot(root, relative, semantics, false);
    if (hostPath === undefined) return undefined;
    const stats = await lstat(hostPath).catch(() => undefined);
    if (!stats) return undefined;
    if (stats.isFile()) return { kind: 'file', hostPath, executable: (stats.mode & 0o111) !== 0 };
    if (stats.isDirectory()) return { kind: 'directory', hostPath };
    if (!stats.isSymbolicLink()) return undefined;
    const target = await readlink(hostPath);
    // Classify the target only as the command would see it, never on the host.
    const resolved = await resolveInRoot(root, relative, semantics, true);
    const targetStats = resolved === undefined ? undefined : await stat(resolved).catch(() => undefined);
    const targetKind = targetStats?.isDirectory() ? 'directory' : targetStats?.isFile() ? 'file' : 'other';
    return { kind: 'symlink', target, targetKind };
  };
  /** What a symlink named by output_paths leads to, looking outside the root only through the sandbox's view. */
  const pathsSymlinkKind = async (found: { target: string; targetKind: 'file' | 'directory' | 'other' }) => {
    if (found.targetKind !== 'other' || !found.target.startsWith('/') || !options.sandboxView) return found.targetKind;
    const hostPath = await options.sandboxView(posix.normalize(found.target));
    const targetStats = hostPath === undefined ? undefined : await stat(hostPath).catch(() => undefined);
    return targetStats?.isDirectory() ? 'directory' : targetStats?.isFile() ? 'file' : 'other';
  };

  // Small files are kept in memory as they are hashed, so they are not read again to be sent; bounded per action.
  let keepBudget = KEEP_OUTPUT_BYTES_PER_ACTION;
  const addFile = async (path: string, found: { hostPath: string; executable: boolean }) => {
    const keep = Math.min(KEEP_OUTPUT_FILE_BYTES, keepBudget);
    const { digest, data } = await limiter.run(() => readAndHashFile(found.hostPath, fn, keep));
    if (data) keepBudget -= data.length;
    uploads.push({ digest, path: found.hostPath, data });
    const output: OutputFile = {
      path,
      digest,
      isExecutable: found.executable,
      contents: Buffer.alloc(0),
      nodeProperties: undefined,
    };
    fields.outputFiles.push(output);
  };
  const addDirectory = async (path: string, hostPath: string) => {
    const tree = await buildHostTree(hostPath, fn, limiter, uploads);
    const output: OutputDirectory = {
      path,
      treeDigest: tree.treeDigest,
      isTopologicallySorted: true,
      rootDirectoryDigest: wantDirectories ? tree.rootDigest : undefined,
    };
    uploads.push({ digest: tree.treeDigest, data: tree.treeData });
    if (wantDirectories) uploads.push(...tree.directories);
    fields.outputDirectories.push(output);
  };
  const symlinkOf = (path: string, target: string): OutputSymlink => ({ path, target, nodeProperties: undefined });

  const declared = declaredOutputs(command);
  const work: Promise<void>[] = [];
  for (const path of declared.paths) {
    const found = await find(path);
    if (!found) continue;
    if (found.kind === 'file') work.push(addFile(path, found));
    else if (found.kind === 'directory') work.push(addDirectory(path, found.hostPath));
    else {
      fields.outputSymlinks.push(symlinkOf(path, found.target));
      // For v2.0 clients, as the specification recommends.
      const targetKind = await pathsSymlinkKind(found);
      if (targetKind === 'file') fields.outputFileSymlinks.push(symlinkOf(path, found.target));
      if (targetKind === 'directory') fields.outputDirectorySymlinks.push(symlinkOf(path, found.target));
    }
  }
  for (const path of declared.files) {
    const found = await find(path);
    if (!found) continue;
    if (found.kind === 'directory' || (found.kind === 'symlink' && found.targetKind === 'directory')) {
      throw failedPrecondition(`output file "${path}" is a directory`, []);
    }
    if (found.kind === 'file') work.push(addFile(path, found));
    else fields.outputFileSymlinks.push(symlinkOf(path, found.target));
  }
  for (const path of declared.directories) {
    const found = await find(path);
    if (!found) continue;
    if (found.kind === 'file' || (found.kind === 'symlink' && found.targetKind === 'file')) {
      throw failedPrecondition(`output directory "${path}" is not a directory`, []);
    }
    if (found.kind === 'directory') work.push(addDirectory(path, found.hostPath));
    else fields.outputDirectorySymlinks.push(symlinkOf(path, found.target));
  }
  await Promise.all(work);
  // Stable order, so the same outputs always give the same ActionResult.
  for (const list of Object.values(fields) as Array<Array<{ path: string }>>) {
    list.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
  return { fields, uploads };
}
