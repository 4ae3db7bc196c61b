/**
 * Copies of the one Bazel fixture workspace (test/e2e/fixtures/bazel-workspace): the shared
 * BUILD files and sources in common/, with the overlay of the Bazel version on top (Bazel 4's
 * WORKSPACE and local_repository stand-ins, or Bazel 7's MODULE.bazel and module stubs).
 * NOTES.md there describes the targets and what each overlay is for.
 */
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from './repository.js';

/** 4: Debian bookworm's bazel-bootstrap 4.2.3 on the host; 7: Debian sid's 7.7.1 in the sid root. */
export type BazelVersion = 4 | 7;

const WORKSPACE = join(FIXTURES, 'bazel-workspace');

/**
 * A fresh copy of the workspace for `version`, in `parent/ws` (the name its .bazelignore
 * expects for Bazel's convenience symlink); returns that directory.
 */
export function bazelWorkspace(version: BazelVersion, parent: string, name = 'ws'): string {
  const target = join(parent, name);
  cpSync(join(WORKSPACE, 'common'), target, { recursive: true });
  cpSync(join(WORKSPACE, `bazel${version}`), target, { recursive: true });
  return target;
}
