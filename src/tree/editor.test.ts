import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CountingStore } from '../../test/support/countingStore.js';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, digestOf } from '../digest/digest.js';
import { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { Code, StatusError } from '../util/status.js';
import { EMPTY_DIRECTORY_DIGEST } from './directory.js';
import { graftAt, mergeTrees, subtreeAt, TreeEditor, type TreeEntry, treeFromEntries } from './editor.js';
import { treeFromPath } from './hostTree.js';
import { listTree } from './list.js';

const context = backgroundContext();

const summary = async (cas: MemoryBlobStore | CountingStore, root: Digest) =>
  (await listTree(context, cas, root)).map((e) =>
    e.kind === 'file'
      ? `${e.path}${e.executable ? '*' : ''}=${e.digest.sizeBytes}`
      : e.kind === 'symlink'
        ? `${e.path}->${e.target}`
        : `${e.path}/`,
  );

const sample: TreeEntry[] = [
  { path: 'src/main.c', kind: 'file', data: 'int main(){}' },
  { path: 'bin/run', kind: 'file', data: '#!/bin/sh\n', executable: true },
  { path: 'empty', kind: 'directory' },
  { path: 'link', kind: 'symlink', target: 'src/main.c' },
  { path: 'README', kind: 'file', data: 'hi' },
];

describe('treeFromEntries', () => {
  test('is canonical: the same entries in any order give the same digest', async () => {
    const cas = new MemoryBlobStore();
    const a = await treeFromEntries(context, cas, sample);
    const b = await treeFromEntries(context, cas, [...sample].reverse());
    assert.deepEqual(a, b);
    assert.deepEqual(await summary(cas, a), [
      'README=2',
      'bin/',
      'bin/run*=10',
      'empty/',
      'link->src/main.c',
      'src/',
      'src/main.c=12',
    ]);
  });

  test('encodes Directory messages sorted by name, empty directories kept', async () => {
    const cas = new MemoryBlobStore();
    const root = await treeFromEntries(context, cas, [
      { path: 'b', kind: 'file', data: 'b' },
      { path: 'a', kind: 'file', data: 'a', executable: true },
      { path: 'e', kind: 'directory' },
    ]);
    const expected = Buffer.from(
      Directory.encode({
        files: [
          { name: 'a', digest: digestOf('a'), isExecutable: true, nodeProperties: undefined },
          { name: 'b', digest: digestOf('b'), isExecutable: false, nodeProperties: undefined },
        ],
        directories: [{ name: 'e', digest: EMPTY_DIRECTORY_DIGEST }],
        symlinks: [],
        nodeProperties: undefined,
      }).finish(),
    );
    assert.deepEqual(root, digestOf(expected));
  });

  test('orders names by UTF-8 bytes, not UTF-16 code units', async () => {
    const cas = new MemoryBlobStore();
    const root = await treeFromEntries(context, cas, [
      { path: '\u{1F600}', kind: 'file', data: '1' },
      { path: '\uFFFD', kind: 'file', data: '2' },
      { path: 'Z', kind: 'file', data: '3' },
      { path: 'a', kind: 'file', data: '4' },
    ]);
    assert.deepEqual(
      (await listTree(context, cas, root)).map((e) => e.path),
      ['Z', 'a', '\uFFFD', '\u{1F600}'],
    );
  });

  test('uploads every blob it refers to, and nothing the CAS already has', async () => {
    const cas = new CountingStore();
    const root = await treeFromEntries(context, cas, sample);
    const first = cas.puts;
    assert.ok(first > 0);
    for (const entry of await listTree(context, cas, root)) {
      const digest = entry.kind === 'symlink' ? undefined : entry.digest;
      if (digest) assert.deepEqual(await cas.findMissing(context, [digest]), []);
    }
    assert.deepEqual(await cas.findMissing(context, [root]), []);
    await treeFromEntries(context, cas, sample);
    assert.equal(cas.puts, first);
  });

  test('a file below a file is an error; a later entry replaces an earlier one', async () => {
    const cas = new MemoryBlobStore();
    await assert.rejects(
      treeFromEntries(context, cas, [
        { path: 'a', kind: 'file', data: 'x' },
        { path: 'a/b', kind: 'file', data: 'y' },
      ]),
      /"a" is a file, not a directory/,
    );
    const replaced = await treeFromEntries(context, cas, [
      { path: 'a', kind: 'file', data: 'x' },
      { path: 'a', kind: 'symlink', target: 'x' },
    ]);
    assert.deepEqual(await summary(cas, replaced), ['a->x']);
    await assert.rejects(treeFromEntries(context, cas, [{ path: '../x', kind: 'file', data: '' }]), /must not contain/);
  });
});

describe('treeFromPath', () => {
  test('matches the in-memory description of the same content', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'granary-tree-'));
    try {
      await mkdir(join(dir, 'src'));
      await mkdir(join(dir, 'bin'));
      await mkdir(join(dir, 'empty'));
      await writeFile(join(dir, 'src/main.c'), 'int main(){}');
      await writeFile(join(dir, 'bin/run'), '#!/bin/sh\n');
      await chmod(join(dir, 'bin/run'), 0o755);
      await writeFile(join(dir, 'README'), 'hi');
      await symlink('src/main.c', join(dir, 'link'));
      const cas = new CountingStore();
      const fromDisk = await treeFromPath(context, cas, dir);
      assert.deepEqual(fromDisk, await treeFromEntries(context, new MemoryBlobStore(), sample));
      const uploaded = cas.puts;
      assert.equal(uploaded, 3 + 3); // three distinct file blobs, three non-empty directories
      assert.deepEqual(await treeFromPath(context, cas, dir), fromDisk);
      assert.equal(cas.puts, uploaded, 'nothing is uploaded twice');
      const dry = new CountingStore();
      assert.deepEqual(await treeFromPath(context, dry, dir, { upload: false }), fromDisk);
      assert.equal(dry.puts, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('mergeTrees', () => {
  test('later trees win on files, directories merge recursively', async () => {
    const cas = new MemoryBlobStore();
    const lower = await treeFromEntries(context, cas, [
      { path: 'usr/bin/gcc', kind: 'file', data: 'gcc', executable: true },
      { path: 'usr/lib/libc.so', kind: 'file', data: 'libc' },
      { path: 'etc/conf', kind: 'file', data: 'old' },
      { path: 'etc/link', kind: 'symlink', target: 'a' },
    ]);
    const upper = await treeFromEntries(context, cas, [
      { path: 'usr/bin/hello', kind: 'file', data: 'hello', executable: true },
      { path: 'etc/conf', kind: 'file', data: 'newer' },
      { path: 'etc/link', kind: 'symlink', target: 'b' },
      { path: 'opt', kind: 'directory' },
    ]);
    const merged = await mergeTrees(context, cas, [lower, upper]);
    assert.deepEqual(await summary(cas, merged), [
      'etc/',
      'etc/conf=5',
      'etc/link->b',
      'opt/',
      'usr/',
      'usr/bin/',
      'usr/bin/gcc*=3',
      'usr/bin/hello*=5',
      'usr/lib/',
      'usr/lib/libc.so=4',
    ]);
    // Deterministic, and order matters only where the trees conflict.
    assert.deepEqual(await mergeTrees(context, cas, [lower, upper]), merged);
    const reversed = await mergeTrees(context, cas, [upper, lower]);
    assert.deepEqual(
      (await summary(cas, reversed)).filter((l) => l.startsWith('etc/')),
      ['etc/', 'etc/conf=3', 'etc/link->a'],
    );
    // Same result as building the union directly.
    assert.deepEqual(
      merged,
      await treeFromEntries(context, cas, [
        { path: 'usr/bin/gcc', kind: 'file', data: 'gcc', executable: true },
        { path: 'usr/bin/hello', kind: 'file', data: 'hello', executable: true },
        { path: 'usr/lib/libc.so', kind: 'file', data: 'libc' },
        { path: 'etc/conf', kind: 'file', data: 'newer' },
        { path: 'etc/link', kind: 'symlink', target: 'b' },
        { path: 'opt', kind: 'directory' },
      ]),
    );
  });

  test('edge cases: no roots, one root, identical roots, files against directories', async () => {
    const cas = new MemoryBlobStore();
    assert.deepEqual(await mergeTrees(context, cas, []), EMPTY_DIRECTORY_DIGEST);
    const a = await treeFromEntries(context, cas, [{ path: 'x/y', kind: 'file', data: '1' }]);
    assert.deepEqual(await mergeTrees(context, cas, [a]), a);
    assert.deepEqual(await mergeTrees(context, cas, [a, a, a]), a);
    assert.deepEqual(await mergeTrees(context, cas, [EMPTY_DIRECTORY_DIGEST, a]), a);
    assert.deepEqual(await mergeTrees(context, cas, [a, EMPTY_DIRECTORY_DIGEST]), a);
    const file = await treeFromEntries(context, cas, [{ path: 'x', kind: 'file', data: 'f' }]);
    assert.deepEqual(await summary(cas, await mergeTrees(context, cas, [a, file])), ['x=1']);
    assert.deepEqual(await summary(cas, await mergeTrees(context, cas, [file, a])), ['x/', 'x/y=1']);
  });

  test('a directory merges through a symlink to a directory (merged /usr)', async () => {
    const cas = new MemoryBlobStore();
    const sysroot = await treeFromEntries(context, cas, [
      { path: 'usr/lib/libc.so', kind: 'file', data: 'libc' },
      { path: 'lib', kind: 'symlink', target: 'usr/lib' },
      { path: 'lib64', kind: 'symlink', target: '/usr/lib' },
      { path: 'dangling', kind: 'symlink', target: 'nowhere' },
    ]);
    const artifact = await treeFromEntries(context, cas, [
      { path: 'lib/libfoo.so', kind: 'file', data: 'foo' },
      { path: 'lib64/libbar.so', kind: 'file', data: 'bar' },
      { path: 'dangling/file', kind: 'file', data: 'd' },
    ]);
    const editor = TreeEditor.open(context, cas, sysroot);
    const overlaps = await editor.merge(artifact);
    assert.deepEqual(overlaps, ['dangling']);
    assert.deepEqual(await summary(cas, await editor.finish()), [
      'dangling/',
      'dangling/file=1',
      'lib->usr/lib',
      'lib64->/usr/lib',
      'usr/',
      'usr/lib/',
      'usr/lib/libbar.so=3',
      'usr/lib/libc.so=4',
      'usr/lib/libfoo.so=3',
    ]);
  });

  test('fails clearly when a directory is missing from the CAS', async () => {
    const cas = new MemoryBlobStore();
    const a = await treeFromEntries(context, cas, [{ path: 'x/y', kind: 'file', data: '1' }]);
    const ghost = digestOf('not a directory that was stored');
    const b = await graftAt(context, cas, EMPTY_DIRECTORY_DIGEST, 'x', ghost);
    await assert.rejects(mergeTrees(context, cas, [a, b]), (error: unknown) => {
      assert.ok(error instanceof StatusError);
      assert.equal(error.code, Code.NOT_FOUND);
      assert.match(error.message, /missing from the CAS/);
      return true;
    });
  });
});

describe('graftAt and subtreeAt', () => {
  test('places a tree at a path, creating parents and replacing what was there', async () => {
    const cas = new MemoryBlobStore();
    const sources = await treeFromEntries(context, cas, [{ path: 'hello.c', kind: 'file', data: 'c' }]);
    const deps = await treeFromEntries(context, cas, [
      { path: 'usr/bin/gcc', kind: 'file', data: 'gcc', executable: true },
      { path: 'buildstream/project/element/stale', kind: 'file', data: 'old' },
    ]);
    const root = await graftAt(context, cas, deps, '/buildstream/project/element', sources);
    assert.deepEqual(await summary(cas, root), [
      'buildstream/',
      'buildstream/project/',
      'buildstream/project/element/',
      'buildstream/project/element/hello.c=1',
      'usr/',
      'usr/bin/',
      'usr/bin/gcc*=3',
    ]);
    assert.deepEqual(await subtreeAt(context, cas, root, 'buildstream/project/element'), sources);
    assert.equal(await subtreeAt(context, cas, root, 'buildstream/nothing'), undefined);
    assert.equal(await subtreeAt(context, cas, root, 'usr/bin/gcc'), undefined);
    assert.deepEqual(await graftAt(context, cas, deps, '', sources), sources);
    assert.deepEqual(await graftAt(context, cas, deps, 'buildstream/project/element', sources), root);
    await assert.rejects(graftAt(context, cas, deps, 'usr/bin/gcc/x', sources), /"usr\/bin\/gcc" is a file/);
    await assert.rejects(graftAt(context, cas, deps, 'a/../b', sources), /must not contain/);
  });

  test('grafting then merging equals staging into a subdirectory', async () => {
    const cas = new MemoryBlobStore();
    const sources = await treeFromEntries(context, cas, [{ path: 'a/b.c', kind: 'file', data: 'b' }]);
    const base = await treeFromEntries(context, cas, [{ path: 'sub/keep', kind: 'file', data: 'k' }]);
    const editor = TreeEditor.open(context, cas, base);
    await editor.merge(sources, 'sub');
    const viaEditor = await editor.finish();
    const viaGraft = await mergeTrees(context, cas, [
      base,
      await graftAt(context, cas, EMPTY_DIRECTORY_DIGEST, 'sub', sources),
    ]);
    assert.deepEqual(viaEditor, viaGraft);
    assert.deepEqual(await summary(cas, viaEditor), ['sub/', 'sub/a/', 'sub/a/b.c=1', 'sub/keep=1']);
  });
});
