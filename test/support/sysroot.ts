/**
 * The Debian bookworm sysroot that BuildStream-format test projects build on: made by
 * test/e2e/sysroot/make-sysroot.sh as a deterministic tarball, cached in
 * ~/.cache/granary-sysroot (or $GRANARY_SYSROOT_CACHE).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { hasCommand } from './commands.js';
import { REPO_ROOT } from './repository.js';

export const SYSROOT_SCRIPT = join(REPO_ROOT, 'test', 'e2e', 'sysroot', 'make-sysroot.sh');

export interface Sysroot {
  /** The tarball. */
  path: string;
  /** Its sha256, the `ref` of a tar source. */
  sha256: string;
}

/**
 * Why the sysroot cannot be had here (it is built as root with debootstrap and
 * then cached), or false. In CI it is always required.
 */
export function sysrootUnavailable(): string | false {
  if (process.env.CI) return false;
  const cache = process.env.GRANARY_SYSROOT_CACHE ?? join(homedir(), '.cache', 'granary-sysroot');
  if (existsSync(join(cache, 'sysroot.tar'))) return false;
  if (process.getuid?.() === 0 && hasCommand('debootstrap')) return false;
  return 'the Debian sysroot is not cached and cannot be built here (needs root and debootstrap)';
}

/** Runs make-sysroot.sh (fast once cached; minutes the first time) and returns its tarball. */
export function makeSysroot(): Sysroot {
  const output = execFileSync('bash', [SYSROOT_SCRIPT], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 30 * 60_000,
  });
  const path = /^path=(.+)$/m.exec(output)?.[1];
  const sha256 = /^sha256=([0-9a-f]{64})$/m.exec(output)?.[1];
  if (!path || !sha256) throw new Error(`make-sysroot.sh printed no path= and sha256= lines:\n${output}`);
  return { path, sha256 };
}
