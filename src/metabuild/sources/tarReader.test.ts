import assert from 'node:assert/strict';
import { chmod, link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { chunksOf, makeTar, type RawMember, run, withTempDir } from '../../../test/support/sources.js';
import { backgroundContext } from '../../context/requestContext.js';
import { MemoryBlobStore } from '../../storage/memoryBlobStore.js';
import { treeFromPath } from '../../tree/hostTree.js';
import { listTree } from '../../tree/list.js';
import { importTar, openArchive, readTar, TarError } from './tarReader.js';

const context = backgroundContext();

async function importBuffer(data: Buffer, chunk = 700) {
  const cas = new MemoryBlobStore();
  const { editor, skipped } = await importTar(cas, chunksOf(data, chunk));
  const root = await editor.finish();
  const listing = (await listTree(context, cas, root)).map((e) =>
    e.kind === 'file'
      ? `${e.path}${e.executable ? '*' : ''}=${e.digest.sizeBytes}`
      : e.kind === 'symlink'
        ? `${e.path}->${e.target}`
        : `${e.path}/`,
  );
  return { cas, root, listing, skipped };
}

const unsafe = (members: RawMember[]) => importBuffer(makeTar(members));

describe('readTar', () => {
  test('reads names, types, modes, link names and bodies', async () => {
    const archive = makeTar([
      { name: 'dir/', type: '5' },
      { name: 'dir/file', data: 'hello', mode: 0o755 },
      { name: 'dir/link', type: '2', linkName: '../x' },
      { name: `long/${'n'.repeat(150)}`, data: 'long', pax: true },
    ]);
    for (const chunk of [1, 511, 512, 100_000]) {
      const seen: string[] = [];
      for await (const { header, body } of readTar(chunksOf(archive, chunk))) {
        let text = '';
        if (header.name.startsWith('dir/file')) for await (const piece of body) text += piece.toString();
        seen.push(`${header.type}:${header.name.slice(0, 20)}:${header.mode.toString(8)}:${header.linkName}:${text}`);
      }
      assert.deepEqual(seen, [
        'directory:dir/:755::',
        'file:dir/file:755::hello',
        'symlink:dir/link:644:../x:',
        'file:long/nnnnnnnnnnnnnnn:644::',
      ]);
    }
  });

  test('rejects data that is not a tar archive, and truncated archives', async () => {
    const notTar = Buffer.alloc(1024, 'x');
    await assert.rejects(importBuffer(notTar), /not a tar archive/);
    const archive = makeTar([{ name: 'a', data: 'x'.repeat(2000) }]);
    await assert.rejects(importBuffer(archive.subarray(0, 1500)), /truncated tar archive/);
  });

  test('an empty archive is an empty tree', async () => {
    const { listing } = await importBuffer(Buffer.alloc(1024));
    assert.deepEqual(listing, []);
    assert.deepEqual((await importBuffer(Buffer.alloc(0))).listing, []);
  });
});

describe('importTar', () => {
  test('matches the tree of the same files on disk, GNU tar long names and hard links included', async () => {
    await withTempDir(async (dir) => {
      const tree = join(dir, 'tree');
      const deep = join(tree, 'a'.repeat(60), 'b'.repeat(60));
      await mkdir(deep, { recursive: true });
      await mkdir(join(tree, 'empty'));
      await writeFile(join(deep, `${'c'.repeat(120)}.txt`), 'deep');
      await writeFile(join(tree, 'tool'), '#!/bin/sh\n');
      await chmod(join(tree, 'tool'), 0o755);
      await link(join(tree, 'tool'), join(tree, 'tool-hardlink'));
      await symlink('tool', join(tree, 'tool-symlink'));
      await symlink('/etc/passwd', join(tree, 'absolute-symlink'));
      const cas = new MemoryBlobStore();
      const expected = await treeFromPath(context, cas, tree);
      for (const format of ['gnu', 'pax', 'ustar']) {
        if (format === 'ustar') continue; // ustar cannot hold the 120-character name
        const file = join(dir, `${format}.tar`);
        run('tar', ['-cf', file, `--format=${format}`, '-C', tree, '.'], dir);
        const { editor, skipped } = await importTar(cas, openArchive(file));
        assert.deepEqual(skipped, []);
        assert.deepEqual(await editor.finish(), expected, `format ${format}`);
      }
      for (const [flag, extension] of [
        ['-z', 'gz'],
        ['-j', 'bz2'],
        ['-J', 'xz'],
        ['--zstd', 'zst'],
      ] as const) {
        const file = join(dir, `archive.tar.${extension}`);
        run('tar', ['-c', flag, '-f', file, '-C', tree, '.'], dir);
        const { editor } = await importTar(cas, openArchive(file));
        assert.deepEqual(await editor.finish(), expected, extension);
      }
    });
  });

  test('reports a corrupt compressed archive', async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, 'bad.tar.xz');
      await writeFile(file, Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(100, 1)]));
      await assert.rejects(importTar(new MemoryBlobStore(), openArchive(file)), /xz failed to decompress/);
    });
  });

  test('resolves hard links to earlier files; later members replace earlier ones', async () => {
    const { listing } = await importBuffer(
      makeTar([
        { name: './bin/tool', data: 'v1', mode: 0o755 },
        { name: './bin/alias', type: '1', linkName: './bin/tool' },
        { name: './etc/conf', data: 'old' },
        { name: './etc/conf', data: 'newer' },
        { name: './dev/null', type: '3' },
        { name: './fifo', type: '6' },
      ]),
    );
    assert.deepEqual(listing, ['bin/', 'bin/alias*=2', 'bin/tool*=2', 'dev/', 'etc/', 'etc/conf=5']);
  });

  test('skips devices and FIFOs, reporting them', async () => {
    const { skipped } = await importBuffer(
      makeTar([
        { name: 'dev/null', type: '3' },
        { name: 'fifo', type: '6' },
      ]),
    );
    assert.deepEqual(skipped, ['dev/null', 'fifo']);
  });

  test('rejects members that would escape the root', async () => {
    const cases: Array<[RawMember[], RegExp]> = [
      [[{ name: '../evil', data: 'x' }], /unsafe tar member "\.\.\/evil": "\.\." escapes the root/],
      [[{ name: 'a/../../evil', data: 'x' }], /unsafe tar member/],
      [[{ name: '/etc/passwd', data: 'x' }], /unsafe tar member "\/etc\/passwd": absolute path/],
      [[{ name: `${'x/'.repeat(60)}../../..`, data: 'x', pax: true }], /unsafe tar member/],
      [
        [
          { name: 'link', type: '2', linkName: '/etc' },
          { name: 'link/passwd', data: 'x' },
        ],
        /unsafe tar member "link\/passwd": "link" is a symlink, not a directory/,
      ],
      [
        [
          { name: 'link', type: '2', linkName: '..' },
          { name: 'link/dir/', type: '5' },
        ],
        /unsafe tar member "link\/dir\/"/,
      ],
      [
        [{ name: 'h', type: '1', linkName: '../../etc/passwd' }],
        /hard link to "\.\.\/\.\.\/etc\/passwd" escapes the root/,
      ],
      [[{ name: 'h', type: '1', linkName: '/etc/passwd' }], /escapes the root/],
      [[{ name: 'h', type: '1', linkName: 'missing' }], /not an earlier file/],
      [[{ name: 'sparse', type: 'S' }], /sparse/],
    ];
    for (const [members, pattern] of cases) {
      await assert.rejects(unsafe(members), (error: unknown) => {
        assert.ok(error instanceof TarError, String(error));
        assert.match(error.message, pattern);
        return true;
      });
    }
  });

  test('symlinks pointing anywhere are kept verbatim (they are only data in the tree)', async () => {
    const { listing } = await importBuffer(
      makeTar([
        { name: 'abs', type: '2', linkName: '/etc/passwd' },
        { name: 'up', type: '2', linkName: '../../..' },
      ]),
    );
    assert.deepEqual(listing, ['abs->/etc/passwd', 'up->../../..']);
  });

  test('large members are spilled to disk and still stored exactly', async () => {
    const big = Buffer.alloc(20 * 1024 * 1024 + 123, 7);
    const { cas, listing, root } = await importBuffer(makeTar([{ name: 'big.bin', data: big }]), 1024 * 1024);
    assert.deepEqual(listing, [`big.bin=${big.length}`]);
    const [entry] = await listTree(context, cas, root);
    assert.ok(entry?.kind === 'file');
    assert.deepEqual(await cas.findMissing(backgroundContext(), [entry.digest]), []);
  });
});
