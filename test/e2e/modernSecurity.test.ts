/**
 * A farm with TLS, client certificates required (--tls-client-ca), an access
 * file and --anonymous none, with real TLS clients from the Debian sid root (made
 * by test/e2e/sidroot/make-sidroot.sh): BuildBox's buildbox-worker and trexe
 * (--server-cert, --client-cert/--client-key, --access-token), BuildStream 2.8.1
 * (the `auth:` settings of a cache server) and Granary's own push-dir (--tls-ca,
 * --tls-cert, --tls-key, --token-file). Debian's Bazel builds (4.2.3 and 7.7.1)
 * cannot use TLS at all (their netty finds no ALPN in the JDK), so Bazel's part
 * is in bazelSecurity.test.ts, with tokens on loopback.
 *
 * What must hold: a listed certificate subject is a caller by itself; an unlisted
 * certificate is nobody until it brings a token; a caller without credentials is
 * refused; a read-only caller reads but neither executes nor pushes.
 *
 * Skipped locally when the root cannot be made; in CI a missing root is a failure.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type GranaryProcess, startGranary } from '../support/granaryProcess.js';
import { GRANARY_BIN } from '../support/repository.js';
import { removeQuietly, scratchDirectory } from '../support/scratch.js';
import { inSidrootAsync, prepareSidroot, spawnInSidroot } from '../support/sidroot.js';
import { type IssuedCertificate, makeTestAuthority, type TestAuthority } from '../support/tls.js';

const sid = prepareSidroot();

/** Starting a server on a machine shared by several test runs can take a while. */
const START_TIMEOUT_MS = 120_000;

const TOKENS = {
  ci: 'ci-token-7c1e4a9b2d6f0358',
  reader: 'reader-token-1f8d3b6a0e94',
  worker: 'worker-token-5a2c9e7f1b03',
};

