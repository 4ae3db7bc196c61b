import assert from 'node:assert/strict';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { rejectsWithCode } from '../../test/support/status.js';
import { backgroundContext } from '../context/requestContext.js';
import { digestOf } from '../digest/digest.js';
import { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { putBuffer } from '../storage/blobStore.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { Code } from '../util/status.js';
import { treeFromEntries } from './editor.js';
import { layoutTree, materializeTree } from './materialize.js';
import { loadTree } from './walk.js';

const context = backgroundContext();

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'granary-materialize-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('materializeTree', () => {
  test('writes files with their executable bits, symlinks verbatim and empty directories', async () => {
    await withTempDir(async (dir) => {
      const cas = new MemoryBlobStore();
      const big = Buffer.alloc(3 * 1024 * 1024, 7);
      const root = await treeFromEntries(context, cas, [
        { path: 'bin/tool', kind: 'file', data: '#!/bin/sh\n', executable: true },
        { path: 'share/big', kind: 'file', data: big },
        { path: 'share/empty-file', kind: 'file', data: '' },
        { path: 'empty', kind: 'directory' },
        { path: 'link', kind: 'symlink', target: '../outside/is/kept' },
      ]);
      const destination = join(dir, 'out');
      assert.equal(await materializeTree(context, cas, root, destination), 3);
      assert.deepEqual((await readdir(destination)).sort(), ['bin', 'empty', 'link', 'share']);
      assert.equal(await readFile(join(destination, 'bin/tool'), 'utf8'), '#!/bin/sh\n');
      assert.ok(((await lstat(join(destination, 'bin/tool'))).mode & 0o100) !== 0);
      assert.equal(((await lstat(join(destination, 'share/big'))).mode & 0o111) === 0, true);
      assert.ok((await readFile(join(destination, 'share/big'))).equals(big));
      assert.equal((await readFile(join(destination, 'share/empty-file'))).length, 0);
      assert.deepEqual(await readdir(join(destination, 'empty')), []);
      assert.equal(await readlink(join(destination, 'link')), '../outside/is/kept');
    });
  });

  test('refuses a tree with an unsafe name before writing anything', async () => {
    await withTempDir(async (dir) => {
      const cas = new MemoryBlobStore();
      const data = Buffer.from(
        Directory.encode({
          files: [{ name: '../escape', digest: digestOf(''), isExecutable: false, nodeProperties: undefined }],
          directories: [],
          symlinks: [],
          nodeProperties: undefined,
        }).finish(),
      );
      await putBuffer(context, cas, digestOf(data), data);
      await rejectsWithCode(materializeTree(context, cas, digestOf(data), join(dir, 'out')), Code.INVALID_ARGUMENT);
      assert.deepEqual(await readdir(dir), []);
    });
  });

  test('fails with NOT_FOUND when a directory or a file is missing from the CAS', async () => {
    await withTempDir(async (dir) => {
      const full = new MemoryBlobStore();
      const root = await treeFromEntries(context, full, [{ path: 'sub/file', kind: 'file', data: 'content' }]);
      await rejectsWithCode(materializeTree(context, new MemoryBlobStore(), root, join(dir, 'a')), Code.NOT_FOUND);
      const partial = new MemoryBlobStore();
      await treeFromEntries(context, partial, [{ path: 'sub/file', kind: 'file', digest: digestOf('content') }]);
      await rejectsWithCode(materializeTree(context, partial, root, join(dir, 'b')), Code.NOT_FOUND);
    });
  });
});

describe('layoutTree', () => {
  test('expands shared directories at every place, up to a bound', async () => {
    const cas = new MemoryBlobStore();
    const root = await treeFromEntries(context, cas, [
      { path: 'one/file', kind: 'file', data: 'x' },
      { path: 'two/file', kind: 'file', data: 'x' },
    ]);
    const { directories } = await loadTree(context, cas, [root]);
    const layout = layoutTree(directories, root, '/dest');
    assert.deepEqual(layout.directoryPaths, [['/dest'], ['/dest/one', '/dest/two']]);
    assert.deepEqual(
      layout.files.map((f) => f.path),
      ['/dest/one/file', '/dest/two/file'],
    );
    assert.throws(
      () => layoutTree(directories, root, '/dest', 4),
      (error: unknown) => error instanceof Error && /more than 4 entries/.test(error.message),
    );
  });
});
