/**
 * Stages the Debian sysroot made by make-sysroot.sh through the tar source, when
 * it has been built (GRANARY_SYSROOT_TAR, or the default cache location); skipped
 * otherwise, since building it needs root and the Debian mirror.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { backgroundContext } from '../../../src/context/requestContext.js';
import { tarSource } from '../../../src/metabuild/sources/tar.js';
import { MemoryBlobStore } from '../../../src/storage/memoryBlobStore.js';
import { mergeTrees, TreeEditor, treeFromEntries } from '../../../src/tree/editor.js';

const requestContext = backgroundContext();

const tarball =
  process.env.GRANARY_SYSROOT_TAR ??
  join(process.env.GRANARY_SYSROOT_CACHE ?? join(homedir(), '.cache/granary-sysroot'), 'sysroot.tar');

test('the sysroot tarball stages as a tree with a working toolchain layout', {
  skip: !existsSync(tarball),
}, async () => {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(tarball)) hash.update(chunk as Buffer);
  const cacheDir = await mkdtemp(join(tmpdir(), 'granary-sysroot-test-'));
  try {
    const cas = new MemoryBlobStore(4 * 1024 * 1024 * 1024);
    const context = { projectDir: dirname(tarball), aliases: {}, cas, cacheDir, location: 'sysroot.bst:1' };
    const config = { kind: 'tar', url: tarball, ref: hash.digest('hex'), 'base-dir': '' };
    const root = await tarSource.stage(config, context);
    const tree = TreeEditor.open(requestContext, cas, root);
    const gcc = await tree.lookup('usr/bin/x86_64-linux-gnu-gcc-12');
    assert.ok(gcc?.kind === 'file' && gcc.executable, 'the gcc driver is an executable file');
    assert.deepEqual(await tree.lookup('lib'), { path: 'lib', kind: 'symlink', target: 'usr/lib' });
    assert.equal((await tree.lookup('usr/include/stdio.h'))?.kind, 'file');
    assert.equal((await tree.lookup('dev'))?.kind, 'directory');
    assert.equal(await tree.lookup('var/cache/apt/archives/gcc-12_12.2.0-14_amd64.deb'), undefined);
    // Staging again gives the same digest; an artifact installed to /lib lands in /usr/lib.
    assert.deepEqual(await tarSource.stage(config, context), root);
    const artifact = await treeFromEntries(requestContext, cas, [
      { path: 'lib/libdemo.so', kind: 'file', data: 'demo' },
    ]);
    const merged = TreeEditor.open(requestContext, cas, await mergeTrees(requestContext, cas, [root, artifact]));
    assert.equal((await merged.lookup('usr/lib/libdemo.so'))?.kind, 'file');
    assert.equal((await merged.lookup('lib'))?.kind, 'symlink');
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
});
