/**
 * The downloader against real local listeners that count their connections: a
 * refused fetch never reaches them, whether it names the address, a host name
 * resolving to it, or gets there by a redirect from an allowed origin.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Origin, startOrigin } from '../../test/support/asset.js';
import { backgroundContext } from '../context/requestContext.js';
import { digestOf, SHA256 } from '../digest/digest.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { Code } from '../util/status.js';
import { Downloader, type DownloaderOptions, type DownloadOutcome } from './downloader.js';
import { FetchPolicy } from './fetchPolicy.js';
import type { Resolver } from './guardedHttp.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

const content = Buffer.from('served by the local origin\n');

function downloader(options: Partial<DownloaderOptions> = {}): Downloader {
  return new Downloader(new MemoryBlobStore(), { maximumBytes: 1024 * 1024, ...options });
}

function download(from: Downloader, uri: string, headers: Record<string, string> = {}): Promise<DownloadOutcome> {
  return from.download(context, { targets: [{ uri, index: 0, headers }], digestFunction: SHA256, timeoutMs: 10_000 });
}

function assertRefused(outcome: DownloadOutcome, pattern: RegExp): void {
  assert.equal(outcome.ok, false);
  if (outcome.ok) return;
  assert.equal(outcome.code, Code.PERMISSION_DENIED, outcome.message);
  assert.match(outcome.message, pattern);
}

describe('Downloader address policy', () => {
  let inside: Origin;
  let gateway: Origin;
  let insidePort: string;

  before(async () => {
    // 127.0.0.2 is loopback too, but another address than the one the tests open.
    inside = await startOrigin({ '/secret': content }, '127.0.0.2');
    insidePort = new URL(inside.url).port;
    gateway = await startOrigin({
      '/file': content,
      '/to-inside': (response) => response.writeHead(302, { location: `${inside.url}/secret` }).end(),
      '/loop': (response) => response.writeHead(307, { location: '/loop' }).end(),
      '/to-file': (response) => response.writeHead(302, { location: 'file:///etc/passwd' }).end(),
      '/hop': (response) => response.writeHead(302, { location: '/file' }).end(),
    });
  });
  after(async () => {
    await inside.close();
    await gateway.close();
  });

  it('refuses a loopback address by default and never connects to it', async () => {
    const before = gateway.connections();
    const outcome = await download(downloader(), `${gateway.url}/file`);
    assertRefused(outcome, /127\.0\.0\.1 is a loopback address, refused by default/);
    assert.equal(gateway.connections(), before);
  });

  it('refuses a host name that resolves to 127.0.0.1, without connecting', async () => {
    const before = gateway.connections();
    const outcome = await download(downloader(), `http://localhost:${new URL(gateway.url).port}/file`);
    assertRefused(outcome, /localhost resolves to 127\.0\.0\.1, which is a loopback address/);
    assert.equal(gateway.connections(), before);
  });

  it('refuses an IPv4-mapped IPv6 literal of a loopback address', async () => {
    const before = inside.connections();
    const outcome = await download(downloader(), `http://[::ffff:127.0.0.2]:${insidePort}/secret`);
    assertRefused(outcome, /loopback/);
    assert.equal(inside.connections(), before);
  });

  it('downloads from an origin opened with an allow pattern', async () => {
    const outcome = await download(downloader({ policy: new FetchPolicy(['127.0.0.1']) }), `${gateway.url}/file`);
    assert.ok(outcome.ok, outcome.ok ? '' : outcome.message);
    assert.deepEqual(outcome.digest, digestOf(content));
  });

  it('refuses a redirect from an allowed origin to a refused address, without connecting to it', async () => {
    const before = inside.connections();
    const allowed = downloader({ policy: new FetchPolicy(['127.0.0.1']) });
    assertRefused(await download(allowed, `${gateway.url}/to-inside`), /127\.0\.0\.2 is a loopback address/);
    assert.equal(inside.connections(), before);
    assert.equal(inside.count('/secret'), 0);
  });

  it('judges a host name by every address it resolves to, and connects to the address it checked', async () => {
    const calls: string[] = [];
    const resolve: Resolver = async (host) => {
      calls.push(host);
      if (host === 'mixed.test')
        return [
          { address: '93.184.215.14', family: 4 },
          { address: '127.0.0.2', family: 4 },
        ];
      return [{ address: '127.0.0.2', family: 4 }];
    };
    const before = inside.connections();
    const policy = new FetchPolicy(['127.0.0.2']);
    assertRefused(
      await download(downloader({ resolve }), `http://mixed.test:${insidePort}/secret`),
      /mixed\.test resolves to 127\.0\.0\.2/,
    );
    assert.equal(inside.connections(), before);
    // Opened by address, a name is resolved once and the socket goes where the check said.
    const outcome = await download(downloader({ resolve, policy }), `http://origin.test:${insidePort}/secret`);
    assert.ok(outcome.ok, outcome.ok ? '' : outcome.message);
    assert.deepEqual(calls, ['mixed.test', 'origin.test']);
    assert.equal(inside.requests.at(-1)?.headers.host, `origin.test:${insidePort}`);
  });

  it('refuses cloud metadata names without resolving them', async () => {
    const calls: string[] = [];
    const resolve: Resolver = async (host) => {
      calls.push(host);
      return [{ address: '93.184.215.14', family: 4 }];
    };
    assertRefused(
      await download(downloader({ resolve }), 'http://metadata.google.internal/computeMetadata/v1/'),
      /cloud metadata service/,
    );
    assertRefused(await download(downloader(), 'http://169.254.169.254/latest/meta-data/'), /cloud metadata address/);
    assert.deepEqual(calls, []);
  });

  it('follows redirects up to the limit and refuses other schemes', async () => {
    const policy = new FetchPolicy(['127.0.0.1']);
    const hop = await download(downloader({ policy, maximumRedirects: 1 }), `${gateway.url}/hop`);
    assert.ok(hop.ok);
    const loop = await download(downloader({ policy, maximumRedirects: 3 }), `${gateway.url}/loop`);
    assert.equal(loop.ok, false);
    if (!loop.ok) {
      assert.equal(loop.code, Code.NOT_FOUND);
      assert.match(loop.message, /more than 3 redirects/);
    }
    assert.equal(gateway.count('/loop'), 4);
    const none = await download(downloader({ policy, maximumRedirects: 0 }), `${gateway.url}/hop`);
    assert.equal(none.ok, false);
    assertRefused(await download(downloader({ policy }), `${gateway.url}/to-file`), /only http and https/);
  });

  it('does not send credentials on to another origin', async () => {
    const policy = new FetchPolicy(['127.0.0.0/8']);
    const outcome = await download(downloader({ policy }), `${gateway.url}/to-inside`, {
      authorization: 'Bearer secret',
      'x-other': 'kept',
    });
    assert.ok(outcome.ok, outcome.ok ? '' : outcome.message);
    const seen = inside.requests.at(-1);
    assert.equal(seen?.headers.authorization, undefined);
    assert.equal(seen?.headers['x-other'], 'kept');
    assert.equal(gateway.requests.at(-1)?.headers.authorization, 'Bearer secret');
  });
});
