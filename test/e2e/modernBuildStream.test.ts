/**
 * BuildStream 2.8.1 (Debian sid, run inside the sid root made by
 * test/e2e/sidroot/make-sidroot.sh) against `granary serve` on the host, whose
 * embedded worker (bubblewrap sandbox) is the farm's only worker: examples/hello-bst2
 * (an import of the Debian bookworm sysroot of test/e2e/sysroot/make-sysroot.sh, a
 * make element and a manual element compiling a C program with that sysroot's gcc),
 * with only what this test needs added to the copy (see helloProjectForRemote), is
 * built with `remote-execution:` pointing its execution, storage and action-cache
 * services at Granary, which is also its artifact and source cache (Remote Asset).
 * Every element build must run on Granary's worker, in the hermetic sandbox (the input
 * root is '/'), and the artifacts must come back from Granary into an empty local cache.
 *
 * Skipped locally when the sid root, the sysroot or bubblewrap is unavailable; in
 * CI those are failures.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { type Document, parseDocument } from 'yaml';
import { helloBst2Project, packTarball, sourceMirror } from '../support/buildStreamProjects.js';
import { useFarm } from '../support/farm.js';
import { inSidrootAsync, prepareSidroot, type SidrootRun } from '../support/sidroot.js';
import { makeSysroot, sysrootUnavailable } from '../support/sysroot.js';

const sid = prepareSidroot();
const bwrapMissing =
  spawnSync('bwrap', ['--ro-bind', '/', '/', 'true']).status === 0 || process.env.CI
    ? false
    : 'bubblewrap cannot run here';
const skip = sid.skip || sysrootUnavailable() || bwrapMissing;

/** What examples/hello-bst2's program prints: its greeting, then libgreet's message. */
const GREETING = 'Hello from BuildStream 2 on Granary, greetings from libgreet';
/** The tarball of examples/hello-bst2's files/hello that hello.bst fetches here, from the mirror. */
const HELLO_TARBALL = 'hello.tar.gz';
/** The elements that run commands (base.bst is an import: BuildStream stages it without a sandbox). */
const BUILD_ELEMENTS = ['libgreet', 'hello'];