describe('BuildBox and BuildStream 2.8.1 against a farm with TLS, mTLS and tokens', {
  skip: sid.skip,
  timeout: 25 * 60_000,
}, () => {
  let scratch: string;
  let authority: TestAuthority;
  let bstClient: IssuedCertificate;
  let stranger: IssuedCertificate;
  let farm: GranaryProcess;
  let worker: ReturnType<typeof spawnInSidroot> | undefined;
  let https: string;
  const tokenFile = (name: keyof typeof TOKENS) => join(scratch, 'tokens', name);

  before(async () => {
    assert.equal(sid.error, '', sid.error);
    scratch = scratchDirectory('modern-security');
    const pki = join(scratch, 'pki');
    mkdirSync(pki);
    mkdirSync(join(scratch, 'tokens'));
    authority = makeTestAuthority(pki);
    const server = authority.issue('server', '/CN=localhost', 'server');
    bstClient = authority.issue('bst-client', '/CN=bst-client', 'client');
    stranger = authority.issue('stranger', '/CN=stranger', 'client');
    for (const [name, token] of Object.entries(TOKENS)) writeFileSync(tokenFile(name as keyof typeof TOKENS), token);
    const accessFile = join(scratch, 'access.yaml');
    writeFileSync(
      accessFile,
      [
        '- name: ci',
        `  token: ${TOKENS.ci}`,
        '  scopes: [read, cas-write, ac-write, asset-write, execute]',
        '  instances: ["*"]',
        '- name: reader',
        `  token: ${TOKENS.reader}`,
        '  scopes: [read]',
        '  instances: ["*"]',
        '- name: worker',
        `  token: ${TOKENS.worker}`,
        '  scopes: [read, cas-write, bots]',
        '  instances: ["*"]',
        '- name: buildstream',
        '  client-certificate: CN=bst-client',
        '  scopes: [read, cas-write, asset-write]',
        '  instances: ["*"]',
      ].join('\n'),
    );
    chmodSync(accessFile, 0o600);
    farm = await startGranary(
      [
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--data',
        join(scratch, 'data'),
        '--max-size',
        '2GiB',
        '--tls-cert',
        server.certificateFile,
        '--tls-key',
        server.keyFile,
        '--tls-client-ca',
        authority.caFile,
        '--auth-tokens',
        accessFile,
        '--anonymous',
        'none',
        '--workers',
        '0',
      ],
      START_TIMEOUT_MS,
    );
    https = `https://${farm.address}`;
  });

  after(async () => {
    await worker?.stop();
    await farm?.stop();
    if (scratch) removeQuietly(scratch);
  });

  const farmTail = () => `--- granary (last lines) ---\n${farm.output().split('\n').slice(-30).join('\n')}`;

  describe('BuildBox (https://, --server-cert, --client-cert, --access-token)', () => {
    const tls = (certificate: IssuedCertificate) => [
      `--server-cert=${authority.caFile}`,
      `--client-cert=${certificate.certificateFile}`,
      `--client-key=${certificate.keyFile}`,
    ];

    before(async () => {
      worker = spawnInSidroot(
        sid.root,
        [
          'buildbox-worker',
          `--bots-remote=${https}`,
          `--cas-remote=${https}`,
          ...tls(stranger),
          `--access-token=${tokenFile('worker')}`,
          '--buildbox-run=/usr/bin/buildbox-run-bubblewrap',
          '--runner-arg=--disable-localcas',
          '--runner-arg=--ro-bind-mount=/usr:/usr',
          '--runner-arg=--ro-bind-mount=/usr/bin:/bin',
          '--runner-arg=--ro-bind-mount=/usr/lib:/lib',
          '--runner-arg=--ro-bind-mount=/usr/lib64:/lib64',
          '--platform',
          'OSFamily=linux',
          '--platform',
          'ISA=x86-64',
          '--platform',
          'pool=secured',
          '--verbose',
          'secured-buildbox-bot',
        ],
        { binds: [scratch] },
      );
      const deadline = Date.now() + 60_000;
      while (!/Bot Session created/.test(worker.output())) {
        if (worker.process.exitCode !== null || Date.now() > deadline) {
          throw new Error(`buildbox-worker did not create its bot session:\n${worker.output()}\n${farmTail()}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });

    /** trexe runs `echo TEXT`; a new text is a new action, which no action-cache hit can answer. */
    const trexe = (token: keyof typeof TOKENS | undefined, text: string) =>
      inSidrootAsync(
        sid.root,
        [
          'trexe',
          `--remote=${https}`,
          ...tls(stranger),
          ...(token ? [`--access-token=${tokenFile(token)}`] : []),
          '--platform-properties=OSFamily=linux,ISA=x86-64,pool=secured',
          '--',
          '/bin/echo',
          text,
        ],
        { binds: [scratch], timeoutMs: 5 * 60_000 },
      );

    test('buildbox-worker serves the farm with its token, and trexe with an execute token runs on it', async () => {
      const run = await trexe('ci', 'ran on a secured farm');
      assert.equal(run.status, 0, `${run.output}\n--- worker ---\n${worker?.output().slice(-4000)}\n${farmTail()}`);
      assert.equal(run.stdout, 'ran on a secured farm\n');
    });

    test('trexe with a read-only token, or none, is refused', async () => {
      const reader = await trexe('reader', 'a reader may not execute');
      assert.notEqual(reader.status, 0, reader.output);
      assert.match(reader.output, /PERMISSION_DENIED|permission denied|does not have the/i);
      const anonymous = await trexe(undefined, 'nobody may execute');
      assert.notEqual(anonymous.status, 0, anonymous.output);
      assert.match(anonymous.output, /UNAUTHENTICATED|unauthenticated|credentials/i);
    });
  });

  describe('BuildStream 2.8.1 (auth: server-cert, client-cert, client-key, access-token)', () => {
    let project: string;

    before(() => {
      project = join(scratch, 'bst-project');
      mkdirSync(join(project, 'elements'), { recursive: true });
      mkdirSync(join(project, 'files'));
      writeFileSync(join(project, 'project.conf'), 'name: secured\nmin-version: 2.0\nelement-path: elements\n');
      writeFileSync(join(project, 'files', 'hello.txt'), 'an artifact that crossed mutual TLS\n');
      writeFileSync(join(project, 'elements', 'hello.bst'), 'kind: import\nsources:\n- kind: local\n  path: files\n');
    });

    const userConfig = (name: string, auth: string[], push: boolean) => {
      const directory = join(scratch, name);
      mkdirSync(directory, { recursive: true });
      const path = join(directory, 'buildstream.conf');
      writeFileSync(
        path,
        [
          `cachedir: ${join(directory, 'cache')}`,
          `logdir: ${join(directory, 'logs')}`,
          'scheduler:',
          '  on-error: quit',
          'artifacts:',
          '  servers:',
          `  - url: ${https}`,
          `    push: ${push}`,
          '    auth:',
          `      server-cert: ${authority.caFile}`,
          ...auth.map((line) => `      ${line}`),
          '',
        ].join('\n'),
      );
      return path;
    };
    const bst = (config: string, args: string[]) =>
      inSidrootAsync(sid.root, ['bst', '--no-colors', '--config', config, ...args], {
        binds: [scratch],
        cwd: project,
        env: { HOME: scratch },
        timeoutMs: 10 * 60_000,
      });

    test('bst pushes over mTLS as its certificate, and a reader with a token pulls into an empty cache', async () => {
      const pusher = userConfig(
        'bst-push',
        [`client-cert: ${bstClient.certificateFile}`, `client-key: ${bstClient.keyFile}`],
        true,
      );
      const build = await bst(pusher, ['build', 'hello.bst']);
      assert.equal(build.status, 0, `${build.output}\n${farmTail()}`);
      assert.match(build.output, /Pushed artifact [0-9a-f]+ -> https/);

      const reader = userConfig(
        'bst-pull',
        [
          `client-cert: ${stranger.certificateFile}`,
          `client-key: ${stranger.keyFile}`,
          `access-token: ${tokenFile('reader')}`,
        ],
        false,
      );
      const pull = await bst(reader, ['artifact', 'pull', 'hello.bst']);
      assert.equal(pull.status, 0, `${pull.output}\n${farmTail()}`);
      const checkout = join(scratch, 'bst-checkout');
      const out = await bst(reader, ['artifact', 'checkout', 'hello.bst', '--directory', checkout]);
      assert.equal(out.status, 0, out.output);
      assert.equal(
        spawnSync('cat', [join(checkout, 'hello.txt')], { encoding: 'utf8' }).stdout,
        'an artifact that crossed mutual TLS\n',
      );
    });

    test('a certificate without a listed subject or token cannot push', async () => {
      writeFileSync(join(project, 'files', 'hello.txt'), 'changed: a new artifact\n');
      const config = userConfig(
        'bst-stranger',
        [`client-cert: ${stranger.certificateFile}`, `client-key: ${stranger.keyFile}`],
        true,
      );
      const build = await bst(config, ['build', 'hello.bst']);
      assert.doesNotMatch(build.output, /Pushed artifact/);
      assert.match(build.output, /UNAUTHENTICATED|unauthenticated|Failed to initialize remote|caller/i);
    });
  });

  test('granary push-dir dials with --tls-ca, --tls-cert, --tls-key and --token-file', () => {
    const tree = join(scratch, 'tree');
    mkdirSync(tree);
    writeFileSync(join(tree, 'file.txt'), 'pushed over mutual TLS\n');
    const pushDir = (token: keyof typeof TOKENS) =>
      spawnSync(
        process.execPath,
        [
          GRANARY_BIN,
          'push-dir',
          tree,
          '--uri',
          'https://artifacts.example/secured-tree',
          '--remote',
          `grpcs://${farm.address}`,
          '--tls-ca',
          authority.caFile,
          '--tls-cert',
          stranger.certificateFile,
          '--tls-key',
          stranger.keyFile,
          '--token-file',
          tokenFile(token),
        ],
        { encoding: 'utf8' },
      );
    const pushed = pushDir('ci');
    assert.equal(pushed.status, 0, pushed.stderr);
    const refused = pushDir('reader');
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /does not have the "(cas-write|asset-write)" scope/);
  });
});
