/**
 * What a newcomer trying Granary by the README ran into (issue 12, item 7), run as
 * they ran it: the real `granary` command, on the built-in farm (no --remote, caches
 * in a scratch directory) or against a farm of the fixture.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { useFarm } from '../support/farm.js';
import { clientEnvironment, granary } from '../support/granaryClient.js';
import { startGranary } from '../support/granaryProcess.js';
import { GRANARY_BIN } from '../support/repository.js';
import { removeQuietly, scratchDirectory, writeFiles } from '../support/scratch.js';
import { makeSysroot, sysrootUnavailable } from '../support/sysroot.js';

/** A URI that must never be contacted (the .invalid domain never resolves). */
const URI = 'https://artifacts.invalid/notes.tar';

describe('publishing on the built-in farm', { timeout: 10 * 60_000 }, () => {
  let scratch: string;
  let project: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    scratch = scratchDirectory('newcomer-publish');
    env = clientEnvironment(scratch);
    project = join(scratch, 'project');
    writeFiles(project, {
      'project.conf': 'name: newcomer\nelement-path: elements\n',
      'elements/notes.bst': 'kind: import\nsources:\n- kind: local\n  path: files\n',
      'files/notes.txt': 'published on the built-in farm\n',
    });
    const build = await granary(['build', 'notes.bst'], project, env);
    assert.equal(build.status, 0, build.output);
  });

  after(() => {
    if (scratch) removeQuietly(scratch);
  });

  test('granary publish says the built-in farm stops with it and what to run for Bazel, not a dead port', async () => {
    const publish = await granary(['publish', 'notes.bst', '--uri', URI], project, env);
    assert.equal(publish.status, 0, publish.output);
    assert.match(publish.stdout, /built-in farm, which stopped when this command ended/);
    assert.match(publish.stdout, /granary serve/);
    assert.match(publish.stdout, /--experimental_remote_downloader=grpc:\/\/127\.0\.0\.1:8980/);
    const ports = [...publish.stdout.matchAll(/--experimental_remote_downloader=grpc:\/\/127\.0\.0\.1:(\d+)/g)];
    assert.deepEqual(
      ports.map((m) => m[1]),
      ['8980'],
      'only the port of a farm the user runs is named',
    );
  });

  test('a command while another uses the built-in farm says which, waits for it, then runs', async () => {
    const other = spawn('sleep', ['600'], { stdio: 'ignore' }); // stands for another granary command
    writeFileSync(join(scratch, 'cache', 'granary', 'local-farm', 'cas', 'lock'), `${other.pid}\n`);
    const show = spawn(process.execPath, [GRANARY_BIN, 'show', 'notes.bst'], { cwd: project, env });
    let output = '';
    const exited = new Promise<number | null>((resolve) => show.once('close', resolve));
    await new Promise<void>((resolve) => {
      show.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      show.stderr.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('waiting for it to finish')) resolve();
      });
      void exited.then(() => resolve());
    });
    other.kill('SIGKILL');
    assert.match(output, new RegExp(`another granary command \\(pid ${other.pid}\\) is using the built-in farm`));
    assert.equal(await exited, 0, output);
    assert.match(output, /notes\.bst/);
  });

  test('granary provenance, a later command, reads the record published there without asking the origin', async () => {
    const provenance = await granary(['provenance', URI], project, env);
    assert.equal(provenance.status, 0, provenance.output);
    const record = JSON.parse(provenance.stdout) as { subject: Array<{ uri?: string; name: string }> };
    assert.equal(record.subject[0]?.name, 'notes.tar');
    assert.doesNotMatch(provenance.output, /ENOTFOUND|getaddrinfo/);
  });

  test('a URI never published is reported as such, not as a download error', async () => {
    const never = 'https://artifacts.invalid/never-published.tar';
    const provenance = await granary(['provenance', never], project, env);
    assert.equal(provenance.status, 1, provenance.output);
    assert.match(
      provenance.stderr,
      /^granary provenance: no provenance record is published for https:\/\/artifacts\.invalid\/never-published\.tar on the built-in farm/m,
    );
    assert.doesNotMatch(provenance.output, /ENOTFOUND|getaddrinfo|UNAVAILABLE/);
  });
});

