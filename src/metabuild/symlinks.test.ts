import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backgroundContext } from '../context/requestContext.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { treeFromEntries } from '../tree/editor.js';
import { listTree } from '../tree/list.js';
import { relativeSymlinkTarget, relativizeSymlinks } from './symlinks.js';

const context = backgroundContext();

test('absolute symlink targets become relative to the symlink directory, as BuildStream 1.x makes them', () => {
  assert.equal(relativeSymlinkTarget('etc/alternatives/cc', '/usr/bin/gcc'), '../../usr/bin/gcc');
  assert.equal(relativeSymlinkTarget('usr/lib/libx.so', '/usr/lib/libx.so.1'), 'libx.so.1');
  assert.equal(relativeSymlinkTarget('usr/lib/libx.so', '/usr/lib/'), '.');
  assert.equal(relativeSymlinkTarget('usr/root', '/'), '..');
  assert.equal(relativeSymlinkTarget('top', '/'), '.');
  assert.equal(relativeSymlinkTarget('a/b', '/a/./c/../d'), 'd');
  assert.equal(relativeSymlinkTarget('bin', 'usr/bin'), 'usr/bin');
  assert.equal(relativeSymlinkTarget('a/up', '../../outside'), '../../outside');
});

test('relativizeSymlinks rewrites only absolute symlinks and keeps a tree without any unchanged', async () => {
  const cas = new MemoryBlobStore(1024 * 1024);
  const plain = await treeFromEntries(context, cas, [
    { path: 'usr/bin/gcc', kind: 'file', data: 'gcc', executable: true },
    { path: 'bin', kind: 'symlink', target: 'usr/bin' },
  ]);
  assert.deepEqual(await relativizeSymlinks(cas, plain), plain);
  const root = await treeFromEntries(context, cas, [
    { path: 'usr/bin/gcc', kind: 'file', data: 'gcc', executable: true },
    { path: 'bin', kind: 'symlink', target: 'usr/bin' },
    { path: 'etc/alternatives/cc', kind: 'symlink', target: '/usr/bin/gcc' },
  ]);
  const links = (await listTree(context, cas, await relativizeSymlinks(cas, root))).filter((e) => e.kind === 'symlink');
  assert.deepEqual(links, [
    { path: 'bin', kind: 'symlink', target: 'usr/bin' },
    { path: 'etc/alternatives/cc', kind: 'symlink', target: '../../usr/bin/gcc' },
  ]);
});
