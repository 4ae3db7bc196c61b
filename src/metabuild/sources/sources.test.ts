import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CountingStore } from '../../../test/support/countingStore.js';
import { makeTar, run, withTempDir } from '../../../test/support/sources.js';
import { backgroundContext } from '../../context/requestContext.js';
import { type Digest, formatDigest } from '../../digest/digest.js';
import type { BlobStore } from '../../storage/blobStore.js';
import { MemoryBlobStore } from '../../storage/memoryBlobStore.js';
import { treeFromEntries } from '../../tree/editor.js';
import { listTree } from '../../tree/list.js';
import { gitSource } from './git.js';
import { SourceError, sourcesKey, stageSources, validateSources } from './index.js';
import { localSource } from './local.js';
import type { SourceConfig, SourceContext } from './sourceKind.js';
import { globToRegExp, selectBaseDir, tarSource } from './tar.js';

const requestContext = backgroundContext();

const LOCATION = 'elements/hello.bst:7';

function context(projectDir: string, cas: BlobStore = new MemoryBlobStore(), aliases: Record<string, string> = {}) {
  return { projectDir, aliases, cas, cacheDir: join(projectDir, '.cache'), location: LOCATION } satisfies SourceContext;
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

/** Asserts a SourceError located at LOCATION whose message matches. */
function located(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof SourceError, String(error));
    assert.equal(error.location, LOCATION);
    assert.ok(error.message.startsWith(`${LOCATION}: `), error.message);
    assert.match(error.message, pattern);
    return true;
  };
}

describe('local source', () => {
  test('stages a directory, and its key is the digest of the content', async () => {
    await withTempDir(async (project) => {
      await mkdir(join(project, 'files/sub'), { recursive: true });
      await writeFile(join(project, 'files/a.c'), 'a');
      await writeFile(join(project, 'files/sub/run.sh'), '#!/bin/sh');
      await chmod(join(project, 'files/sub/run.sh'), 0o755);
      const ctx = context(project);
      const config = { kind: 'local', path: 'files' };
      localSource.validate(config, LOCATION);
      const root = await localSource.stage(config, ctx);
      assert.deepEqual(await listing(ctx.cas, root), ['a.c=1', 'sub/', 'sub/run.sh*=9']);
      const key = await localSource.key(config, context(project, new CountingStore()));
      assert.equal(key, formatDigest(root));
      await writeFile(join(project, 'files/a.c'), 'b');
      assert.notEqual(await localSource.key(config, ctx), key);
      await chmod(join(project, 'files/a.c'), 0o755);
      const executable = await localSource.key(config, ctx);
      assert.notEqual(executable, key);
    });
  });

  test('stages a single file under its name', async () => {
    await withTempDir(async (project) => {
      await mkdir(join(project, 'files'));
      await writeFile(join(project, 'files/hello.c'), 'int main(){}');
      const ctx = context(project);
      const root = await localSource.stage({ kind: 'local', path: './files/hello.c' }, ctx);
      assert.deepEqual(await listing(ctx.cas, root), ['hello.c=12']);
    });
  });

  test('refuses missing paths and paths leaving the project', async () => {
    await withTempDir(async (project) => {
      const ctx = context(project);
      await assert.rejects(localSource.stage({ kind: 'local', path: 'nope' }, ctx), located(/"nope" does not exist/));
      assert.throws(() => localSource.validate({ kind: 'local', path: '../x' }, LOCATION), located(/must not contain/));
      assert.throws(() => localSource.validate({ kind: 'local', path: '/etc' }, LOCATION), located(/relative path/));
      assert.throws(() => localSource.validate({ kind: 'local' }, LOCATION), located(/missing required key 'path'/));
      assert.throws(
        () => localSource.validate({ kind: 'local', path: 'x', ref: 'y' }, LOCATION),
        located(/unknown key 'ref'/),
      );
      await symlink('/etc', join(project, 'escape'));
      await assert.rejects(
        localSource.stage({ kind: 'local', path: 'escape' }, ctx),
        located(/leads outside the project directory/),
      );
    });
  });
});