describe('BuildStream 2.8.1 builds on Granary (remote execution, artifact and source caches)', {
  skip,
  timeout: 20 * 60_000,
}, () => {
  const farm = useFarm({
    name: 'modern-buildstream',
    embeddedWorkers: 2,
    serveFlags: ['--max-size', '4GiB', '--sandbox', 'bubblewrap'],
  });
  let scratch: string;
  let mirror: string;
  let project: string;
  let remote: string;

  before(() => {
    assert.equal(sid.error, '', sid.error);
    scratch = farm.scratch;
    remote = farm.httpUrl;
    const sysroot = makeSysroot();
    mirror = sourceMirror(join(scratch, 'mirror'), sysroot);
    project = helloProjectForRemote(helloBst2Project(join(scratch, 'project'), mirror, sysroot), mirror);
  });

  /** A user configuration with its own (initially empty) local cache. */
  const userConfig = (name: string, sections: { execution?: boolean; artifacts?: boolean; sources?: boolean }) => {
    const lines = [
      `cachedir: ${join(scratch, name, 'cache')}`,
      `logdir: ${join(scratch, name, 'logs')}`,
      'scheduler:',
      '  on-error: quit',
    ];
    if (sections.execution) {
      lines.push('remote-execution:');
      for (const service of ['execution-service', 'storage-service', 'action-cache-service']) {
        lines.push(`  ${service}:`, `    url: ${remote}`);
      }
    }
    if (sections.artifacts) lines.push('artifacts:', '  servers:', `  - url: ${remote}`, '    push: true');
    if (sections.sources) lines.push('source-caches:', '  servers:', `  - url: ${remote}`, '    push: true');
    mkdirSync(join(scratch, name), { recursive: true });
    const path = join(scratch, name, 'buildstream.conf');
    writeFileSync(path, `${lines.join('\n')}\n`);
    return path;
  };

  const bst = (config: string, args: string[]): Promise<SidrootRun> =>
    inSidrootAsync(sid.root, ['bst', '--no-colors', '--config', config, ...args], {
      binds: [scratch],
      cwd: project,
      env: { HOME: scratch },
      timeoutMs: 15 * 60_000,
    });

  const executed = () =>
    [...farm.server.output().matchAll(/granary worker: executing ([0-9a-f]{64})\/\d+/g)].map((m) => m[1]);

  const diagnostics = (run: SidrootRun) =>
    `${run.output.split('\n').slice(-80).join('\n')}\n--- granary (last lines) ---\n${farm.server
      .output()
      .split('\n')
      .slice(-40)
      .join('\n')}`;

  const queue = (run: SidrootRun, name: string) => {
    const match = new RegExp(`${name} Queue:\\s+processed (\\d+), skipped (\\d+), failed (\\d+)`).exec(run.output);
    assert.ok(match, `no ${name} Queue summary:\n${run.output}`);
    return { processed: Number(match[1]), skipped: Number(match[2]), failed: Number(match[3]) };
  };

  const checkout = async (config: string, into: string) => {
    const run = await bst(config, ['artifact', 'checkout', 'hello.bst', '--directory', into]);
    assert.equal(run.status, 0, diagnostics(run));
    const program = spawnSync(join(into, 'usr', 'bin', 'hello'), { encoding: 'utf8' });
    assert.equal(program.status, 0, program.stderr);
    assert.equal(program.stdout, `${GREETING}\n`);
  };

  let buildConfig: string;

  test('bst build runs every element on the Granary worker and pushes artifacts and sources', async () => {
    buildConfig = userConfig('first', { execution: true, artifacts: true, sources: true });
    const started = Date.now();
    const run = await bst(buildConfig, ['build', 'hello.bst']);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(run.status, 0, diagnostics(run));
    process.stderr.write(`bst build with remote execution on an empty Granary: ${seconds.toFixed(1)} s\n`);

    // One Execute per build element, each run by Granary's worker (no local sandbox:
    // with remote-execution configured, bst sends every command list to the farm).
    const actions = executed();
    assert.equal(actions.length, BUILD_ELEMENTS.length, diagnostics(run));
    assert.equal(new Set(actions).size, actions.length);
    assert.deepEqual(queue(run, 'Build'), { processed: 3, skipped: 0, failed: 0 });
    for (const element of BUILD_ELEMENTS) {
      const log = elementLog(join(scratch, 'first', 'logs'), element, 'build');
      assert.match(log, /Waiting for the remote build to complete/, `${element}:\n${log}`);
    }
    assert.match(run.output, /Pushed artifact [0-9a-f]+ -> http/);
    assert.match(run.output, /Pushed source [0-9a-f]+ -> http/);
    assert.equal(queue(run, 'Push').failed, 0);
    assert.equal(queue(run, 'Src-push').failed, 0);
  });

  test('bst artifact checkout gives the built files, and the program runs on the host', async () => {
    const into = join(scratch, 'checkout-first');
    await checkout(buildConfig, into);
    assert.deepEqual(listTree(into), [
      'usr/',
      'usr/bin/',
      'usr/bin/hello',
      'usr/bin/hello-again -> hello',
      'usr/share/',
      'usr/share/hello/',
      'usr/share/hello/sandbox-root',
    ]);
    // Chroot semantics: the build saw its input root (the staged sysroot, the build
    // and install roots) as '/', not the worker's file system.
    const root = readFileSync(join(into, 'usr', 'share', 'hello', 'sandbox-root'), 'utf8').split('\n');
    for (const entry of ['buildstream', 'buildstream-install', 'usr', 'etc'])
      assert.ok(root.includes(entry), `${root}`);
    const link = spawnSync(join(into, 'usr', 'bin', 'hello-again'), { encoding: 'utf8' });
    assert.equal(link.stdout, `${GREETING}\n`);

    const contents = await bst(buildConfig, ['artifact', 'list-contents', 'libgreet.bst']);
    assert.equal(contents.status, 0, diagnostics(contents));
    for (const path of ['usr/include/greet.h', 'usr/lib/libgreet.a', 'usr/share/libgreet/build-uid']) {
      assert.match(contents.stdout, new RegExp(`^\\s*${path}$`, 'm'), contents.output);
    }
  });

  test('with an empty local cache, bst pulls the artifact from Granary instead of building', async () => {
    const config = userConfig('second', { execution: true, artifacts: true, sources: true });
    const before = executed().length;
    const run = await bst(config, ['build', 'hello.bst']);
    assert.equal(run.status, 0, diagnostics(run));
    assert.match(run.output, /Pulled artifact [0-9a-f]+ <- http/);
    assert.deepEqual(queue(run, 'Build'), { processed: 0, skipped: 1, failed: 0 });
    assert.equal(executed().length, before, 'nothing ran again');
    await checkout(config, join(scratch, 'checkout-second'));

    const pull = await bst(userConfig('third', { artifacts: true }), [
      'artifact',
      'pull',
      '--deps',
      'all',
      'hello.bst',
    ]);
    assert.equal(pull.status, 0, diagnostics(pull));
    assert.equal(queue(pull, 'Pull').processed, 3, pull.output);
    assert.equal(queue(pull, 'Pull').failed, 0, pull.output);
  });

  test("with remote execution alone, an empty local cache gets every build from Granary's action cache", async () => {
    const config = userConfig('action-cache', { execution: true });
    const before = executed().length;
    const run = await bst(config, ['build', 'hello.bst']);
    assert.equal(run.status, 0, diagnostics(run));
    for (const element of BUILD_ELEMENTS) {
      const log = elementLog(join(scratch, 'action-cache', 'logs'), element, 'build');
      assert.match(log, /Action result found in action cache/, `${element}:\n${log}`);
    }
    assert.equal(executed().length, before, 'nothing ran again');
    await checkout(config, join(scratch, 'checkout-action-cache'));
  });

  test("sources come back from Granary's source cache when their origin is gone", async () => {
    const config = userConfig('sources', { sources: true });
    const tarball = join(mirror, HELLO_TARBALL);
    const hidden = join(mirror, `${HELLO_TARBALL}.hidden`);
    renameSync(tarball, hidden);
    try {
      const run = await bst(config, ['source', 'fetch', 'hello.bst']);
      assert.equal(run.status, 0, diagnostics(run));
      assert.match(run.output, /Pulled source [0-9a-f]+ <- http/);
    } finally {
      renameSync(hidden, tarball);
    }
  });
});

