import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { removeProjects, writeProject } from '../../test/support/project.js';
import { backgroundContext } from '../context/requestContext.js';
import type { Digest } from '../digest/digest.js';
import type { Command } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { EMPTY_DIRECTORY_DIGEST } from '../tree/directory.js';
import { treeFromEntries } from '../tree/editor.js';
import { listTree } from '../tree/list.js';
import type { Artifact } from './artifactStore.js';
import { type Assembly2Context, Assembly2Error, assemble2 } from './assemble2.js';
import { commandLines, integrationLines } from './buildAction2.js';
import { loadProject, type Project } from './project/index.js';
import { globToRegExpSource, splitFilter } from './splitFilter2.js';
import { stagingLayout, stagingOrder } from './staging2.js';

const requestContext = backgroundContext();

after(removeProjects);

const PROJECT = {
  'project.conf': 'name: p\nmin-version: 2.0\nelement-path: elements\n',
  'files/keep': 'x',
  'elements/base.bst': 'kind: import\nsources:\n- kind: local\n  path: files\n',
  'elements/lib.bst': [
    'kind: manual',
    'build-depends: [base.bst]',
    'public:',
    '  bst:',
    '    integration-commands:',
    '    - echo lib-integrated > /integrated',
    '',
  ].join('\n'),
  'elements/tools.bst': 'kind: manual\nbuild-depends: [base.bst]\nruntime-depends: [lib.bst]\n',
  'elements/app.bst': [
    'kind: manual',
    'build-depends:',
    '- tools.bst',
    '- filename: base.bst',
    '  config:',
    '    location: /sysroot',
    'config:',
    '  build-commands: [make]',
    '',
  ].join('\n'),
  'elements/runtime.bst': 'kind: filter\nbuild-depends: [lib.bst]\nconfig:\n  include: [runtime]\n',
  'elements/everything.bst': 'kind: compose\nbuild-depends: [tools.bst]\nconfig:\n  integrate: false\n',
  'elements/devel.bst':
    'kind: compose\nbuild-depends: [tools.bst]\nconfig:\n  integrate: false\n  include: [devel]\n  include-orphans: false\n',
  'elements/devel-orphans.bst':
    'kind: compose\nbuild-depends: [tools.bst]\nconfig:\n  integrate: false\n  include: [devel]\n',
  'elements/nothing.bst': 'kind: filter\nbuild-depends: [lib.bst]\nconfig:\n  include: [nosuchdomain]\n',
  'elements/pick.bst': 'kind: import\nsources:\n- kind: local\n  path: files\nconfig:\n  source: /missing\n',
};

let project: Project;
const cas = new MemoryBlobStore();
const artifacts = new Map<string, Artifact>();

before(async () => {
  project = await loadProject(await writeProject(PROJECT), {
    maxJobs: 2,
    targets: ['app.bst', 'runtime.bst', 'everything.bst', 'devel.bst', 'devel-orphans.bst', 'nothing.bst', 'pick.bst'],
  });
  artifacts.set('base.bst', {
    root: await treeFromEntries(requestContext, cas, [
      { path: 'usr/bin/sh', kind: 'file', data: 'sh', executable: true },
    ]),
  });
  artifacts.set('lib.bst', {
    root: await treeFromEntries(requestContext, cas, [
      { path: 'usr/lib/libx.so.1', kind: 'file', data: 'so' },
      { path: 'usr/lib/libx.so', kind: 'symlink', target: '/usr/lib/libx.so.1' },
      { path: 'usr/include/x.h', kind: 'file', data: 'h' },
      { path: 'usr/share/doc/x/README', kind: 'file', data: 'r' },
      { path: 'etc/x.conf', kind: 'file', data: 'c' },
    ]),
  });
  artifacts.set('tools.bst', {
    root: await treeFromEntries(requestContext, cas, [{ path: 'usr/bin/tool', kind: 'file', data: 't' }]),
  });
});

function assemblyContext(run?: Assembly2Context['run']): Assembly2Context {
  return {
    cas,
    project,
    platform: [],
    artifactOf: (name) => {
      const found = artifacts.get(name);
      assert.ok(found, `artifact of ${name}`);
      return found;
    },
    run: run ?? (async () => assert.fail('no Action expected')),
  };
}

const paths = async (root: Digest) =>
  (await listTree(requestContext, cas, root)).map((e) => (e.kind === 'symlink' ? `${e.path} -> ${e.target}` : e.path));
const element = (name: string) => project.elements.get(name)!;