/** A project with a tarball "upstream/hello-1.0.tar.gz" holding hello-1.0/{configure,src/hello.c}. */
async function tarProject(project: string): Promise<{ tarball: string; ref: string }> {
  const tree = join(project, 'work/hello-1.0');
  await mkdir(join(tree, 'src'), { recursive: true });
  await writeFile(join(tree, 'configure'), '#!/bin/sh\n');
  await chmod(join(tree, 'configure'), 0o755);
  await writeFile(join(tree, 'src/hello.c'), 'int main(){return 0;}\n');
  await mkdir(join(project, 'upstream'));
  const tarball = join(project, 'upstream/hello-1.0.tar.gz');
  run('tar', ['-czf', tarball, '-C', join(project, 'work'), 'hello-1.0'], project);
  return { tarball, ref: sha256(await readFile(tarball)) };
}

describe('tar source', () => {
  test('stages through an alias, file:// URL or plain path, stripping the top directory by default', async () => {
    await withTempDir(async (project) => {
      const { ref } = await tarProject(project);
      const ctx = context(project, new MemoryBlobStore(), {
        upstream: `${pathToFileURL(join(project, 'upstream')).href}/`,
      });
      const expected = ['configure*=10', 'src/', 'src/hello.c=22'];
      for (const url of [
        'upstream:hello-1.0.tar.gz',
        pathToFileURL(join(project, 'upstream/hello-1.0.tar.gz')).href,
        'upstream/hello-1.0.tar.gz',
      ]) {
        const config = { kind: 'tar', url, ref };
        tarSource.validate(config, LOCATION);
        assert.deepEqual(await listing(ctx.cas, await tarSource.stage(config, ctx)), expected, url);
      }
      const whole = await tarSource.stage({ kind: 'tar', url: 'upstream:hello-1.0.tar.gz', ref, 'base-dir': '' }, ctx);
      assert.deepEqual(await listing(ctx.cas, whole), [
        'hello-1.0/',
        'hello-1.0/configure*=10',
        'hello-1.0/src/',
        'hello-1.0/src/hello.c=22',
      ]);
      const src = await tarSource.stage(
        { kind: 'tar', url: 'upstream:hello-1.0.tar.gz', ref, 'base-dir': '*/src' },
        ctx,
      );
      assert.deepEqual(await listing(ctx.cas, src), ['hello.c=22']);
      await assert.rejects(
        tarSource.stage({ kind: 'tar', url: 'upstream:hello-1.0.tar.gz', ref, 'base-dir': 'nothing*' }, ctx),
        located(/no directory in the tarball matches base-dir 'nothing\*'/),
      );
      assert.deepEqual(await tarSource.key({ kind: 'tar', url: 'upstream:hello-1.0.tar.gz', ref }, ctx), {
        url: 'upstream:hello-1.0.tar.gz',
        ref,
        'base-dir': '*',
      });
    });
  });

  test('a ref mismatch names the source, gives expected and actual, and stages nothing', async () => {
    await withTempDir(async (project) => {
      const { ref } = await tarProject(project);
      const cas = new CountingStore();
      const wrong = 'f'.repeat(64);
      await assert.rejects(
        tarSource.stage({ kind: 'tar', url: 'upstream/hello-1.0.tar.gz', ref: wrong }, context(project, cas)),
        located(
          new RegExp(
            `tar source upstream/hello-1.0.tar.gz: sha256 mismatch: the ref expects ${wrong} but the tarball is ${ref}`,
          ),
        ),
      );
      assert.equal(cas.puts, 0);
    });
  });

  test("a flat tarball needs base-dir: ''", async () => {
    await withTempDir(async (project) => {
      const data = makeTar([{ name: 'a.txt', data: 'a' }]);
      await writeFile(join(project, 'flat.tar'), data);
      const ctx = context(project);
      const config = { kind: 'tar', url: 'flat.tar', ref: sha256(data) };
      await assert.rejects(tarSource.stage(config, ctx), located(/set base-dir: '' to stage the whole tarball/));
      assert.deepEqual(await listing(ctx.cas, await tarSource.stage({ ...config, 'base-dir': '' }, ctx)), ['a.txt=1']);
    });
  });

  test('unsafe members fail the source and are reported with its location', async () => {
    await withTempDir(async (project) => {
      const data = makeTar([
        { name: 'top/', type: '5' },
        { name: 'top/../../evil', data: 'x' },
      ]);
      await writeFile(join(project, 'evil.tar'), data);
      await assert.rejects(
        tarSource.stage({ kind: 'tar', url: 'evil.tar', ref: sha256(data) }, context(project)),
        located(/tar source evil.tar: unsafe tar member "top\/..\/..\/evil"/),
      );
    });
  });

  test('downloads over http once, verified, then uses the cache', async () => {
    await withTempDir(async (project) => {
      const { tarball, ref } = await tarProject(project);
      const body = await readFile(tarball);
      let requests = 0;
      const server = createServer((request, response) => {
        requests++;
        if (request.url === '/hello-1.0.tar.gz') response.end(body);
        else response.writeHead(404).end();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
        const ctx = context(project, new MemoryBlobStore(), { mirror: base });
        const config = { kind: 'tar', url: 'mirror:hello-1.0.tar.gz', ref };
        const first = await tarSource.stage(config, ctx);
        assert.deepEqual(await listing(ctx.cas, first), ['configure*=10', 'src/', 'src/hello.c=22']);
        assert.deepEqual(await readdir(join(ctx.cacheDir, 'tar')), [ref]);
        assert.deepEqual(await tarSource.stage(config, ctx), first);
        assert.equal(requests, 1);
        // The cache is by content: the same ref under another URL needs no download.
        assert.deepEqual(await tarSource.stage({ ...config, url: 'mirror:elsewhere.tar.gz' }, ctx), first);
        assert.equal(requests, 1);
        await assert.rejects(
          tarSource.stage({ kind: 'tar', url: 'mirror:missing.tar.gz', ref: '1'.repeat(64) }, ctx),
          located(/HTTP 404/),
        );
        const wrong = '0'.repeat(64);
        await assert.rejects(
          tarSource.stage({ kind: 'tar', url: 'mirror:hello-1.0.tar.gz', ref: wrong }, ctx),
          located(/sha256 mismatch/),
        );
        assert.deepEqual(await readdir(join(ctx.cacheDir, 'tar')), [ref], 'nothing recorded for the bad download');
      } finally {
        server.close();
      }
    });
  });

  test('validates its keys', () => {
    const ref = 'a'.repeat(64);
    assert.throws(() => tarSource.validate({ kind: 'tar', ref }, LOCATION), located(/missing required key 'url'/));
    assert.throws(() => tarSource.validate({ kind: 'tar', url: 'x.tar' }, LOCATION), located(/no 'ref'/));
    assert.throws(
      () => tarSource.validate({ kind: 'tar', url: 'x.tar', ref: 'abc' }, LOCATION),
      located(/64 lowercase hex/),
    );
    assert.throws(
      () => tarSource.validate({ kind: 'tar', url: 'x.tar', ref, 'base-dir': 3 }, LOCATION),
      located(/'base-dir' must be a string/),
    );
    assert.throws(
      () => tarSource.validate({ kind: 'tar', url: 'x.tar', ref, sha: 'x' }, LOCATION),
      located(/unknown key 'sha'/),
    );
  });

  test('base-dir globs follow BuildStream', () => {
    const dirs = ['b-2.0', 'b-2.0/src', 'a-1.0', 'a-1.0/src/deep'].sort();
    assert.equal(selectBaseDir(dirs, '*'), 'a-1.0');
    assert.equal(selectBaseDir(dirs, 'b-*'), 'b-2.0');
    assert.equal(selectBaseDir(dirs, '*/src'), 'b-2.0/src');
    assert.equal(selectBaseDir(dirs, '**/deep'), 'a-1.0/src/deep');
    assert.equal(selectBaseDir(dirs, './a-1.0/'), 'a-1.0');
    assert.equal(selectBaseDir(dirs, ''), '');
    assert.equal(selectBaseDir(dirs, '.'), '');
    assert.equal(selectBaseDir(dirs, 'c*'), undefined);
    assert.ok(globToRegExp('[ab]-?.0').test('a-1.0'));
    assert.ok(!globToRegExp('[!ab]-?.0').test('a-1.0'));
  });
});

/** A repository with two commits; returns their shas. */
async function gitRepo(dir: string): Promise<{ repo: string; first: string; second: string }> {
  const repo = join(dir, 'repo');
  await mkdir(join(repo, 'src'), { recursive: true });
  const env = {
    GIT_AUTHOR_NAME: 't',
    GIT_AUTHOR_EMAIL: 't@example.com',
    GIT_COMMITTER_NAME: 't',
    GIT_COMMITTER_EMAIL: 't@example.com',
  };
  const git = (...args: string[]) => run('git', args, repo, env).trim();
  git('init', '-q', '-b', 'main');
  await writeFile(join(repo, 'src/hello.c'), 'v1');
  await writeFile(join(repo, 'build.sh'), '#!/bin/sh\n');
  await chmod(join(repo, 'build.sh'), 0o755);
  await symlink('src/hello.c', join(repo, 'link'));
  await writeFile(join(repo, '.gitattributes'), 'build.sh export-ignore\n');
  git('add', '-A');
  git('commit', '-q', '-m', 'one');
  const first = git('rev-parse', 'HEAD');
  await writeFile(join(repo, 'src/hello.c'), 'version 2');
  await writeFile(join(repo, 'untracked-in-second'), 'x');
  git('add', 'src/hello.c');
  git('commit', '-q', '-m', 'two');
  const second = git('rev-parse', 'HEAD');
  return { repo, first, second };
}

describe('git source', () => {
  test('stages exactly the tree of the commit, executable bits and symlinks included', async () => {
    await withTempDir(async (dir) => {
      const { first, second } = await gitRepo(dir);
      const ctx = context(dir, new MemoryBlobStore(), { local: `${pathToFileURL(dir).href}/` });
      const config = (ref: string, url = 'repo'): SourceConfig => ({ kind: 'git', url, ref, track: 'main' });
      gitSource.validate(config(first), LOCATION);
      const one = await gitSource.stage(config(first), ctx);
      assert.deepEqual(await listing(ctx.cas, one), [
        '.gitattributes=23',
        'build.sh*=10',
        'link->src/hello.c',
        'src/',
        'src/hello.c=2',
      ]);
      const two = await gitSource.stage(config(second, 'local:repo'), ctx);
      assert.deepEqual((await listing(ctx.cas, two)).at(-1), 'src/hello.c=9');
      assert.deepEqual(await gitSource.stage(config(first, pathToFileURL(join(dir, 'repo')).href), ctx), one);
      // The same content built another way has the same digest.
      assert.deepEqual(
        one,
        await treeFromEntries(requestContext, ctx.cas, [
          { path: '.gitattributes', kind: 'file', data: 'build.sh export-ignore\n' },
          { path: 'build.sh', kind: 'file', data: '#!/bin/sh\n', executable: true },
          { path: 'link', kind: 'symlink', target: 'src/hello.c' },
          { path: 'src/hello.c', kind: 'file', data: 'v1' },
        ]),
      );
      assert.deepEqual(await gitSource.key(config(first), ctx), { url: 'repo', ref: first });
      assert.deepEqual(await gitSource.key(config(`v1.0-3-g${first}`), ctx), { url: 'repo', ref: first });
    });
  });

  test('a missing commit, repository or ref is a located error', async () => {
    await withTempDir(async (dir) => {
      await gitRepo(dir);
      const ctx = context(dir);
      const absent = '1'.repeat(40);
      await assert.rejects(
        gitSource.stage({ kind: 'git', url: 'repo', ref: absent }, ctx),
        located(new RegExp(`git source repo: commit ${absent} does not exist`)),
      );
      await assert.rejects(
        gitSource.stage({ kind: 'git', url: 'nowhere', ref: absent }, ctx),
        located(/no repository at/),
      );
      await assert.rejects(
        gitSource.stage({ kind: 'git', url: 'https://example.com/x.git', ref: absent }, ctx),
        located(/only local repositories/),
      );
      assert.throws(() => gitSource.validate({ kind: 'git', url: 'repo' }, LOCATION), located(/no 'ref'/));
      assert.throws(
        () => gitSource.validate({ kind: 'git', url: 'repo', ref: 'main' }, LOCATION),
        located(/not a commit sha/),
      );
    });
  });

  test('submodules need checkout-submodules: false and then stage as empty directories', async () => {
    await withTempDir(async (dir) => {
      const { repo, first } = await gitRepo(dir);
      const env = {
        GIT_AUTHOR_NAME: 't',
        GIT_AUTHOR_EMAIL: 't@e',
        GIT_COMMITTER_NAME: 't',
        GIT_COMMITTER_EMAIL: 't@e',
      };
      run('git', ['update-index', '--add', '--cacheinfo', `160000,${first},vendor/sub`], repo, env);
      run('git', ['commit', '-q', '-m', 'sub'], repo, env);
      const withSub = run('git', ['rev-parse', 'HEAD'], repo).trim();
      const ctx = context(dir);
      await assert.rejects(
        gitSource.stage({ kind: 'git', url: 'repo', ref: withSub }, ctx),
        located(/has submodules \(vendor\/sub\)/),
      );
      const root = await gitSource.stage({ kind: 'git', url: 'repo', ref: withSub, 'checkout-submodules': false }, ctx);
      assert.ok((await listing(ctx.cas, root)).includes('vendor/sub/'));
    });
  });
});

describe('stageSources', () => {
  test('stages sources in order into one tree, honouring directory:', async () => {
    await withTempDir(async (project) => {
      const { ref } = await tarProject(project);
      await mkdir(join(project, 'files'));
      await writeFile(join(project, 'files/configure'), 'patched');
      await writeFile(join(project, 'files/extra.h'), 'h');
      const ctx = context(project);
      const sources = [
        { config: { kind: 'tar', url: 'upstream/hello-1.0.tar.gz', ref }, location: 'elements/hello.bst:5' },
        { config: { kind: 'local', path: 'files/configure' }, location: 'elements/hello.bst:8' },
        { config: { kind: 'local', path: 'files', directory: 'include/x' }, location: 'elements/hello.bst:10' },
      ];
      const { location: _, ...shared } = ctx;
      const root = await stageSources(sources, shared);
      assert.deepEqual(await listing(ctx.cas, root), [
        'configure=7',
        'include/',
        'include/x/',
        'include/x/configure=7',
        'include/x/extra.h=1',
        'src/',
        'src/hello.c=22',
      ]);
      assert.deepEqual(await stageSources(sources, shared), root);
      const keys = await sourcesKey(sources, shared);
      assert.equal(keys.length, 3);
      assert.deepEqual(keys[0], { kind: 'tar', key: { url: 'upstream/hello-1.0.tar.gz', ref, 'base-dir': '*' } });
      assert.deepEqual((keys[2] as { directory: string }).directory, 'include/x');
      assert.deepEqual(await stageSources([], shared), await treeFromEntries(requestContext, undefined, []));
    });
  });

  test('unknown kinds, bad directories and bad keys are located errors, before anything is staged', async () => {
    await withTempDir(async (project) => {
      const cas = new CountingStore();
      const { location: _, ...shared } = context(project, cas);
      const good = { config: { kind: 'local', path: '.' }, location: 'elements/a.bst:3' };
      const check = async (config: SourceConfig, pattern: RegExp) => {
        const sources = [good, { config, location: LOCATION }];
        assert.throws(() => validateSources(sources), located(pattern));
        await assert.rejects(stageSources(sources, shared), located(pattern));
      };
      await check(
        { kind: 'bzr', url: 'x' },
        /unknown source kind 'bzr' \(supported: cas, git, local, remote-asset, tar\)/,
      );
      await check({ url: 'x' }, /source has no 'kind'/);
      await check({ kind: 'local', path: 'x', directory: '../up' }, /'directory' "..\/up" must not contain/);
      await check({ kind: 'local', path: 'x', directory: '/abs' }, /must be a relative path/);
      await check({ kind: 'git', url: 'x', ref: 'a'.repeat(40), branch: 'main' }, /git source: unknown key 'branch'/);
      assert.equal(cas.puts, 0);
    });
  });
});
