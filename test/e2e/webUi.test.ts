/**
 * The web UI in headless Chromium (Debian's chromium driven by playwright-core,
 * which downloads no browser): hostile names and contents show as text and run
 * nothing; a real Bazel 4.2.3 build with --remote_executor and --bes_backend is
 * followed from the operation list to one action's stdout, and from its
 * invocation to its tests and actions. Screenshots of each page are saved under
 * test-artifacts/web-ui/ (gitignored) for people to look at.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { executeRemotely } from '../../src/client/execute.js';
import { GrpcBlobStore } from '../../src/client/grpcBlobStore.js';
import { bazel, remoteExecutionFlags } from '../support/bazel.js';
import { bazelWorkspace } from '../support/bazelWorkspace.js';
import { requireCommand } from '../support/commands.js';
import { TestFarm, useFarm } from '../support/farm.js';
import { REPO_ROOT } from '../support/repository.js';
import { removeQuietly, scratchDirectory } from '../support/scratch.js';
import { httpsRequest, type IssuedCertificate, makeTestAuthority, type TestAuthority } from '../support/tls.js';
import { dir, file, uploadAction, uploadTree } from '../support/worker.js';

/** Debian's chromium: playwright-core drives it and never downloads a browser of its own. */
const CHROMIUM = '/usr/bin/chromium';
const skip = requireCommand('chromium') || requireCommand('bazel');
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts', 'web-ui');

/** Markup that would set window.__granaryPwned if a page ever rendered it as HTML. */
const HOSTILE_CONTENT = `<script>window.__granaryPwned = "content"</script><img src=x onerror="window.__granaryPwned='img'">`;
const HOSTILE_FILE_NAME = '<script>';
const HOSTILE_IMAGE_NAME = `<img src=x onerror="window.__granaryPwned='name'">`;

