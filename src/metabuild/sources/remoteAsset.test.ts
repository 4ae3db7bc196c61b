import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MemoryAssetService } from '../../../test/support/remoteAssetService.js';
import { makeTar, withTempDir } from '../../../test/support/sources.js';
import { backgroundContext } from '../../context/requestContext.js';
import { type Digest, digestOf, formatDigest } from '../../digest/digest.js';
import type { BlobStore } from '../../storage/blobStore.js';
import { MemoryBlobStore } from '../../storage/memoryBlobStore.js';
import { treeFromEntries } from '../../tree/editor.js';
import { listTree } from '../../tree/list.js';
import { casSource } from './cas.js';
import { SourceError, sourcesKey, stageSources, validateSources } from './index.js';
import { remoteAssetSource } from './remoteAsset.js';
import type { SourceConfig, SourceContext } from './sourceKind.js';

const requestContext = backgroundContext();

const LOCATION = 'elements/tool.bst line 4';
const URI = 'https://artifacts.invalid/tool';

function context(dir: string, cas: BlobStore, asset?: MemoryAssetService): SourceContext {
  return {
    projectDir: dir,
    aliases: {},
    cas,
    cacheDir: join(dir, 'cache'),
    location: LOCATION,
    ...(asset ? { asset } : {}),
  };
}

async function paths(cas: BlobStore, root: Digest): Promise<string[]> {
  return (await listTree(requestContext, cas, root)).map((e) => (e.kind === 'directory' ? `${e.path}/` : e.path));
}

function located(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof SourceError, String(error));
    assert.equal(error.location, LOCATION);
    assert.match(error.message, pattern);
    return true;
  };
}

const remote = (config: Record<string, unknown>): SourceConfig => ({ kind: 'remote-asset', ...config });

describe('the remote-asset source', () => {
  test('a directory asset is staged as the tree it names, and its digest is in the key', async () => {
    await withTempDir(async (dir) => {
      const cas = new MemoryBlobStore();
      const asset = new MemoryAssetService();
      const tree = await treeFromEntries(requestContext, cas, [
        { path: 'bin/tool', kind: 'file', data: 'x', executable: true },
      ]);
      await asset.pushDirectory([URI], tree);
      const config = remote({ uri: URI, type: 'directory' });
      const key = await remoteAssetSource.key(config, context(dir, cas, asset));
      assert.deepEqual(key, { uri: URI, qualifiers: [], type: 'directory', digest: formatDigest(tree) });
      assert.equal(formatDigest(await remoteAssetSource.stage(config, context(dir, cas, asset))), formatDigest(tree));
    });
  });

  test('qualifiers must match the pushed ones exactly', async () => {
    await withTempDir(async (dir) => {
      const cas = new MemoryBlobStore();
      const asset = new MemoryAssetService();
      const tree = await treeFromEntries(requestContext, cas, [{ path: 'a', kind: 'file', data: 'a' }]);
      await asset.pushDirectory([URI], tree, { qualifiers: [{ name: 'vcs.branch', value: 'main' }] });
      const ok = remote({ uri: URI, type: 'directory', qualifiers: { 'vcs.branch': 'main' } });
      assert.equal(
        ((await remoteAssetSource.key(ok, context(dir, cas, asset))) as { digest: string }).digest,
        formatDigest(tree),
      );
      await assert.rejects(
        remoteAssetSource.key(remote({ uri: URI, type: 'directory' }), context(dir, cas, asset)),
        located(/the farm has no directory asset https:\/\/artifacts\.invalid\/tool$/),
      );
    });
  });

  test('a tarball asset is unpacked, with base-dir as the tar source has it', async () => {
    await withTempDir(async (dir) => {
      const cas = new MemoryBlobStore();
      const asset = new MemoryAssetService();
      const tar = makeTar([
        { name: 'tool-1.0/', type: '5' },
        { name: 'tool-1.0/README', data: 'read me\n' },
        { name: 'tool-1.0/bin/tool', data: '#!/bin/sh\n', mode: 0o755 },
      ]);
      const blob = digestOf(tar);
      await cas.put(backgroundContext(), blob).then(async (w) => {
        await w.write(tar);
        await w.commit();
      });
      await asset.pushBlob([URI], blob);
      const stripped = await stageSources(
        [{ config: remote({ uri: URI, type: 'tarball' }), location: LOCATION }],
        context(dir, cas, asset),
      );
      assert.deepEqual(await paths(cas, stripped), ['README', 'bin/', 'bin/tool']);
      const whole = await remoteAssetSource.stage(remote({ uri: URI, 'base-dir': '' }), context(dir, cas, asset));
      assert.deepEqual(await paths(cas, whole), ['tool-1.0/', 'tool-1.0/README', 'tool-1.0/bin/', 'tool-1.0/bin/tool']);
      // Without a type, FetchDirectory is asked first, then FetchBlob.
      const key = await remoteAssetSource.key(remote({ uri: URI }), context(dir, cas, asset));
      assert.deepEqual(key, { uri: URI, qualifiers: [], type: 'tarball', digest: formatDigest(blob), 'base-dir': '*' });
      assert.deepEqual(
        asset.fetches.slice(-2).map((f) => f.kind),
        ['directory', 'blob'],
      );
    });
  });

  test('the key holds what was fetched when keys were computed, and staging builds exactly that', async () => {
    await withTempDir(async (dir) => {
      const cas = new MemoryBlobStore();
      const asset = new MemoryAssetService();
      const first = await treeFromEntries(requestContext, cas, [{ path: 'v', kind: 'file', data: '1' }]);
      const second = await treeFromEntries(requestContext, cas, [{ path: 'v', kind: 'file', data: '2' }]);
      const sources = [{ config: remote({ uri: URI, type: 'directory' }), location: LOCATION }];
      await asset.pushDirectory([URI], first);
      const key = await sourcesKey(sources, context(dir, cas, asset));
      await asset.pushDirectory([URI], second);
      // Same session (same asset service): staging uses the resolution the key was made from.
      assert.equal(formatDigest(await stageSources(sources, context(dir, cas, asset))), formatDigest(first));
      // A new session resolves again, and its key differs.
      const fresh = new MemoryAssetService();
      await fresh.pushDirectory([URI], second);
      assert.notDeepEqual(await sourcesKey(sources, context(dir, cas, fresh)), key);
    });
  });

  test('an asset the farm does not have, or no asset service at all, is a located error', async () => {
    await withTempDir(async (dir) => {
      const cas = new MemoryBlobStore();
      await assert.rejects(
        remoteAssetSource.key(remote({ uri: URI }), context(dir, cas, new MemoryAssetService())),
        located(/no directory or blob asset/),
      );
      await assert.rejects(remoteAssetSource.key(remote({ uri: URI }), context(dir, cas)), located(/needs a farm/));
    });
  });

  test('validation: uri required, type and qualifiers checked, base-dir only for tarballs', () => {
    const check = (config: Record<string, unknown>, pattern: RegExp) =>
      assert.throws(() => validateSources([{ config: remote(config), location: LOCATION }]), located(pattern));
    check({}, /missing required key 'uri'/);
    check({ uri: URI, type: 'zip' }, /'type' must be one of directory, tarball/);
    check({ uri: URI, qualifiers: 'x' }, /'qualifiers' must be a mapping/);
    check({ uri: URI, qualifiers: { a: ['b'] } }, /qualifier 'a' must be a string/);
    check({ uri: URI, type: 'directory', 'base-dir': '' }, /'base-dir' applies to tarballs only/);
    check({ uri: URI, ref: 'x' }, /unknown key 'ref'/);
  });
});

