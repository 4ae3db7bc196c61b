import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { CountingBlobStore, dir, file, type Harness, newHarness, uploadTree } from '../../test/support/worker.js';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, digestOf } from '../digest/digest.js';
import { DiskBlobStore, diskBlobPath } from '../storage/diskBlobStore.js';
import { VerifyingBlobStore } from '../storage/verifyingBlobStore.js';
import { SharedCas } from './sharedCas.js';
import { stageInputRoot } from './staging.js';

const context = backgroundContext();
const ownUid = process.getuid?.() ?? -1;

/** A worker harness whose farm CAS is a read-only disk store in the harness's directory, as `granary serve` has. */
async function withFarmDisk(
  run: (h: Harness, disk: DiskBlobStore, shared: SharedCas, casDirectory: string) => Promise<void>,
  uid = ownUid,
): Promise<void> {
  const scratch = await newHarness();
  const casDirectory = join(scratch.directory, 'cas');
  const disk = await DiskBlobStore.open({
    directory: casDirectory,
    maximumSizeBytes: 64 * 1024 * 1024,
    readOnlyBlobs: true,
  });
  const h = { ...scratch, cas: new CountingBlobStore(new VerifyingBlobStore(disk)) };
  try {
    const shared = await SharedCas.open(casDirectory, scratch.directory, { ownUid: uid });
    assert.ok(shared instanceof SharedCas);
    await run(h, disk, shared, casDirectory);
  } finally {
    await disk.close();
    await scratch.close();
  }
}

/** Plants a file where the disk store would keep a blob, as someone or something other than the store might. */
async function plant(casDirectory: string, content: string, mode: number): Promise<Digest> {
  const digest = digestOf(content);
  const path = diskBlobPath(casDirectory, digest);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content);
  await chmod(path, mode);
  return digest;
}