describe('starting a farm next to one already running', { timeout: 5 * 60_000 }, () => {
  const farm = useFarm({ name: 'newcomer-ports', embeddedWorkers: 0, workers: [{ name: 'single' }] });
  const env = () => clientEnvironment(farm.scratch);
  const secondServe = (listen: string, data: string) =>
    granary(
      ['serve', '--listen', listen, '--data', data, '--workers', '0', '--http-listen', 'none'],
      farm.scratch,
      env(),
    );

  test('a second granary serve on the same port names the port and --listen, without grpc-js wording', async () => {
    const port = farm.address.slice(farm.address.lastIndexOf(':') + 1);
    // Data of its own: on the same data it would be refused for that first.
    const second = await secondServe(farm.address, farm.path('second'));
    assert.equal(second.status, 1, second.output);
    assert.match(
      second.stderr,
      new RegExp(
        `^granary serve: cannot listen on ${farm.address}: port ${port} is already in use .*--listen HOST:PORT`,
        'm',
      ),
    );
    assert.doesNotMatch(second.output, /No address added|resolved|EADDRINUSE/);
  });

  test('a second granary serve on the same --data is refused, naming the process that uses it', async () => {
    const second = await secondServe('127.0.0.1:0', farm.path('data'));
    assert.equal(second.status, 1, second.output);
    assert.match(
      second.stderr,
      new RegExp(
        `^granary serve: --data ${farm.path('data')} is in use by another granary process \\(pid ${farm.server.process.pid}\\); .*another --data`,
        'm',
      ),
    );
  });

  test('a second granary storage on the same --data is refused, naming the node that uses it', async () => {
    const data = farm.path('storage');
    const node = farm.attach(await startGranary(['storage', '--listen', '127.0.0.1:0', '--data', data]));
    const second = await granary(['storage', '--listen', '127.0.0.1:0', '--data', data], farm.scratch, env());
    assert.equal(second.status, 1, second.output);
    assert.match(
      second.stderr,
      new RegExp(
        `^granary storage: --data ${data} is in use by another granary process \\(pid ${node.process.pid}\\)`,
        'm',
      ),
    );
  });

  test('--data naming a file says it is a file, not a directory', async () => {
    writeFiles(farm.scratch, { 'a-file': 'not a directory\n' });
    const run = await granary(['serve', '--listen', '127.0.0.1:0', '--data', 'a-file'], farm.scratch, env());
    assert.equal(run.status, 2, run.output);
    assert.match(
      run.stderr,
      new RegExp(`^granary serve: --data ${farm.path('a-file')} is a file, not a directory`, 'm'),
    );
    assert.doesNotMatch(run.output, /EEXIST/);
  });

  test('a worker with one slot says "1 slot"', () => {
    assert.match(farm.workers[0]?.output() ?? '', /connected as \S+ \(1 slot\)$/m);
  });
});

