/**
 * The BuildStream-format projects of the end-to-end tests, made from the examples rather
 * than kept as fixtures of their own: examples/hello (BuildStream 1 format) and
 * examples/hello-bst2 (the same project in BuildStream 2 format), copied with their sysroot
 * placeholders filled in. A suite that needs more adds only that, on top of the copy.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from './repository.js';
import type { Sysroot } from './sysroot.js';

const HELLO = join(REPO_ROOT, 'examples', 'hello');
const HELLO_BST2 = join(REPO_ROOT, 'examples', 'hello-bst2');

/**
 * An element of the hello projects (on base.bst) that records what a build sees
 * in its sandbox (environment, directories, user, umask, shell, max-jobs) into
 * its artifact, for comparing two builders' sandboxes file by file.
 */
export const PROBE_ELEMENT = `kind: manual
description: Records what a build sees in its sandbox

build-depends:
- base.bst

sources:
- kind: local
  path: files/libgreet

config:
  build-commands:
  - |
    mkdir -p probe
    env | LC_ALL=C sort > probe/env
    pwd > probe/pwd
    id > probe/id
    umask > probe/umask
    echo "$0 $-" > probe/shell
    echo "%{max-jobs}" > probe/max-jobs
    readlink /etc/alternatives/cc > probe/readlink-cc
    ls -A . | LC_ALL=C sort > probe/build-directory
    ls -A / | LC_ALL=C sort > probe/root-directory
  install-commands:
  - mkdir -p "%{install-root}/usr/share"
  - cp -r probe "%{install-root}/usr/share/probe"
  - ln -s /usr/share/probe/env "%{install-root}/usr/share/env-link"
  - printf '#!/bin/sh\\necho probe\\n' > "%{install-root}/usr/share/probe/run" && chmod 755 "%{install-root}/usr/share/probe/run"
`;

/** Replaces each placeholder (every occurrence) in a file. */
export function fill(path: string, values: Record<string, string>): void {
  let text = readFileSync(path, 'utf8');
  for (const [placeholder, value] of Object.entries(values)) text = text.replaceAll(placeholder, value);
  writeFileSync(path, text);
}

/** A `file:///DIRECTORY/` alias is written with the directory's leading slash removed. */
const aliasDirectory = (directory: string) => directory.replace(/^\/+/, '');

/** A copy of examples/hello at `into`, with the sysroot's directory and sha256 filled in. */
export function helloProject(into: string, sysroot: Sysroot): string {
  cpSync(HELLO, into, { recursive: true });
  fill(join(into, 'project.conf'), { SYSROOT_DIRECTORY: aliasDirectory(dirname(sysroot.path)) });
  fill(join(into, 'elements', 'base.bst'), { SYSROOT_SHA256: sysroot.sha256 });
  return into;
}

/**
 * A directory for a project's `sysroot:` alias holding the sysroot tarball as sysroot.tar
 * (hard-linked when it can be), where a test can put further tarballs.
 */
export function sourceMirror(directory: string, sysroot: Sysroot): string {
  mkdirSync(directory, { recursive: true });
  try {
    linkSync(sysroot.path, join(directory, 'sysroot.tar'));
  } catch {
    copyFileSync(sysroot.path, join(directory, 'sysroot.tar'));
  }
  return directory;
}

/**
 * A copy of examples/hello-bst2 at `into` whose `sysroot:` alias is `mirror` (made by
 * sourceMirror()) and whose base.bst has the sysroot's sha256.
 */
export function helloBst2Project(into: string, mirror: string, sysroot: Sysroot): string {
  cpSync(HELLO_BST2, into, { recursive: true });
  fill(join(into, 'project.conf'), { SYSROOT_DIRECTORY: aliasDirectory(mirror) });
  fill(join(into, 'elements', 'base.bst'), { SYSROOT_SHA256: sysroot.sha256 });
  return into;
}

/**
 * Packs `parent/name` into a reproducible gzipped tarball at `tarball` (sorted, mtime 0,
 * owner 0, no gzip timestamp), so that its sha256, returned, is the same on every run.
 */
export function packTarball(parent: string, name: string, tarball: string): string {
  const packed = spawnSync(
    'sh',
    [
      '-c',
      'tar --create --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" "$2" | gzip -n > "$3"',
      'pack',
      parent,
      name,
      tarball,
    ],
    { encoding: 'utf8' },
  );
  if (packed.status !== 0) throw new Error(`packing ${join(parent, name)} failed: ${packed.stderr}`);
  return createHash('sha256').update(readFileSync(tarball)).digest('hex');
}