describe('SharedCas', () => {
  test("links plain inputs from the farm's read-only CAS and fetches only executables into the worker cache", async () => {
    await withFarmDisk(async (h, _disk, sharedCas, casDirectory) => {
      const rootDigest = await uploadTree(h.cas, {
        'data.txt': file('shared bytes'),
        bin: dir({ tool: file('#!/bin/sh\n', true) }),
      });
      const destination = join(h.directory, 'root');
      const staged = await stageInputRoot(context, { cas: h.cas, cache: h.cache, sharedCas, rootDigest, destination });
      const inCas = await stat(diskBlobPath(casDirectory, digestOf('shared bytes')));
      const placed = await stat(join(destination, 'data.txt'));
      assert.equal(placed.ino, inCas.ino, 'the input is the CAS file itself');
      assert.equal(placed.mode & 0o7777, 0o444);
      assert.equal(h.cache.localPath(context, digestOf('shared bytes'), false), undefined, 'no second copy');
      assert.ok(h.cache.localPath(context, digestOf('#!/bin/sh\n'), true), 'executables need their own copy');
      assert.equal((await stat(join(destination, 'bin/tool'))).mode & 0o7777, 0o555);
      assert.deepEqual(await staged.evictModifiedInputs(), []);
    });
  });

  test('falls back to fetching a blob the CAS directory does not have', async () => {
    await withFarmDisk(async (h, _disk, _shared, casDirectory) => {
      // The worker is pointed at an empty directory: every input is fetched as without sharing.
      const emptyDirectory = join(h.directory, 'other-cas');
      await mkdir(emptyDirectory);
      const sharedCas = await SharedCas.open(emptyDirectory, h.directory);
      assert.ok(sharedCas instanceof SharedCas);
      const rootDigest = await uploadTree(h.cas, { 'data.txt': file('fetched bytes') });
      const destination = join(h.directory, 'root');
      await stageInputRoot(context, { cas: h.cas, cache: h.cache, sharedCas, rootDigest, destination });
      assert.equal(await readFile(join(destination, 'data.txt'), 'utf8'), 'fetched bytes');
      const cached = h.cache.localPath(context, digestOf('fetched bytes'), false);
      assert.ok(cached);
      assert.equal((await stat(join(destination, 'data.txt'))).ino, (await stat(cached)).ino);
      const inCas = await stat(diskBlobPath(casDirectory, digestOf('fetched bytes')));
      assert.notEqual((await stat(join(destination, 'data.txt'))).ino, inCas.ino);
    });
  });

  test('refuses a writable CAS file, leaves nothing behind, and the input is fetched instead', async () => {
    await withFarmDisk(async (h, _disk, sharedCas, casDirectory) => {
      const rootDigest = await uploadTree(h.cas, { 'data.txt': file('writable bytes') });
      // As a blob written before the store made its blobs read-only.
      const digest = digestOf('writable bytes');
      await chmod(diskBlobPath(casDirectory, digest), 0o644);
      const probe = join(h.directory, 'probe');
      assert.equal(await sharedCas.linkTo(digest, probe), undefined);
      await assert.rejects(lstat(probe), { code: 'ENOENT' });

      await stageInputRoot(context, {
        cas: h.cas,
        cache: h.cache,
        sharedCas,
        rootDigest,
        destination: join(h.directory, 'root'),
      });
      const placed = await stat(join(h.directory, 'root/data.txt'));
      assert.notEqual(placed.ino, (await stat(diskBlobPath(casDirectory, digest))).ino);
      assert.equal(placed.mode & 0o7777, 0o444);
      assert.equal((await stat(diskBlobPath(casDirectory, digest))).mode & 0o7777, 0o644, 'the CAS file is untouched');
    });
  });

  test('refuses a CAS file owned by another user', async () => {
    await withFarmDisk(async (_h, _disk, sharedCas, casDirectory) => {
      const digest = await plant(casDirectory, 'foreign bytes', 0o444);
      assert.equal(await sharedCas.linkTo(digest, join(casDirectory, '..', 'probe')), undefined);
    }, ownUid + 1);
  });

  test('refuses what is not a regular file of the blob size', async () => {
    await withFarmDisk(async (h, _disk, sharedCas, casDirectory) => {
      const shortened = await plant(casDirectory, 'some bytes', 0o444);
      const wrongSize = { hash: shortened.hash, sizeBytes: shortened.sizeBytes + 1 };
      await mkdir(dirname(diskBlobPath(casDirectory, wrongSize)), { recursive: true });
      await symlink(diskBlobPath(casDirectory, shortened), diskBlobPath(casDirectory, wrongSize));
      assert.equal(await sharedCas.linkTo(wrongSize, join(h.directory, 'probe')), undefined);
    });
  });

  test('an input altered through its link is removed from the CAS, so no one gets it again', async () => {
    await withFarmDisk(async (h, disk, sharedCas, casDirectory) => {
      const rootDigest = await uploadTree(h.cas, { 'data.txt': file('original') });
      const destination = join(h.directory, 'root');
      const staged = await stageInputRoot(context, { cas: h.cas, cache: h.cache, sharedCas, rootDigest, destination });
      // An action running as the worker's user can make its input writable again.
      await chmod(join(destination, 'data.txt'), 0o644);
      await writeFile(join(destination, 'data.txt'), 'poison!!');
      assert.deepEqual(await staged.evictModifiedInputs(), [digestOf('original')]);
      await assert.rejects(stat(diskBlobPath(casDirectory, digestOf('original'))), { code: 'ENOENT' });
      assert.equal(await disk.get(context, digestOf('original')).catch(() => undefined), undefined);
    });
  });

  test("an input linked from the CAS outlives the blob's eviction from the CAS", async () => {
    await withFarmDisk(async (h, disk, sharedCas) => {
      const rootDigest = await uploadTree(h.cas, { 'data.txt': file('still here') });
      const destination = join(h.directory, 'root');
      const staged = await stageInputRoot(context, { cas: h.cas, cache: h.cache, sharedCas, rootDigest, destination });
      assert.equal(await disk.delete(digestOf('still here')), true);
      assert.equal(await readFile(join(destination, 'data.txt'), 'utf8'), 'still here');
      assert.deepEqual(await staged.evictModifiedInputs(), []);
    });
  });

  test('never looks for blobs the farm keeps elsewhere (segment files), even when a linkable file is there', async () => {
    await withFarmDisk(async (h, _disk, _shared, casDirectory) => {
      const sharedCas = await SharedCas.open(casDirectory, h.directory, { smallBlobBytes: 10 });
      assert.ok(sharedCas instanceof SharedCas);
      const rootDigest = await uploadTree(h.cas, { 'small.txt': file('ten bytes!'), 'large.txt': file('eleven byte') });
      const destination = join(h.directory, 'root');
      await stageInputRoot(context, { cas: h.cas, cache: h.cache, sharedCas, rootDigest, destination });
      const inode = async (path: string) => (await stat(path)).ino;
      assert.equal(
        await inode(join(destination, 'large.txt')),
        await inode(diskBlobPath(casDirectory, digestOf('eleven byte'))),
        'linked from the CAS',
      );
      const cached = h.cache.localPath(context, digestOf('ten bytes!'), false);
      assert.ok(cached, 'fetched into the cache');
      assert.equal(await inode(join(destination, 'small.txt')), await inode(cached));
      assert.equal(await sharedCas.linkTo(digestOf('ten bytes!'), join(h.directory, 'probe')), undefined);
    });
  });

  test('is unusable when its directory is absent, with the reason', async () => {
    const h = await newHarness();
    try {
      const opened = await SharedCas.open(join(h.directory, 'absent'), h.directory);
      assert.ok(!(opened instanceof SharedCas));
      assert.match(opened.unusable, /cannot read .*absent/);
    } finally {
      await h.close();
    }
  });
});
