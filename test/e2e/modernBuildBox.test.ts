/**
 * BuildBox 1.4.30 (Debian sid, run inside the sid root made by
 * test/e2e/sidroot/make-sidroot.sh) against `granary serve --workers 0` on the host:
 * buildbox-worker is the farm's only worker (Remote Workers API bot, running each
 * action with buildbox-run-bubblewrap in the sid root, whose /usr is bound into
 * the sandbox), and trexe, casupload/casdownload, recc, siso and Bazel 7.7.1 are its
 * clients. The worker offers `pool=debian-sid` and the clients ask for it, so
 * compile actions run with the same toolchain as the client's and get their own
 * cache keys. Skipped locally when the root cannot be made; in CI a missing root
 * is a failure.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { execPropertyFlags, processSummary, remoteExecutionFlags } from '../support/bazel.js';
import { bazelWorkspace } from '../support/bazelWorkspace.js';
import { useFarm } from '../support/farm.js';
import { bazel7, inSidroot, inSidrootAsync, prepareSidroot, spawnInSidroot } from '../support/sidroot.js';

const sid = prepareSidroot();
const POOL = 'debian-sid';
const BOT_ID = 'sid-buildbox-bot';

describe('BuildBox (Debian sid) as Granary worker and clients', { skip: sid.skip, timeout: 20 * 60_000 }, () => {
  before(() => assert.equal(sid.error, '', sid.error));
  const farm = useFarm({ name: 'modern-buildbox', embeddedWorkers: 0, serveFlags: ['--max-size', '2GiB'] });
  let scratch: string;
  let worker: ReturnType<typeof spawnInSidroot> | undefined;
  let remote: string;

  before(async () => {
    scratch = farm.scratch;
    remote = farm.httpUrl;
    worker = spawnInSidroot(
      sid.root,
      [
        'buildbox-worker',
        `--bots-remote=${remote}`,
        `--cas-remote=${remote}`,
        '--buildbox-run=/usr/bin/buildbox-run-bubblewrap',
        // Granary's CAS is a plain REAPI CAS, not buildbox-casd's LocalCAS.
        '--runner-arg=--disable-localcas',
        // The input root becomes / in the sandbox: give actions the root's toolchain.
        '--runner-arg=--ro-bind-mount=/usr:/usr',
        '--runner-arg=--ro-bind-mount=/usr/bin:/bin',
        '--runner-arg=--ro-bind-mount=/usr/lib:/lib',
        '--runner-arg=--ro-bind-mount=/usr/lib64:/lib64',
        '--runner-arg=--ro-bind-mount=/etc:/etc',
        '--platform',
        'OSFamily=linux',
        '--platform',
        'ISA=x86-64',
        '--platform',
        `pool=${POOL}`,
        '--verbose',
        BOT_ID,
      ],
      { binds: [scratch] },
    );
    farm.attach(worker);
    const deadline = Date.now() + 30_000;
    while (!/Bot Session created/.test(worker.output())) {
      if (worker.process.exitCode !== null || Date.now() > deadline) {
        throw new Error(`buildbox-worker did not create its bot session:\n${worker.output()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  const platform = `--platform-properties=OSFamily=linux,ISA=x86-64,pool=${POOL}`;
  const diagnostics = (run: { output: string }) =>
    `${run.output}\n--- worker (last lines) ---\n${worker?.output().split('\n').slice(-40).join('\n')}`;

  test('trexe runs commands on buildbox-worker through the Bots service', async () => {
    const hello = await inSidrootAsync(sid.root, ['trexe', `--remote=${remote}`, platform, '--', '/bin/echo', 'hello']);
    assert.equal(hello.status, 0, diagnostics(hello));
    assert.equal(hello.stdout, 'hello\n');

    const failing = await inSidrootAsync(sid.root, [
      'trexe',
      `--remote=${remote}`,
      platform,
      '--',
      '/bin/sh',
      '-c',
      'echo out; echo err >&2; exit 3',
    ]);
    assert.equal(failing.status, 3, diagnostics(failing));
    assert.equal(failing.stdout, 'out\n');
    assert.match(failing.stderr, /^err$/m);

    const work = join(scratch, 'trexe');
    mkdirSync(work);
    const outputs = await inSidrootAsync(
      sid.root,
      [
        'trexe',
        `--remote=${remote}`,
        platform,
        '--output-path=gen/out.txt',
        `--d=${join(work, 'download')}`,
        '--',
        '/bin/sh',
        '-c',
        'mkdir -p gen && cat /etc/debian_version > gen/out.txt',
      ],
      { binds: [scratch], cwd: work },
    );
    assert.equal(outputs.status, 0, diagnostics(outputs));
    const expected = readFileSync(join(sid.root, 'etc', 'debian_version'), 'utf8');
    assert.equal(readFileSync(join(work, 'download', 'gen', 'out.txt'), 'utf8'), expected);
  });

  test('casupload then casdownload round-trips a directory', async () => {
    const tree = join(scratch, 'tree');
    mkdirSync(join(tree, 'sub', 'deeper'), { recursive: true });
    mkdirSync(join(tree, 'empty-dir'));
    writeFileSync(join(tree, 'a.txt'), 'alpha\n');
    writeFileSync(join(tree, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    writeFileSync(join(tree, 'sub', 'empty'), '');
    // Larger than a batch: goes through ByteStream both ways.
    const big = Buffer.alloc(6 * 1024 * 1024 + 3);
    for (let i = 0; i < big.length; i += 1) big[i] = (i * 7919) % 251;
    writeFileSync(join(tree, 'sub', 'big.bin'), big);
    writeFileSync(join(tree, 'sub', 'deeper', 'x'), 'x\n');
    symlinkSync('../a.txt', join(tree, 'sub', 'link'));

    const rootFile = join(scratch, 'root.digest');
    const treeFile = join(scratch, 'tree.digest');
    const upload = inSidroot(
      sid.root,
      [
        'casupload',
        `--remote=${remote}`,
        '--directory-format=both',
        `--output-digest-file=${rootFile}`,
        `--output-tree-digest-file=${treeFile}`,
        tree,
      ],
      { binds: [scratch] },
    );
    assert.equal(upload.status, 0, upload.output);
    const rootDigest = readFileSync(rootFile, 'utf8').trim();
    const treeDigest = readFileSync(treeFile, 'utf8').trim();
    assert.match(rootDigest, /^[0-9a-f]{64}\/\d+$/);

    for (const [flag, digest, into] of [
      ['--root-digest', rootDigest, 'by-root'],
      ['--tree-digest', treeDigest, 'by-tree'],
    ] as const) {
      const destination = join(scratch, into);
      const download = inSidroot(
        sid.root,
        ['casdownload', `--remote=${remote}`, `--destination-dir=${destination}`, `${flag}=${digest}`],
        { binds: [scratch] },
      );
      assert.equal(download.status, 0, download.output);
      const diff = inSidroot(sid.root, ['diff', '-r', '--no-dereference', tree, destination], { binds: [scratch] });
      assert.equal(diff.status, 0, `${flag}: ${diff.output}`);
      const mode = inSidroot(sid.root, ['stat', '-c', '%A', join(destination, 'run.sh')], { binds: [scratch] });
      assert.match(mode.stdout, /^-..x/, 'the executable bit survives');
    }
  });

  test('recc compiles a C file on the worker, then hits the action cache', async () => {
    const project = join(scratch, 'recc');
    mkdirSync(project);
    writeFileSync(
      join(project, 'hello.c'),
      '#include <stdio.h>\n#include "hello.h"\nint main(void) { printf("%s\\n", GREETING); return 0; }\n',
    );
    writeFileSync(join(project, 'hello.h'), '#define GREETING "Hello from recc"\n');
    const env = {
      RECC_SERVER: remote,
      RECC_LOG_LEVEL: 'debug',
      RECC_REMOTE_PLATFORM_OSFamily: 'linux',
      RECC_REMOTE_PLATFORM_ISA: 'x86-64',
      RECC_REMOTE_PLATFORM_pool: POOL,
    };
    const compile = () =>
      inSidrootAsync(sid.root, ['recc', 'gcc', '-c', 'hello.c', '-o', 'hello.o'], {
        binds: [scratch],
        cwd: project,
        env,
      });
    const first = await compile();
    assert.equal(first.status, 0, diagnostics(first));
    assert.match(first.output, /Executing action remotely/);
    assert.match(first.output, /Remote execution finished with exit code 0/);

    const link = inSidroot(sid.root, ['sh', '-c', 'gcc hello.o -o hello && ./hello'], {
      binds: [scratch],
      cwd: project,
    });
    assert.equal(link.status, 0, link.output);
    assert.equal(link.stdout, 'Hello from recc\n');

    rmSync(join(project, 'hello.o'));
    const second = await compile();
    assert.equal(second.status, 0, diagnostics(second));
    assert.match(second.output, /Action Cache hit/);
    const again = inSidroot(sid.root, ['sh', '-c', 'gcc hello.o -o hello && ./hello'], {
      binds: [scratch],
      cwd: project,
    });
    assert.equal(again.stdout, 'Hello from recc\n');
  });

  test('siso runs ninja steps remotely on the BuildBox worker, then from the action cache', async () => {
    const project = join(scratch, 'siso');
    mkdirSync(join(project, 'build', 'config', 'siso'), { recursive: true });
    mkdirSync(join(project, 'out'));
    writeFileSync(
      join(project, 'build', 'config', 'siso', 'main.star'),
      [
        'load("@builtin//encoding.star", "json")',
        'load("@builtin//struct.star", "module")',
        '',
        'def init(ctx):',
        '    return module(',
        '        "config",',
        '        step_config = json.encode({',
        `            "platforms": {"default": {"OSFamily": "linux", "ISA": "x86-64", "pool": "${POOL}"}},`,
        '            "rules": [',
        '                {"name": "cc", "action": "cc", "remote": True},',
        '                {"name": "gen", "action": "gen", "remote": True},',
        '            ],',
        '        }),',
        '        filegroups = {},',
        '        handlers = {},',
        '    )',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(project, 'hello.c'),
      '#include <stdio.h>\n#include "msg.h"\nint main(void) { puts(MSG); return 0; }\n',
    );
    writeFileSync(join(project, 'msg.h'), '#define MSG "hello from siso"\n');
    // siso sends no PATH: gcc must be named by its absolute path to find cc1.
    writeFileSync(
      join(project, 'out', 'build.ninja'),
      [
        'rule cc',
        '  command = /usr/bin/gcc -c ../hello.c -o hello.o',
        'rule gen',
        "  command = sh -c 'echo generated > gen.txt'",
        'rule link',
        '  command = gcc hello.o -o hello',
        'build hello.o: cc ../hello.c | ../msg.h',
        'build gen.txt: gen',
        'build hello: link hello.o',
        'default hello gen.txt',
        '',
      ].join('\n'),
    );
    const siso = () =>
      inSidrootAsync(
        sid.root,
        [
          'siso',
          'ninja',
          '-C',
          'out',
          `-reapi_address=${farm.address}`,
          '-reapi_insecure',
          '-reapi_instance=default',
          '-strict_remote',
          `-cache_dir=${join(scratch, 'siso-cache')}`,
        ],
        { binds: [scratch], cwd: project, env: { HOME: scratch } },
      );
    const counts = (output: string) => {
      const match = /local:(\d+) remote:(\d+) cache:(\d+)/.exec(output);
      return match ? { local: Number(match[1]), remote: Number(match[2]), cache: Number(match[3]) } : undefined;
    };
    const first = await siso();
    assert.equal(first.status, 0, diagnostics(first));
    assert.deepEqual(counts(first.output), { local: 1, remote: 2, cache: 0 }, first.output);
    const run = inSidroot(sid.root, ['sh', '-c', './out/hello && cat out/gen.txt'], { binds: [scratch], cwd: project });
    assert.equal(run.stdout, 'hello from siso\ngenerated\n', run.output);

    for (const name of ['hello', 'hello.o', 'gen.txt', '.siso_fs_state'])
      rmSync(join(project, 'out', name), { force: true });
    const second = await siso();
    assert.equal(second.status, 0, diagnostics(second));
    assert.deepEqual(counts(second.output), { local: 1, remote: 0, cache: 2 }, second.output);
  });

  test('Bazel 7.7.1 builds remotely on the BuildBox worker (same root, same toolchain)', async () => {
    const workspace = bazelWorkspace(7, scratch);
    const outputRoot = join(scratch, 'bazel-out');
    const flags = [
      ...remoteExecutionFlags(farm.url),
      ...execPropertyFlags('OSFamily=linux', 'ISA=x86-64', `pool=${POOL}`),
    ];
    const first = await bazel7(sid.root, scratch, workspace, outputRoot, 'test', [...flags, '//...']);
    assert.equal(first.status, 0, diagnostics(first));
    const summary = processSummary(first.output);
    assert.ok((summary.remote ?? 0) >= 8, `actions should run remotely: ${first.output}`);
    assert.match(first.output, /\/\/:greet_test\s+PASSED/);

    assert.equal((await bazel7(sid.root, scratch, workspace, outputRoot, 'clean', ['--expunge'])).status, 0);
    const second = await bazel7(sid.root, scratch, workspace, outputRoot, 'test', [...flags, '//...']);
    assert.equal(second.status, 0, diagnostics(second));
    const hits = processSummary(second.output);
    assert.ok((hits['remote cache hit'] ?? 0) >= 8, second.output);
    assert.equal(hits.remote ?? 0, 0, second.output);
  });
});
