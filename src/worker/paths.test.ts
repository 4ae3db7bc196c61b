import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, realpath, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Code, StatusError } from '../util/status.js';
import { ensureDirectoryInRoot, resolveInRoot, rootRelativePath } from './paths.js';

describe('worker paths', () => {
  let root: string;
  before(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'granary-paths-')));
    await mkdir(join(root, 'a/b'), { recursive: true });
    await symlink('/etc', join(root, 'to-etc'));
    await symlink('a/b', join(root, 'to-b'));
    await symlink('/a', join(root, 'absolute-a'));
    await symlink('../..', join(root, 'up'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  test('output paths with .. are resolved against the working directory', () => {
    assert.equal(rootRelativePath('x/y', '../out/file', 'p'), 'x/out/file');
    assert.equal(rootRelativePath('x', '..', 'p'), '');
    assert.equal(rootRelativePath('', 'dir/', 'p'), 'dir');
  });

  test('paths leaving the input root or absolute paths are INVALID_ARGUMENT', () => {
    for (const [wd, path] of [
      ['x', '../../etc'],
      ['', '/etc/passwd'],
      ['/abs', 'file'],
    ] as const) {
      assert.throws(
        () => rootRelativePath(wd, path, 'p'),
        (e: unknown) => e instanceof StatusError && e.code === Code.INVALID_ARGUMENT,
      );
    }
  });

  test('a symlink leading outside the root is not followed in host semantics', async () => {
    assert.equal(await resolveInRoot(root, 'to-etc/passwd', 'host', false), undefined);
    assert.equal(await resolveInRoot(root, 'up/x', 'host', false), undefined);
    assert.equal(await resolveInRoot(root, 'to-b/c', 'host', false), join(root, 'a/b/c'));
  });

  test('absolute symlinks resolve inside the root in chroot semantics', async () => {
    assert.equal(await resolveInRoot(root, 'to-etc/passwd', 'chroot', false), join(root, 'etc/passwd'));
    assert.equal(await resolveInRoot(root, 'absolute-a/b', 'chroot', false), join(root, 'a/b'));
    assert.equal(await resolveInRoot(root, 'up/a', 'chroot', false), join(root, 'a'));
  });

  test('a final symlink is returned unresolved unless asked to follow it', async () => {
    assert.equal(await resolveInRoot(root, 'to-b', 'host', false), join(root, 'to-b'));
    assert.equal(await resolveInRoot(root, 'to-b', 'host', true), join(root, 'a/b'));
  });

  test('creating directories never goes through a symlink out of the root', async () => {
    await assert.rejects(
      ensureDirectoryInRoot(root, 'to-etc/granary-should-not-exist', 'host'),
      (e: unknown) => e instanceof StatusError && e.code === Code.INVALID_ARGUMENT,
    );
    await assert.rejects(lstat('/etc/granary-should-not-exist'));
    assert.equal(await ensureDirectoryInRoot(root, 'to-b/new/deeper', 'host'), join(root, 'a/b/new/deeper'));
    assert.ok((await lstat(join(root, 'a/b/new/deeper'))).isDirectory());
    assert.equal(await ensureDirectoryInRoot(root, 'to-etc/inside', 'chroot'), join(root, 'etc/inside'));
  });
});