/** The web UI's address, once `granary serve` has announced it. */
async function webUiAddress(farm: TestFarm): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const announced = /web UI on (https?:\/\/[^\s/]+)/.exec(farm.server.output());
    if (announced) return announced[1] as string;
    assert.ok(Date.now() < deadline && farm.server.process.exitCode === null, farm.server.output());
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the web UI in headless Chromium', { skip, timeout: 15 * 60_000 }, () => {
  const farm = useFarm({ name: 'web-ui', embeddedWorkers: 2, serveFlags: ['--http-listen', '127.0.0.1:0'] });
  let ui: string;
  let browser: Browser;
  let page: Page;

  before(async () => {
    ui = await webUiAddress(farm);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    mkdirSync(ARTIFACTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
  });

  /** Opens a page of the UI and waits until its script has rendered it. */
  async function open(path: string): Promise<void> {
    await page.goto(`${ui}${path}`);
    await waitForRender();
  }

  async function waitForRender(): Promise<void> {
    await page.waitForSelector('body[data-loaded]');
    const state = await page.getAttribute('body', 'data-loaded');
    assert.equal(state, 'true', `the page failed: ${await page.textContent('main')}`);
  }

  async function screenshot(name: string): Promise<void> {
    const path = join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    console.log(`screenshot: ${path}`);
  }

  async function pwned(): Promise<unknown> {
    return page.evaluate(() => (window as unknown as { __granaryPwned?: unknown }).__granaryPwned);
  }

  test('file names and contents that are markup show as text and run nothing, and files download as attachments', async () => {
    const connection = farm.connect();
    const cas = new GrpcBlobStore(connection);
    const root = await uploadTree(cas, {
      [HOSTILE_FILE_NAME]: file(HOSTILE_CONTENT),
      [HOSTILE_IMAGE_NAME]: dir({ 'inner.txt': file('inner') }),
    });
    const rootPath = `${root.hash}/${root.sizeBytes}`;
    await open(`/cas/directory/${rootPath}`);
    const listing = (await page.textContent('main')) ?? '';
    assert.ok(listing.includes(HOSTILE_FILE_NAME), listing);
    assert.ok(listing.includes(`${HOSTILE_IMAGE_NAME}/`), listing);
    assert.equal(await page.locator('main img, main script').count(), 0);
    await screenshot('hostile-directory');

    await page.getByRole('link', { name: HOSTILE_FILE_NAME, exact: true }).click();
    await waitForRender();
    assert.equal(await page.textContent('pre'), HOSTILE_CONTENT);
    assert.equal(await page.locator('main img, main script').count(), 0);
    assert.equal(await page.locator('script').count(), 1, 'only the UI script itself');
    assert.equal(await pwned(), undefined);

    const download = await page.locator('a', { hasText: '(download)' }).getAttribute('href');
    assert.ok(download?.startsWith('/cas/blob/'), String(download));
    const response = await fetch(`${ui}${download}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/octet-stream');
    assert.match(response.headers.get('content-disposition') ?? '', /^attachment; filename="_script_"$/);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(await response.text(), HOSTILE_CONTENT);

    // An action whose command line and stdout are markup.
    const action = await uploadAction(cas, {
      arguments: ['/bin/sh', '-c', `printf '%s' '${HOSTILE_CONTENT.replace(/'/g, `'\\''`)}'`],
      inputRoot: root,
    });
    const executed = await executeRemotely(connection, action);
    assert.equal(executed.result?.exitCode, 0, executed.status?.message);
    await open(`/actions/${action.hash}/${action.sizeBytes}`);
    assert.equal(await page.textContent('pre.output-stdout'), HOSTILE_CONTENT);
    assert.ok(((await page.textContent('pre.command-line')) ?? '').includes('<script>'));
    assert.equal(await page.locator('main img, main script').count(), 0);
    assert.equal(await pwned(), undefined);
  });

  test('a Bazel 4.2.3 build with --remote_executor and --bes_backend is followed from the operation list to an action stdout', async () => {
    // The fixture workspace, plus a rule that prints to its stdout.
    const workspace = bazelWorkspace(4, farm.scratch);
    mkdirSync(join(workspace, 'ui'));
    writeFileSync(
      join(workspace, 'ui', 'BUILD'),
      'genrule(name = "shout", outs = ["shout.txt"], cmd = "echo granary-ui-says-hello; echo done > $@")\n',
    );
    const build = bazel(workspace, farm.path('bazel-root'), 'test', [
      ...remoteExecutionFlags(farm.url),
      `--bes_backend=${farm.url}`,
      '//:hello_test',
      '//ui:shout',
    ]);
    assert.equal(build.status, 0, build.output);

    // The list, filtered by tool through the form as a person would.
    await open('/operations');
    await page.fill('input[name="tool"]', 'bazel');
    await Promise.all([page.waitForURL(/tool=bazel/), page.click('button[type="submit"]')]);
    await waitForRender();
    const genruleRow = page.locator('tbody tr', { hasText: 'Genrule' });
    assert.equal(await genruleRow.count(), 1, (await page.textContent('main')) ?? '');
    assert.ok((await page.locator('tbody tr', { hasText: 'TestRunner' }).count()) >= 1);
    await screenshot('operations');

    const actionLink = genruleRow.locator('a[href^="/actions/"]');
    const href = (await actionLink.getAttribute('href')) ?? '';
    assert.match(href, /^\/actions\/[0-9a-f]{64}\/\d+$/);
    await Promise.all([page.waitForURL(`**${href}`), actionLink.click()]);
    await waitForRender();
    assert.equal((await page.textContent('pre.output-stdout'))?.trim(), 'granary-ui-says-hello');
    const facts = (await page.textContent('dl.facts')) ?? '';
    assert.match(facts, /exit code\s*0/);
    assert.match(facts, /cache hit\s*no/);
    assert.match(facts, /worker\s*embedded/);
    assert.ok(((await page.textContent('pre.command-line')) ?? '').includes('echo granary-ui-says-hello'));
    assert.ok((await page.textContent('main'))?.includes('execution'), 'the phase timings are shown');
    await screenshot('action');

    // Its input tree, browsable.
    await Promise.all([page.waitForURL(/\/cas\/directory\//), page.getByText('Browse the input tree').click()]);
    await waitForRender();
    assert.ok((await page.locator('tbody tr').count()) >= 1);
    await screenshot('input-tree');

    // Filters: nothing failed; the invocation's own actions are all there.
    await open('/operations?status=failed');
    assert.ok((await page.textContent('main'))?.includes('No operations.'));

    // The invocation, from the Build Event Service.
    await open('/invocations');
    const invocations = page.locator('tbody tr');
    assert.equal(await invocations.count(), 1);
    await invocations.locator('a').first().click();
    await waitForRender();
    const invocation = (await page.textContent('main')) ?? '';
    assert.ok(invocation.includes('bazel test //:hello_test //ui:shout'), invocation);
    assert.match(invocation, /\/\/:hello_test\s*PASSED/);
    assert.ok(invocation.includes('//ui:shout'), invocation);
    assert.ok((await page.locator('a[href^="/actions/"]').count()) >= 2, 'the actions it ran link to their pages');
    await screenshot('invocation');

    await open('/workers');
    assert.ok((await page.textContent('main'))?.includes('embedded'));
    await screenshot('workers');

    await open('/storage');
    assert.ok((await page.locator('svg.chart polyline').count()) >= 1);
    await screenshot('storage');

    await open('/');
    assert.ok((await page.textContent('main'))?.includes('Genrule'));
    await screenshot('overview');
  });
});

describe('the web UI of a farm that requires credentials', {
  skip: requireCommand('chromium'),
  timeout: 5 * 60_000,
}, () => {
  const ADMIN_TOKEN = 'admin-token-for-the-web-ui-test';
  const READER_TOKEN = 'reader-token-for-the-web-ui-test';
  const farm = new TestFarm({ name: 'web-ui-auth', embeddedWorkers: 0 });
  let ui: string;
  let browser: Browser;

  before(async () => {
    const accessFile = join(scratchDirectory('web-ui-access'), 'access.yaml');
    writeFileSync(
      accessFile,
      [
        `- name: operator`,
        `  token: ${ADMIN_TOKEN}`,
        `  scopes: [read, admin]`,
        `  instances: ["*"]`,
        `- name: reader`,
        `  token: ${READER_TOKEN}`,
        `  scopes: [read]`,
        `  instances: ["*"]`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    farm.options.serveFlags = ['--http-listen', '127.0.0.1:0', '--auth-tokens', accessFile];
    await farm.start();
    removeQuietly(join(accessFile, '..'));
    ui = await webUiAddress(farm);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    await farm.stop();
  });

  test('the API answers 401 without a token, 403 without the admin scope, and 200 with it', async () => {
    const anonymous = await fetch(`${ui}/api/operations`);
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer realm="granary"');
    const reader = await fetch(`${ui}/api/operations`, { headers: { Authorization: `Bearer ${READER_TOKEN}` } });
    assert.equal(reader.status, 403);
    const storage = await fetch(`${ui}/api/storage`, { headers: { Authorization: `Bearer ${READER_TOKEN}` } });
    assert.equal(storage.status, 200);
    const admin = await fetch(`${ui}/api/operations`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(admin.status, 200);
    assert.deepEqual((await admin.json()).operations, []);
    assert.equal((await fetch(`${ui}/healthz`)).status, 200, 'probes need no credentials');
  });

  test('a browser without a token is sent to the login form, and signing in shows the pages', async () => {
    const page = await browser.newPage();
    await page.goto(`${ui}/workers`);
    assert.equal(new URL(page.url()).pathname, '/login');
    await page.fill('input[name="token"]', 'not-a-known-token');
    await page.click('button[type="submit"]');
    await page.waitForSelector('p.error');
    assert.equal(new URL(page.url()).pathname, '/login', 'a wrong token does not get in');
    assert.equal((await page.context().cookies()).length, 0);
    await page.fill('input[name="token"]', ADMIN_TOKEN);
    await page.click('button[type="submit"]');
    await page.waitForSelector('body[data-loaded]');
    assert.equal(await page.getAttribute('body', 'data-loaded'), 'true', (await page.textContent('main')) ?? '');
    assert.ok((await page.textContent('main'))?.includes('Farm overview'));
    const cookies = await page.context().cookies();
    const cookie = cookies.find((c) => c.name === 'granary_token');
    assert.equal(cookie?.httpOnly, true);
    assert.equal(cookie?.sameSite, 'Strict');
    await page.close();
  });
});

describe('the web UI over HTTPS with client certificates', { timeout: 5 * 60_000 }, () => {
  const OPERATOR_TOKEN = 'operator-token-for-the-https-test';
  const farm = new TestFarm({ name: 'web-ui-https', embeddedWorkers: 0 });
  let directory: string;
  let authority: TestAuthority;
  let reader: IssuedCertificate;
  let unlisted: IssuedCertificate;
  let stranger: IssuedCertificate;
  let ui: string;

  before(async () => {
    directory = scratchDirectory('web-ui-https');
    authority = makeTestAuthority(directory, 'ca');
    const server = authority.issue('server', '/CN=localhost', 'server');
    reader = authority.issue('reader', '/CN=ui-reader', 'client');
    unlisted = authority.issue('unlisted', '/CN=somebody-else', 'client');
    stranger = makeTestAuthority(directory, 'other-ca').issue('stranger', '/CN=ui-reader', 'client');
    const accessFile = join(directory, 'access.yaml');
    writeFileSync(
      accessFile,
      [
        '- name: operator',
        `  token: ${OPERATOR_TOKEN}`,
        '  scopes: [read, admin]',
        '  instances: ["*"]',
        '- name: ui-reader',
        '  client-certificate: CN=ui-reader',
        '  scopes: [read]',
        '  instances: ["*"]',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    farm.options.serveFlags = [
      '--http-listen',
      '127.0.0.1:0',
      '--tls-cert',
      server.certificateFile,
      '--tls-key',
      server.keyFile,
      '--tls-client-ca',
      authority.caFile,
      '--auth-tokens',
      accessFile,
    ];
    await farm.start();
    ui = await webUiAddress(farm);
  });

  after(async () => {
    await farm.stop();
    if (directory) removeQuietly(directory);
  });

  test('the port serves HTTPS only, and answers probes without a certificate but nothing else', async () => {
    assert.match(ui, /^https:\/\//);
    await assert.rejects(fetch(`${ui.replace('https:', 'http:')}/healthz`), 'plain HTTP is not served');
    assert.equal((await httpsRequest(`${ui}/healthz`, authority.caPem)).status, 200);
    assert.equal((await httpsRequest(`${ui}/readyz`, authority.caPem)).status, 200);
    const withToken = await httpsRequest(`${ui}/api/operations`, authority.caPem, {
      headers: { Authorization: `Bearer ${OPERATOR_TOKEN}` },
    });
    assert.equal(withToken.status, 403, 'a token without a certificate is refused');
    assert.match(withToken.body, /client certificate/);
    assert.equal((await httpsRequest(`${ui}/metrics`, authority.caPem)).status, 403);
    assert.equal((await httpsRequest(`${ui}/api/storage`, authority.caPem, { client: stranger })).status, 403);
  });

  test("a listed certificate is its caller, with that caller's scopes", async () => {
    assert.equal((await httpsRequest(`${ui}/api/storage`, authority.caPem, { client: reader })).status, 200);
    assert.equal((await httpsRequest(`${ui}/api/operations`, authority.caPem, { client: reader })).status, 403);
    assert.equal((await httpsRequest(`${ui}/api/storage`, authority.caPem, { client: unlisted })).status, 401);
    const operator = await httpsRequest(`${ui}/api/operations`, authority.caPem, {
      client: unlisted,
      headers: { Authorization: `Bearer ${OPERATOR_TOKEN}` },
    });
    assert.equal(operator.status, 200, "an unlisted certificate with a token is the token's caller");
  });

  test('the login cookie carries Secure', async () => {
    const signedIn = await httpsRequest(`${ui}/login`, authority.caPem, {
      client: unlisted,
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `token=${OPERATOR_TOKEN}`,
    });
    assert.equal(signedIn.status, 303, signedIn.body);
    const cookie = String(signedIn.headers['set-cookie']);
    assert.match(cookie, /^granary_token=/);
    assert.match(cookie, /; Secure/);
    assert.match(cookie, /HttpOnly/);
  });
});
