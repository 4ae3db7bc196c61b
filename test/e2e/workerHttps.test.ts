/**
 * A standalone worker's HTTP port over HTTPS (`--http-tls-cert`, `--http-tls-key`):
 * probes and metrics are served over TLS with that certificate, and plain HTTP
 * is not.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TestFarm } from '../support/farm.js';
import { removeQuietly, scratchDirectory } from '../support/scratch.js';
import { httpsRequest, makeTestAuthority, type TestAuthority } from '../support/tls.js';

describe("a worker's HTTP port over HTTPS", { timeout: 5 * 60_000 }, () => {
  const farm = new TestFarm({ name: 'worker-https', embeddedWorkers: 0 });
  let directory: string;
  let authority: TestAuthority;
  let url: string;

  before(async () => {
    directory = scratchDirectory('worker-https');
    authority = makeTestAuthority(directory, 'ca');
    const certificate = authority.issue('worker', '/CN=localhost', 'server');
    farm.options.workers = [
      {
        name: 'https-worker',
        flags: [
          '--http-listen',
          '127.0.0.1:0',
          '--http-tls-cert',
          certificate.certificateFile,
          '--http-tls-key',
          certificate.keyFile,
        ],
      },
    ];
    await farm.start();
    const worker = farm.workers[0];
    const deadline = Date.now() + 60_000;
    for (;;) {
      const announced = /metrics and health on (\S+) /.exec(worker?.output() ?? '');
      if (announced) {
        url = announced[1] as string;
        break;
      }
      assert.ok(Date.now() < deadline, worker?.output());
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  after(async () => {
    await farm.stop();
    if (directory) removeQuietly(directory);
  });

  test('probes and metrics answer over HTTPS with the certificate, plain HTTP does not', async () => {
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const probe = await httpsRequest(`${url}/healthz`, authority.caPem);
    assert.deepEqual([probe.status, probe.body], [200, 'ok\n']);
    const metrics = await httpsRequest(`${url}/metrics`, authority.caPem);
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /granary_worker_/);
    await assert.rejects(fetch(`${url.replace('https:', 'http:')}/healthz`), 'plain HTTP is not served');
  });
});
