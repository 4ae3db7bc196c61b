/**
 * Path rules for the worker. Command paths (working directory, outputs) are
 * relative and may contain '..' but must never leave the input root, and symlinks
 * the action planted must never lead the worker (which runs as root, outside the
 * sandbox) to read or create anything outside the root. So every path the worker
 * touches after staging is resolved here component by component, following
 * symlinks the way the sandboxed command would see them.
 */
import { lstat, mkdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { invalidArgument } from '../util/status.js';

/**
 * How absolute symlink targets inside the root are read: 'chroot' when the input
 * root is '/' for the command (hermetic sandbox), 'host' when the root sits at its
 * own absolute path (host-tools sandbox, unsandboxed).
 */
export type RootSemantics = 'chroot' | 'host';

/**
 * Joins a path (relative to the working directory) onto the working directory and
 * resolves '..' lexically. Returns the path relative to the input root ('' for the
 * root itself). Absolute paths and paths leaving the root are INVALID_ARGUMENT.
 */
export function rootRelativePath(workingDirectory: string, path: string, field: string): string {
  for (const [name, value] of [
    ['working_directory', workingDirectory],
    [field, path],
  ] as const) {
    if (value.startsWith('/') || value.includes('\0')) {
      throw invalidArgument(`${name} "${value}" must be a relative path`, [
        { field: name, description: 'absolute path or NUL character' },
      ]);
    }
  }
  const joined = posix.normalize(posix.join(workingDirectory || '.', path || '.'));
  if (joined === '..' || joined.startsWith('../')) {
    throw invalidArgument(`${field} "${path}" leaves the input root`, [
      { field, description: 'escapes the input root' },
    ]);
  }
  const trimmed = joined.replace(/\/+$/, '');
  return trimmed === '.' ? '' : trimmed;
}

const MAX_SYMLINK_HOPS = 40;

interface WalkOptions {
  followFinal: boolean;
  create: boolean;
}

/**
 * Resolves a root-relative path to a host path inside `root`, following symlinks
 * in its components (and the last one too when followFinal) as the command would.
 * Returns undefined when resolution leaves the root (a symlink to a host path in the
 * 'host' semantics, '..' above the root) or loops. Missing components are allowed:
 * the result then names a path that does not exist. `root` must be a real path.
 */
export async function resolveInRoot(
  root: string,
  relativePath: string,
  semantics: RootSemantics,
  followFinal: boolean,
): Promise<string | undefined> {
  return walk(root, relativePath, semantics, { followFinal, create: false });
}

/**
 * Creates a root-relative directory and its missing parents, following existing
 * symlinks only within the root. INVALID_ARGUMENT when the path leads outside the
 * root or through something that is not a directory. Returns the host path.
 */
export async function ensureDirectoryInRoot(
  root: string,
  relativePath: string,
  semantics: RootSemantics,
): Promise<string> {
  const path = await walk(root, relativePath, semantics, { followFinal: true, create: true });
  if (path === undefined) {
    throw invalidArgument(`directory "${relativePath}" would be created outside the input root`);
  }
  return path;
}

async function walk(root: string, relativePath: string, semantics: RootSemantics, options: WalkOptions) {
  const pending = splitPath(relativePath);
  const current: string[] = [];
  let missing = false;
  let hops = 0;
  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (name === '..') {
      if (current.length > 0) current.pop();
      else if (semantics === 'host') return undefined;
      continue;
    }
    current.push(name);
    if (missing) continue;
    const hostPath = join(root, ...current);
    const isFinal = pending.length === 0;
    let stats: Awaited<ReturnType<typeof lstat>>;
    try {
      stats = await lstat(hostPath);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
      if (!options.create) {
        missing = true;
        continue;
      }
      await mkdir(hostPath, { mode: 0o755 }).catch(failIfNotExists);
      continue;
    }
    if (stats.isSymbolicLink() && (!isFinal || options.followFinal)) {
      if (++hops > MAX_SYMLINK_HOPS) return undefined;
      current.pop();
      const target = await readlink(hostPath);
      if (target.startsWith('/')) {
        let inside = target;
        if (semantics === 'host') {
          if (target !== root && !target.startsWith(`${root}/`)) return undefined;
          inside = target.slice(root.length);
        }
        current.length = 0;
        pending.unshift(...splitPath(inside));
      } else {
        pending.unshift(...splitPath(target));
      }
      continue;
    }
    if (options.create && !stats.isDirectory()) {
      throw invalidArgument(`"${current.join('/')}" exists in the input root and is not a directory`);
    }
  }
  return join(root, ...current);
}

function splitPath(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

function failIfNotExists(error: NodeJS.ErrnoException): void {
  if (error.code !== 'EEXIST') throw error;
}
