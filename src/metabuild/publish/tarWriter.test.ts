import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { run, withTempDir } from '../../../test/support/sources.js';
import { backgroundContext } from '../../context/requestContext.js';
import { type Digest, formatDigest } from '../../digest/digest.js';
import type { BlobStore } from '../../storage/blobStore.js';
import { MemoryBlobStore } from '../../storage/memoryBlobStore.js';
import { type TreeEntry, treeFromEntries } from '../../tree/editor.js';
import { treeFromPath } from '../../tree/hostTree.js';
import { readTar } from '../sources/tarReader.js';
import { artifactTarball, entryHeader, paxRecord, writeTar } from './tarWriter.js';

const context = backgroundContext();

const LONG_DIRECTORY = `deep/${'d'.repeat(60)}/${'e'.repeat(60)}`;
const LONG_TARGET = `../${'t'.repeat(120)}`;

const ENTRIES: TreeEntry[] = [
  { path: 'usr/lib/libgreet.a', kind: 'file', data: 'archive\n' },
  { path: 'usr/include/greet.h', kind: 'file', data: '#define GREET 1\n' },
  { path: 'usr/bin/tool', kind: 'file', data: '#!/bin/sh\necho hi\n', executable: true },
  { path: 'usr/share/empty-file', kind: 'file', data: '' },
  { path: 'usr/share/big', kind: 'file', data: Buffer.alloc(70_000, 7) },
  { path: 'var/empty', kind: 'directory' },
  { path: 'usr/lib/libgreet.so', kind: 'symlink', target: 'libgreet.so.1' },
  { path: 'link-far', kind: 'symlink', target: LONG_TARGET },
  { path: `${LONG_DIRECTORY}/file-with-a-long-path.txt`, kind: 'file', data: 'long\n' },
  { path: 'unicode/grüße.txt', kind: 'file', data: 'hallo\n' },
];

async function tarOf(
  entries: readonly TreeEntry[],
): Promise<{ cas: BlobStore; root: Digest; data: Buffer; sha256: string }> {
  const cas = new MemoryBlobStore();
  const root = await treeFromEntries(context, cas, entries);
  const { data, sha256 } = await artifactTarball(cas, root);
  return { cas, root, data, sha256 };
}

describe('the deterministic tar writer', () => {
  test('GNU tar extracts exactly the tree that was written: files, exec bits, symlinks, empty directories, long and non-ASCII names', async () => {
    const { root, data } = await tarOf(ENTRIES);
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'a.tar'), data);
      await mkdir(join(dir, 'out'));
      run('tar', ['-xf', '../a.tar'], join(dir, 'out'));
      // The extracted directory hashes to the same REAPI tree: nothing lost or added.
      assert.equal(formatDigest(await treeFromPath(context, undefined, join(dir, 'out'))), formatDigest(root));
    });
  });

  test('every member has owner 0/0, empty owner names, time 0 and a fixed mode', async () => {
    const { data } = await tarOf(ENTRIES);
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'a.tar'), data);
      const listing = run('tar', ['--numeric-owner', '--full-time', '-tvf', 'a.tar'], dir, { TZ: 'UTC' })
        .trim()
        .split('\n');
      assert.ok(listing.length >= ENTRIES.length);
      for (const line of listing) {
        assert.match(line, /^[-dl]rw[-x]r[-w-][-x]r[-w-][-x] 0\/0 +\d+ 1970-01-01 00:00:00 /, line);
      }
      assert.ok(listing.some((l) => l.startsWith('-rwxr-xr-x') && l.endsWith(' usr/bin/tool')));
      assert.ok(listing.some((l) => l.startsWith('-rw-r--r--') && l.endsWith(' usr/include/greet.h')));
      assert.ok(listing.some((l) => l.startsWith('drwxr-xr-x') && l.endsWith(' var/empty/')));
      assert.ok(listing.some((l) => l.startsWith('lrwxrwxrwx') && l.endsWith(` link-far -> ${LONG_TARGET}`)));
    });
    // Raw header fields: uname and gname empty, ustar magic.
    const first = data.subarray(0, 512);
    assert.equal(first.toString('latin1', 257, 265), 'ustar\x0000');
    assert.equal(
      first.subarray(265, 265 + 64).every((b) => b === 0),
      true,
    );
  });

  test('entries come depth first with names in byte order, the tree root at the top level', async () => {
    const { data } = await tarOf(ENTRIES);
    const names: string[] = [];
    for await (const member of readTar(
      (async function* () {
        yield data;
      })(),
    )) {
      names.push(member.header.name);
      for await (const _ of member.body) void _;
    }
    assert.deepEqual(names.slice(0, 6), [
      'deep/',
      'deep/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd/',
      `${LONG_DIRECTORY}/`,
      `${LONG_DIRECTORY}/file-with-a-long-path.txt`,
      'link-far',
      'unicode/',
    ]);
    assert.ok(names.every((n) => !n.startsWith('/') && !n.startsWith('./')));
    assert.ok(names.includes('usr/share/empty-file'));
  });

  test('the same tree always gives the same bytes, whatever order it was assembled in', async () => {
    const a = await tarOf(ENTRIES);
    const b = await tarOf([...ENTRIES].reverse());
    assert.equal(a.sha256, b.sha256);
    assert.ok(a.data.equals(b.data));
    const changed = await tarOf([
      ...ENTRIES,
      { path: 'usr/bin/tool', kind: 'file', data: '#!/bin/sh\necho hi\n', executable: false },
    ]);
    assert.notEqual(changed.sha256, a.sha256, 'the executable bit is part of the tarball');
  });

  test('an empty tree is two zero blocks', async () => {
    const { data } = await tarOf([]);
    assert.equal(data.length, 1024);
    assert.ok(data.every((b) => b === 0));
  });

  test('pax records count their own length, across a digit boundary', () => {
    for (const length of [1, 90, 91, 92, 93, 94, 95, 96, 97, 990, 995, 996, 997, 998]) {
      const record = paxRecord('path', 'x'.repeat(length));
      assert.equal(Number(/^(\d+) /.exec(record.toString())?.[1]), record.length, `value of ${length} bytes`);
      assert.ok(record.toString().endsWith('\n'));
    }
    assert.equal(
      Number(/^(\d+) /.exec(paxRecord('path', 'ü'.repeat(10)).toString())?.[1]),
      paxRecord('path', 'ü'.repeat(10)).length,
    );
  });

  test('names that fit in ustar get no pax header', () => {
    const plain = entryHeader({
      kind: 'file',
      path: 'usr/lib/libgreet.a',
      size: 3,
      executable: false,
      content: () => [],
    });
    assert.equal(plain.length, 512);
    const long = entryHeader({
      kind: 'file',
      path: `${'a'.repeat(101)}`,
      size: 3,
      executable: false,
      content: () => [],
    });
    assert.equal(long.length, 512 * 3);
    assert.equal(long.toString('latin1', 156, 157), 'x');
  });

  test('a file whose content does not match its size is an error', async () => {
    const entries = [
      { kind: 'file' as const, path: 'f', size: 5, executable: false, content: () => [Buffer.from('abc')] },
    ];
    await assert.rejects(async () => {
      for await (const _ of writeTar(entries)) void _;
    }, /3 bytes of 5/);
  });
});
