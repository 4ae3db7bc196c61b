/**
 * The BuildStream-format projects of the end-to-end tests, made from examples/hello: the
 * example itself (BuildStream 1 format) with its sysroot placeholders filled in.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from './repository.js';
import type { Sysroot } from './sysroot.js';

const HELLO = join(REPO_ROOT, 'examples', 'hello');

/** Replaces each placeholder (every occurrence) in a file. */
function fill(path: string, values: Record<string, string>): void {
  let text = readFileSync(path, 'utf8');
  for (const [placeholder, value] of Object.entries(values)) text = text.replaceAll(placeholder, value);
  writeFileSync(path, text);
}

/** A copy of examples/hello at `into`, with the sysroot's directory and sha256 filled in. */
export function helloProject(into: string, sysroot: Sysroot): string {
  cpSync(HELLO, into, { recursive: true });
  // The alias is `file:///SYSROOT_DIRECTORY/`: the directory without its leading slash.
  fill(join(into, 'project.conf'), { SYSROOT_DIRECTORY: dirname(sysroot.path).replace(/^\/+/, '') });
  fill(join(into, 'elements', 'base.bst'), { SYSROOT_SHA256: sysroot.sha256 });
  return into;
}