/** A loopback port nothing listens on (taken from the system, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('a worker that cannot reach its server', { timeout: 5 * 60_000 }, () => {
  const farm = useFarm({ name: 'newcomer-worker', embeddedWorkers: 0 });

  test('says so plainly and retries later and later', async () => {
    const server = `grpc://127.0.0.1:${await closedPort()}`;
    const worker = await startGranary(
      ['worker', '--server', server, '--slots', '1', '--work-dir', farm.path('worker'), '--sandbox', 'none'],
      60_000,
      /cannot reach server at (\S+): connection refused; retrying in/,
    );
    farm.attach(worker);
    const pattern = /^granary worker: cannot reach server at (\S+): connection refused; retrying in ([\d.]+) s$/gm;
    const waits = () => [...worker.output().matchAll(pattern)];
    const deadline = Date.now() + 60_000;
    while (waits().length < 4 && Date.now() < deadline && worker.process.exitCode === null) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const seen = waits();
    assert.ok(seen.length >= 4, worker.output());
    assert.ok(
      seen.every((line) => line[1] === server),
      worker.output(),
    );
    // Each wait doubles (jitter spreads it by at most a fifth), so each is longer than the one before.
    const seconds = seen.slice(0, 4).map((line) => Number(line[2]));
    for (let i = 1; i < seconds.length; i++)
      assert.ok((seconds[i] as number) > (seconds[i - 1] as number), `${seconds}`);
    assert.doesNotMatch(worker.output(), /ECONNREFUSED|No connection established|Resolution note/);
  });
});

describe('a farm whose workers have no sandbox', { timeout: 5 * 60_000 }, () => {
  const farm = useFarm({
    name: 'newcomer-sandbox',
    embeddedWorkers: 0,
    workers: [{ name: 'unsandboxed', flags: ['--sandbox', 'none'] }],
  });

  test('refuses an element build, which needs the hermetic sandbox, saying to install bubblewrap', async () => {
    const project = farm.path('project');
    writeFiles(project, {
      'project.conf': 'name: newcomer\nelement-path: elements\n',
      'elements/app.bst': 'kind: manual\nconfig:\n  install-commands:\n  - echo never run\n',
    });
    const build = await granary(['build', 'app.bst', '--remote', farm.url], project, clientEnvironment(farm.scratch));
    assert.equal(build.status, 1, build.output);
    assert.match(
      build.output,
      /no worker can run an action with platform properties .*sandbox=hermetic.*install bubblewrap on the worker \(Debian package bubblewrap/,
    );
  });
});

describe('granary log', { skip: sysrootUnavailable(), timeout: 30 * 60_000 }, () => {
  let scratch: string;
  let project: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    scratch = scratchDirectory('newcomer-log');
    env = clientEnvironment(scratch);
    const sysroot = makeSysroot();
    project = join(scratch, 'project');
    writeFiles(project, {
      'project.conf': `name: newcomer\nelement-path: elements\naliases:\n  sysroot: file://${sysroot.path.replace(/[^/]*$/, '')}\n`,
      'elements/base.bst': `kind: import\nsources:\n- kind: tar\n  url: sysroot:sysroot.tar\n  ref: ${sysroot.sha256}\n  base-dir: ''\n`,
      'elements/chatty.bst': [
        'kind: manual',
        'build-depends:',
        '- base.bst',
        'config:',
        '  install-commands:',
        '  - |',
        '    echo one on stdout',
        '    echo two on stderr >&2',
        '    echo three on stdout',
        '    mkdir -p "%{install-root}/usr/share" && echo done > "%{install-root}/usr/share/chatty"',
        '',
      ].join('\n'),
      'elements/stack.bst': 'kind: stack\ndepends:\n- chatty.bst\n',
    });
    const build = await granary(['build', 'stack.bst'], project, env);
    assert.equal(build.status, 0, build.output);
  });

  after(() => {
    if (scratch) removeQuietly(scratch);
  });

  test('shows the whole command of several lines, then its output and errors in the order they came', async () => {
    const log = await granary(['log', 'chatty.bst'], project, env);
    assert.equal(log.status, 0, log.output);
    assert.match(
      log.stdout,
      /^== install-commands 1\/1\n\$ echo one on stdout\n> echo two on stderr >&2\n> echo three on stdout\n> mkdir -p .*\none on stdout\ntwo on stderr\nthree on stdout\n/m,
    );
    assert.doesNotMatch(log.stdout, /\u2063/, 'no raw marker characters');
  });

  test('of a stack says it ran nothing and shows the logs of what it depends on', async () => {
    const log = await granary(['log', 'stack.bst'], project, env);
    assert.equal(log.status, 0, log.output);
    assert.match(
      log.stdout,
      /^granary: stack\.bst \(kind stack\) ran no commands; the logs of the elements it depends on follow$/m,
    );
    assert.match(log.stdout, /^=== chatty\.bst ===\n== install-commands 1\/1\n/m);
    assert.doesNotMatch(log.stdout, /=== base\.bst ===/, 'an import ran nothing and has no section');
  });
});
