/**
 * Where the repository is when tests run (compiled into dist-test/test/support), so that
 * end-to-end tests find the `granary` program, the example projects and the fixtures.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root directory. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The `granary` command (bin/granary.js), run with this process's Node.js. */
export const GRANARY_BIN = join(REPO_ROOT, 'bin', 'granary.js');

/** test/e2e/fixtures: the workspaces and projects end-to-end tests copy into scratch directories. */
export const FIXTURES = join(REPO_ROOT, 'test', 'e2e', 'fixtures');