describe('the cas source', () => {
  test('stages the tree its digest names, which is also its key', async () => {
    await withTempDir(async (dir) => {
      const cas = new MemoryBlobStore();
      const tree = await treeFromEntries(requestContext, cas, [
        { path: 'lib/a.txt', kind: 'file', data: 'a' },
        { path: 'empty', kind: 'directory' },
      ]);
      const config = { kind: 'cas', digest: formatDigest(tree) };
      assert.deepEqual(await casSource.key(config, context(dir, cas)), { digest: formatDigest(tree) });
      assert.equal(formatDigest(await casSource.stage(config, context(dir, cas))), formatDigest(tree));
    });
  });

  test('refuses a malformed digest', () => {
    for (const digest of ['abc', 'abc/12', `${'a'.repeat(64)}`, `${'A'.repeat(64)}/3`, `${'a'.repeat(64)}/-1`]) {
      assert.throws(
        () => casSource.validate({ kind: 'cas', digest }, LOCATION),
        located(/must be the digest of a Directory as HASH\/SIZE/),
      );
    }
    assert.throws(() => casSource.validate({ kind: 'cas' }, LOCATION), located(/missing required key 'digest'/));
  });

  test('fails to stage when the tree or any of its files is not in the CAS', async () => {
    await withTempDir(async (dir) => {
      const full = new MemoryBlobStore();
      const tree = await treeFromEntries(requestContext, full, [{ path: 'sub/file', kind: 'file', data: 'content' }]);
      await assert.rejects(
        casSource.stage({ kind: 'cas', digest: formatDigest(tree) }, context(dir, new MemoryBlobStore())),
        located(/\(the root\).*is not in the CAS/),
      );
      // Only the Directory messages, not the file.
      const partial = new MemoryBlobStore();
      await treeFromEntries(requestContext, partial, [{ path: 'sub/file', kind: 'file', digest: digestOf('content') }]);
      await assert.rejects(
        casSource.stage({ kind: 'cas', digest: formatDigest(tree) }, context(dir, partial)),
        located(/1 file blob\(s\) of the tree are not in the CAS/),
      );
    });
  });
});
