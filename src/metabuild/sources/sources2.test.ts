import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { makeTar, run, withTempDir } from '../../../test/support/sources.js';
import { backgroundContext } from '../../context/requestContext.js';
import type { Digest } from '../../digest/digest.js';
import { type BlobStore, getBuffer } from '../../storage/blobStore.js';
import { MemoryBlobStore } from '../../storage/memoryBlobStore.js';
import { listTree } from '../../tree/list.js';
import { candidateUrls } from './download.js';
import { format2SourceKinds, SourceError, sourcesKey, stageSources } from './index.js';
import type { SourceContext } from './sourceKind.js';
import { openZip } from './zipReader.js';

const requestContext = backgroundContext();

const LOCATION = 'elements/e.bst line 3';

function context(projectDir: string, extra: Partial<SourceContext> = {}): SourceContext {
  return {
    projectDir,
    aliases: {},
    cas: new MemoryBlobStore(),
    cacheDir: join(projectDir, '.cache'),
    format2: true,
    ...extra,
  };
}

async function listing(cas: BlobStore, root: Digest): Promise<string[]> {
  return (await listTree(requestContext, cas, root)).map((e) =>
    e.kind === 'file'
      ? `${e.path}${e.executable ? '*' : ''}=${e.digest.sizeBytes}`
      : e.kind === 'symlink'
        ? `${e.path}->${e.target}`
        : `${e.path}/`,
  );
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const declare = (config: Record<string, unknown>) => [{ config, location: LOCATION }];
const stage = (ctx: SourceContext, ...configs: Record<string, unknown>[]) =>
  stageSources(
    configs.map((config) => ({ config, location: LOCATION })),
    ctx,
    format2SourceKinds,
  );

describe('BuildStream 2 sources', () => {
  test('a remote source stages one verified file under its filename, executable when asked', async () => {
    await withTempDir(async (project) => {
      const data = Buffer.from('#!/bin/sh\necho tool\n');
      await writeFile(join(project, 'tool-1.0.sh'), data);
      const ctx = context(project, { aliases: { files: `file://${project}/` } });
      const plain = await stage(ctx, { kind: 'remote', url: 'files:tool-1.0.sh', ref: sha256(data) });
      assert.deepEqual(await listing(ctx.cas, plain), [`tool-1.0.sh=${data.length}`]);
      const named = await stage(ctx, {
        kind: 'remote',
        url: 'files:tool-1.0.sh',
        ref: sha256(data),
        filename: 'tool',
        executable: 'True',
        directory: 'bin',
      });
      assert.deepEqual(await listing(ctx.cas, named), ['bin/', `bin/tool*=${data.length}`]);
      await assert.rejects(
        stage(ctx, { kind: 'remote', url: 'files:tool-1.0.sh', ref: sha256(data), filename: 'a/b' }),
        /'filename' "a\/b" must be a file name without directories/,
      );
      await assert.rejects(
        stage(ctx, { kind: 'remote', url: 'files:tool-1.0.sh' }),
        /remote source files:tool-1.0.sh: no 'ref' \(the sha256 of the file\); track the source first/,
      );
      await assert.rejects(
        stage(ctx, { kind: 'remote', url: 'files:tool-1.0.sh', ref: '0'.repeat(64) }),
        /sha256 mismatch: the ref expects 0{64} but the file is/,
      );
    });
  });

  test('a zip source stages the archive as BuildStream extracts it: no permissions, base-dir like tar', async () => {
    await withTempDir(async (project) => {
      await mkdir(join(project, 'src/pkg-1.0/sub'), { recursive: true });
      await writeFile(join(project, 'src/pkg-1.0/run.sh'), '#!/bin/sh\n');
      run('chmod', ['755', join(project, 'src/pkg-1.0/run.sh')], project);
      await writeFile(join(project, 'src/pkg-1.0/sub/data.txt'), 'x'.repeat(5000));
      await symlink('run.sh', join(project, 'src/pkg-1.0/link'));
      // -y keeps the symlink as a symlink member; zip deflates data.txt and stores the rest.
      run('zip', ['-q', '-r', '-y', join(project, 'pkg.zip'), 'pkg-1.0'], join(project, 'src'));
      const archive = await readFile(join(project, 'pkg.zip'));
      const ctx = context(project);
      const root = await stage(ctx, { kind: 'zip', url: 'pkg.zip', ref: sha256(archive) });
      assert.deepEqual(await listing(ctx.cas, root), ['link=6', 'run.sh=10', 'sub/', 'sub/data.txt=5000']);
      const whole = await stage(ctx, { kind: 'zip', url: 'pkg.zip', ref: sha256(archive), 'base-dir': '' });
      assert.deepEqual((await listing(ctx.cas, whole))[0], 'pkg-1.0/');
      const dot = await stage(ctx, { kind: 'zip', url: 'pkg.zip', ref: sha256(archive), 'base-dir': './' });
      assert.deepEqual(dot, whole, "'./' names the archive's root, as for tar");
      await assert.rejects(
        stage(ctx, { kind: 'zip', url: 'pkg.zip' }),
        /zip source pkg.zip: no 'ref' \(the sha256 of the archive\); track the source first/,
      );
      await assert.rejects(
        stage(ctx, { kind: 'zip', url: 'pkg.zip', ref: sha256(archive), 'base-dir': 'nothing*' }),
        /no directory in the archive matches base-dir 'nothing\*'/,
      );
      const { members, close } = await openZip(join(project, 'pkg.zip'));
      assert.deepEqual(members.map((m) => m.name).sort(), [
        'pkg-1.0/',
        'pkg-1.0/link',
        'pkg-1.0/run.sh',
        'pkg-1.0/sub/',
        'pkg-1.0/sub/data.txt',
      ]);
      assert.equal((await members.find((m) => m.name.endsWith('data.txt'))!.read()).toString(), 'x'.repeat(5000));
      await close();
      await writeFile(join(project, 'bad.zip'), 'not a zip at all');
      await assert.rejects(
        stage(ctx, { kind: 'zip', url: 'bad.zip', ref: sha256(Buffer.from('not a zip at all')) }),
        /not a zip archive/,
      );
    });
  });

  test('a patch source applies to what the sources before it staged, with the given strip level', async () => {
    await withTempDir(async (project) => {
      await mkdir(join(project, 'files'));
      await writeFile(join(project, 'files/greet.c'), 'const char *greeting = "hello";\n');
      await writeFile(
        join(project, 'fix.patch'),
        '--- a/greet.c\n+++ b/greet.c\n@@ -1 +1 @@\n-const char *greeting = "hello";\n+const char *greeting = "patched";\n',
      );
      const ctx = context(project);
      const root = await stage(ctx, { kind: 'local', path: 'files' }, { kind: 'patch', path: 'fix.patch' });
      const [file] = (await listTree(requestContext, ctx.cas, root)).filter((e) => e.kind === 'file');
      assert.ok(file?.kind === 'file');
      const key = await sourcesKey(
        declare({ kind: 'patch', path: 'fix.patch', 'strip-level': '1' }),
        ctx,
        format2SourceKinds,
      );
      assert.deepEqual(key, [
        {
          kind: 'patch',
          key: { path: 'fix.patch', sha256: sha256(await readFile(join(project, 'fix.patch'))), 'strip-level': 1 },
        },
      ]);
      assert.equal(
        (await getBuffer(backgroundContext(), ctx.cas, file.digest))?.toString(),
        'const char *greeting = "patched";\n',
      );
      await assert.rejects(stage(ctx, { kind: 'patch', path: 'fix.patch' }), /nothing to patch/);
      await writeFile(join(project, 'bad.patch'), '--- a/none.c\n+++ b/none.c\n@@ -1 +1 @@\n-x\n+y\n');
      await assert.rejects(
        stage(ctx, { kind: 'local', path: 'files' }, { kind: 'patch', path: 'bad.patch' }),
        (error: unknown) => error instanceof SourceError && /patch failed/.test(error.message),
      );
    });
  });

  test('tar members are executable only when their owner may execute them', async () => {
    await withTempDir(async (project) => {
      const tarball = makeTar([
        { name: 'p/owner', data: 'a', mode: 0o744 },
        { name: 'p/others', data: 'b', mode: 0o655 },
      ]);
      await writeFile(join(project, 'p.tar'), tarball);
      const ctx = context(project);
      const root = await stage(ctx, { kind: 'tar', url: 'p.tar', ref: sha256(tarball) });
      assert.deepEqual(await listing(ctx.cas, root), ['others=1', 'owner*=1']);
    });
  });

  test('downloads try the mirrors of an alias before the alias itself', async () => {
    const data = Buffer.from('mirrored content');
    const requests: string[] = [];
    const server = createServer((request, response) => {
      requests.push(request.url ?? '');
      if (request.url === '/good/f.txt') response.end(data);
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await withTempDir(async (project) => {
        const ctx = context(project, {
          aliases: { up: `${base}/origin/` },
          mirrors: [{ aliases: { up: [`${base}/broken/`, `${base}/good/`] } }],
        });
        assert.deepEqual(candidateUrls('up:f.txt', ctx), [
          `${base}/broken/f.txt`,
          `${base}/good/f.txt`,
          `${base}/origin/f.txt`,
        ]);
        const root = await stage(ctx, { kind: 'remote', url: 'up:f.txt', ref: sha256(data) });
        assert.deepEqual(await listing(ctx.cas, root), [`f.txt=${data.length}`]);
        assert.deepEqual(requests, ['/broken/f.txt', '/good/f.txt']);
      });
    } finally {
      server.close();
    }
  });
});