describe('BuildStream 2 staging', () => {
  it('sorts dependencies as BuildStream 2 does and stages runtime dependencies first', () => {
    assert.deepEqual(
      element('app.bst').dependencies.map((d) => d.name),
      ['base.bst', 'tools.bst'],
    );
    assert.deepEqual(
      element('tools.bst').dependencies.map((d) => d.name),
      ['base.bst', 'lib.bst'],
      'runtime-only dependencies come after the others',
    );
    assert.deepEqual(stagingOrder(project, ['tools.bst']), ['lib.bst', 'tools.bst']);
    assert.deepEqual(
      stagingOrder(project, ['lib.bst', 'base.bst']),
      ['lib.bst', 'base.bst'],
      'build-only dependencies are not staged',
    );
    assert.deepEqual(
      [...stagingLayout(element('app.bst'))],
      [
        ['/', ['tools.bst']],
        ['/sysroot', ['base.bst']],
      ],
    );
  });

  it('runs a build element over its layout: integration at /, dependencies at their location', async () => {
    let seen: { root: Digest; command: Command } | undefined;
    const result = await assemble2(
      assemblyContext(async (_element, prepared) => {
        seen = { root: prepared.action.inputRootDigest!, command: prepared.command };
        return { root: EMPTY_DIRECTORY_DIGEST };
      }),
      element('app.bst'),
      await treeFromEntries(requestContext, cas, [{ path: 'Makefile', kind: 'file', data: 'all:' }]),
    );
    assert.equal(result.root.hash, EMPTY_DIRECTORY_DIGEST.hash);
    assert.ok(seen);
    const staged = await paths(seen.root);
    for (const path of [
      'usr/bin/tool',
      'usr/lib/libx.so -> /usr/lib/libx.so.1',
      'sysroot/usr/bin/sh',
      'buildstream/p/app.bst/Makefile',
      'buildstream-install',
      'dev',
      'proc',
      'tmp',
    ]) {
      assert.ok(staged.includes(path), `${path} in ${staged.join(', ')}`);
    }
    assert.ok(!staged.includes('usr/bin/sh'), 'base.bst is staged only at /sysroot');
    assert.equal(seen.command.workingDirectory, 'buildstream/p/app.bst');
    assert.deepEqual(seen.command.outputPaths, ['../../../buildstream-install']);
    const script = seen.command.arguments[3]!;
    assert.match(script, /sh -e -c 'echo lib-integrated > \/integrated'/);
    assert.match(script, /\(set -ex; sh -c -e 'make\n'\) \|\| \(echo Command/);
  });

  it('filters and composes by split domains, keeping directories that hold kept files', async () => {
    const runtime = await assemble2(assemblyContext(), element('runtime.bst'), EMPTY_DIRECTORY_DIGEST);
    assert.deepEqual(await paths(runtime.root), [
      'usr',
      'usr/lib',
      'usr/lib/libx.so -> /usr/lib/libx.so.1',
      'usr/lib/libx.so.1',
    ]);
    const everything = await assemble2(assemblyContext(), element('everything.bst'), EMPTY_DIRECTORY_DIGEST);
    assert.ok((await paths(everything.root)).includes('usr/share/doc/x/README'));
    const devel = await assemble2(assemblyContext(), element('devel.bst'), EMPTY_DIRECTORY_DIGEST);
    assert.deepEqual(await paths(devel.root), ['usr', 'usr/include', 'usr/include/x.h']);
    // Orphans include directories no domain claims (usr/lib, usr/share), kept even when what
    // they held is not; usr/bin is claimed by the runtime domain, like the tool inside it.
    const orphans = await assemble2(assemblyContext(), element('devel-orphans.bst'), EMPTY_DIRECTORY_DIGEST);
    assert.deepEqual(await paths(orphans.root), [
      'etc',
      'etc/x.conf',
      'usr',
      'usr/include',
      'usr/include/x.h',
      'usr/lib',
      'usr/share',
    ]);
  });

  it('reports unknown domains and import directories that are not there', async () => {
    await assert.rejects(
      assemble2(assemblyContext(), element('nothing.bst'), EMPTY_DIRECTORY_DIGEST),
      (error: unknown) =>
        error instanceof Assembly2Error && /unknown split domains of lib.bst: nosuchdomain/.test(error.message),
    );
    await assert.rejects(
      assemble2(
        assemblyContext(),
        element('pick.bst'),
        await treeFromEntries(requestContext, cas, [{ path: 'a', kind: 'file', data: '' }]),
      ),
      /import source directory '\/missing' does not exist/,
    );
  });
});

describe('BuildStream 2 command scripts', () => {
  const runScript = (lines: string[], env: Record<string, string> = {}) =>
    spawnSync('sh', ['-c', '-e', `${lines.join('\n')}\n`], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH!, ...env },
    });

  it('runs commands in order with sh -c -e and stops at the first failure', () => {
    const ok = runScript(
      commandLines([{ label: 'build-commands', commands: ['echo one', 'false; echo never', 'echo two'] }]),
    );
    assert.notEqual(ok.status, 0);
    assert.match(ok.stdout, /^one\n$/);
    assert.match(ok.stderr, /Command 'false; echo never' failed with exitcode 1/);
  });

  it('runs integration commands from / in the environment of their element', () => {
    const result = runScript(
      [
        ...integrationLines(
          [
            {
              element: 'lib.bst',
              commands: ['echo "$(pwd) $ONLY_LIB ${ONLY_APP:-unset}"'],
              environment: { PATH: process.env.PATH!, ONLY_LIB: 'lib' },
            },
          ],
          { PATH: process.env.PATH!, ONLY_APP: 'app' },
        ),
        'echo "after ${ONLY_APP}"',
      ],
      { ONLY_APP: 'app' },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, '/ lib unset\nafter app\n');
  });
});

describe('BuildStream 2 split domains', () => {
  it('translates globs as BuildStream does', () => {
    const test = (glob: string, path: string) => new RegExp(`^(?:${globToRegExpSource(glob)})$`, 's').test(path);
    assert.ok(test('/usr/lib/lib*.so*', '/usr/lib/libx.so.1'));
    assert.ok(!test('/usr/lib/*', '/usr/lib/a/b'));
    assert.ok(test('/usr/share/doc/**', '/usr/share/doc/a/b'));
    assert.ok(test('/usr/[!a]in', '/usr/bin'));
    assert.ok(!test('/usr/[!b]in', '/usr/bin'));
  });

  it('keeps orphans only when asked and never what an excluded domain claims', () => {
    const keep = splitFilter({ runtime: ['/bin/*'], doc: ['/doc/**'] }, [], ['doc'], false)!;
    assert.ok(keep('bin/sh'));
    assert.ok(!keep('etc/passwd'), 'orphan');
    assert.ok(!keep('doc/a'), 'excluded');
    assert.equal(splitFilter({ runtime: ['/bin/*'] }, [], [], true), undefined, 'no split requested');
  });
});
