import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { removeProjects, writeProject } from '../../test/support/project.js';
import { backgroundContext } from '../context/requestContext.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { EMPTY_DIRECTORY_DIGEST } from '../tree/directory.js';
import { treeFromEntries } from '../tree/editor.js';
import type { ListedEntry } from '../tree/list.js';
import type { Artifact } from './artifactStore.js';
import { Assembly2Error, assemble2 } from './assemble2.js';
import { cacheKey } from './cacheKey.js';
import { type StagedArtifact, stagingWarnings } from './overlaps2.js';
import { loadProject } from './project/index.js';

after(removeProjects);

const digest = { hash: '0'.repeat(64), sizeBytes: 1 };
const file = (path: string): ListedEntry => ({ path, kind: 'file', digest, executable: false });
const directory = (path: string): ListedEntry => ({ path, kind: 'directory', digest });
const staged = (element: string, entries: ListedEntry[], whitelist: string[] = []): StagedArtifact => ({
  element,
  entries,
  whitelist,
});

describe('BuildStream 2 staging warnings', () => {
  it('finds no overlap when artifacts only share directories', () => {
    const reports = stagingWarnings([
      {
        location: '/',
        artifacts: [
          staged('a.bst', [directory('usr'), file('usr/a')]),
          staged('b.bst', [directory('usr'), file('usr/b')]),
        ],
      },
    ]);
    assert.deepEqual(reports, []);
  });

  it('names a replaced file, who replaced it and the staging order', () => {
    const [report, ...rest] = stagingWarnings([
      {
        location: '/',
        artifacts: [
          staged('a.bst', [directory('usr'), file('usr/x')]),
          staged('b.bst', [directory('usr'), file('usr/x')]),
          staged('c.bst', [directory('usr'), file('usr/x')]),
        ],
      },
    ]);
    assert.deepEqual(rest, []);
    assert.equal(report?.warning, 'overlaps');
    assert.match(
      report?.detail ?? '',
      /\/usr\/x: b\.bst and c\.bst are not permitted to overlap other elements, order c\.bst above b\.bst above a\.bst/,
    );
  });

  it('lets an element whose whitelist matches the path overlap, but not another one', () => {
    const allowed = stagingWarnings([
      {
        location: '/',
        artifacts: [staged('a.bst', [file('etc/conf')]), staged('b.bst', [file('etc/conf')], ['/etc/*'])],
      },
    ]);
    assert.deepEqual(allowed, []);
    const halfAllowed = stagingWarnings([
      {
        location: '/',
        artifacts: [
          staged('a.bst', [file('etc/conf')]),
          staged('b.bst', [file('etc/conf')], ['/etc/**']),
          staged('c.bst', [file('etc/conf')], ['/usr/*']),
        ],
      },
    ]);
    assert.match(halfAllowed[0]?.detail ?? '', /\/etc\/conf: c\.bst is not permitted/);
  });

  it('reports files replaced across locations regardless of whitelists, and files not staged over full directories', () => {
    const reports = stagingWarnings([
      {
        location: '/',
        artifacts: [staged('a.bst', [directory('sysroot'), file('sysroot/x'), directory('d'), file('d/f')])],
      },
      { location: '/sysroot', artifacts: [staged('b.bst', [file('x')], ['/**'])] },
      { location: '/', artifacts: [staged('c.bst', [file('d')])] },
    ]);
    assert.deepEqual(
      reports.map((r) => r.warning),
      ['overlaps', 'unstaged-files'],
    );
    assert.match(reports[0]?.detail ?? '', /\/sysroot\/x: b\.bst overlaps files previously staged by a\.bst in: \//);
    assert.match(reports[1]?.detail ?? '', /From c\.bst:\n {2}\/d/);
  });
});

describe('fatal-warnings in a BuildStream 2 project', () => {
  const files = (fatal: string) => ({
    'project.conf': `name: p\nmin-version: 2.0\nelement-path: elements\n${fatal}`,
    'elements/a.bst': 'kind: stack\n',
    'elements/b.bst': 'kind: stack\npublic:\n  bst:\n    overlap-whitelist:\n    - "%{bindir}/tool"\n',
    'elements/c.bst': 'kind: stack\n',
    'elements/whitelisted.bst': 'kind: compose\nbuild-depends: [a.bst, b.bst]\n',
    'elements/clash.bst': 'kind: compose\nbuild-depends: [a.bst, c.bst]\n',
  });
  const cas = new MemoryBlobStore();
  const context = backgroundContext();

  async function setUp(fatal: string) {
    const project = await loadProject(await writeProject(files(fatal)), {
      maxJobs: 1,
      targets: ['whitelisted.bst', 'clash.bst'],
    });
    const tool = await treeFromEntries(context, cas, [{ path: 'usr/bin/tool', kind: 'file', data: 'x' }]);
    const artifacts = new Map<string, Artifact>([
      ['a.bst', { root: tool }],
      ['b.bst', { root: tool }],
      ['c.bst', { root: tool }],
    ]);
    const assembly = {
      cas,
      project,
      platform: [],
      artifactOf: (name: string) => artifacts.get(name) as Artifact,
      run: async () => assert.fail('no Action expected'),
    };
    return { project, assembly };
  }

  it('fails an element whose staging overlaps when the project makes overlaps fatal, naming the file', async () => {
    const { project, assembly } = await setUp('fatal-warnings:\n- overlaps\n');
    await assert.rejects(
      assemble2(assembly, project.elements.get('clash.bst')!, EMPTY_DIRECTORY_DIGEST),
      (error: unknown) =>
        error instanceof Assembly2Error &&
        /clash\.bst: \[overlaps\]: .*\n\/usr\/bin\/tool: c\.bst is not permitted/s.test(error.message),
    );
    await assemble2(assembly, project.elements.get('whitelisted.bst')!, EMPTY_DIRECTORY_DIGEST);
  });

  it('treats the deprecated fail-on-overlap: true as a fatal overlaps warning', async () => {
    const { project, assembly } = await setUp('fail-on-overlap: true\n');
    await assert.rejects(
      assemble2(assembly, project.elements.get('clash.bst')!, EMPTY_DIRECTORY_DIGEST),
      /\[overlaps\]/,
    );
  });

  it('builds the same staging when overlaps are only a warning, under another cache key', async () => {
    const strict = await setUp('fatal-warnings:\n- overlaps\n');
    const lenient = await setUp('');
    await assemble2(lenient.assembly, lenient.project.elements.get('clash.bst')!, EMPTY_DIRECTORY_DIGEST);
    const key = (project: typeof strict.project) =>
      cacheKey({ element: project.elements.get('clash.bst')!, sources: [], dependencies: [], platform: [] });
    assert.notEqual(key(strict.project), key(lenient.project));
  });
});