/**
 * Rewrites a YAML file of the project through `edit`, keeping how the rest is written
 * (`min-version: 2.0` must stay 2.0, not become 2).
 */
function editYaml(path: string, edit: (document: Document) => void): void {
  const document = parseDocument(readFileSync(path, 'utf8'));
  edit(document);
  writeFileSync(path, document.toString());
}

/**
 * Adds to a copy of examples/hello-bst2 what this test needs, and nothing else:
 * - hello.bst's source becomes a tarball of its files behind a `mirror:` alias (so that
 *   the source cache has a remote source to keep, and the test can take the origin away),
 *   and its install records what the build saw as '/' (usr/share/hello/sandbox-root);
 * - libgreet.bst's sandbox sets build-uid and build-gid (so its Action carries the
 *   unixUID and unixGID platform properties), and its install records `id -u`.
 */
function helloProjectForRemote(project: string, mirror: string): string {
  const helloSha256 = packTarball(join(project, 'files'), 'hello', join(mirror, HELLO_TARBALL));
  editYaml(join(project, 'project.conf'), (conf) => {
    conf.setIn(['aliases', 'mirror'], `file:///${mirror.replace(/^\/+/, '')}/`);
  });
  editYaml(join(project, 'elements', 'hello.bst'), (element) => {
    element.set('sources', [{ kind: 'tar', url: `mirror:${HELLO_TARBALL}`, ref: helloSha256 }]);
    element.addIn(['config', 'install-commands'], 'mkdir -p "%{install-root}%{datadir}/hello"');
    element.addIn(['config', 'install-commands'], 'ls / > "%{install-root}%{datadir}/hello/sandbox-root"');
  });
  editYaml(join(project, 'elements', 'libgreet.bst'), (element) => {
    element.set('sandbox', { 'build-uid': 0, 'build-gid': 0 });
    element.set('config', {
      'install-commands': {
        '(>)': [
          'mkdir -p "%{install-root}%{datadir}/libgreet"',
          'id -u > "%{install-root}%{datadir}/libgreet/build-uid"',
        ],
      },
    });
  });
  return project;
}

/** The newest log of one kind (build, pull, ...) of an element of the project. */
function elementLog(logdir: string, element: string, kind: string): string {
  const directory = join(logdir, 'hello-bst2', element);
  const logs = readdirSync(directory)
    .filter((name) => name.includes(`-${kind}.`))
    .sort();
  const newest = logs.at(-1);
  assert.ok(newest, `no ${kind} log for ${element} in ${directory}`);
  return readFileSync(join(directory, newest), 'utf8');
}

/** Every path below `root`, sorted; directories end with '/', symlinks show their target. */
function listTree(root: string, prefix = ''): string[] {
  const paths: string[] = [];
  for (const name of readdirSync(join(root, prefix)).sort()) {
    const path = prefix ? `${prefix}/${name}` : name;
    const stats = lstatSync(join(root, path));
    if (stats.isDirectory()) paths.push(`${path}/`, ...listTree(root, path));
    else if (stats.isSymbolicLink()) paths.push(`${path} -> ${readlinkSync(join(root, path))}`);
    else paths.push(path);
  }
  return paths.sort();
}
