import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Principal } from '../context/requestContext.js';
import { HttpError, parseHostPort, type RunningHttpServer, sendJson, sendText, startHttpServer } from './httpServer.js';

const reader: Principal = { name: 'reader', kind: 'token', scopes: new Set(['read']), instances: ['*'] };

describe('the HTTP port', () => {
  let server: RunningHttpServer;

  before(async () => {
    server = await startHttpServer({
      listen: '127.0.0.1:0',
      authenticator: ({ headers }) => {
        if (headers.authorization === 'Bearer reader') return reader;
        if (headers.authorization) throw new HttpError(401, 'unknown token');
        return { ...reader, name: 'nobody', scopes: new Set() };
      },
      routes: [
        { method: 'GET', path: '/public', handle: ({ response }) => sendText(response, 200, 'public\n') },
        {
          method: 'GET',
          path: '/secret',
          scope: 'read',
          handle: ({ response, principal }) => sendText(response, 200, `hello ${principal.name}\n`),
        },
        { method: 'GET', path: '/files/*', handle: ({ response, rest }) => sendJson(response, 200, { rest }) },
        { method: 'GET', path: '/files/special', handle: ({ response }) => sendText(response, 200, 'special\n') },
        {
          method: 'GET',
          path: '/broken',
          handle: () => {
            throw new HttpError(409, 'not now');
          },
        },
      ],
    });
  });

  after(() => server.close());

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${server.url}${path}`, { headers });

  it('serves a public route to anyone', async () => {
    const response = await get('/public');
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'public\n');
    assert.equal(response.headers.get('cache-control'), 'no-store');
  });

  it('serves a route that needs a scope only to a caller the authenticator gave that scope', async () => {
    assert.equal(await (await get('/secret', { authorization: 'Bearer reader' })).text(), 'hello reader\n');
    const refused = await get('/secret');
    assert.equal(refused.status, 403);
    assert.match(await refused.text(), /nobody lacks the read scope/);
    assert.equal((await get('/secret', { authorization: 'Bearer wrong' })).status, 401);
  });

  it('matches exact routes before prefixes and hands a prefix route the rest of the path', async () => {
    assert.deepEqual(await (await get('/files/a/b.txt')).json(), { rest: 'a/b.txt' });
    assert.equal(await (await get('/files/special')).text(), 'special\n');
  });

  it('answers 404 for unknown paths and 405 with Allow for other methods', async () => {
    assert.equal((await get('/nothing')).status, 404);
    const posted = await fetch(`${server.url}/public`, { method: 'POST' });
    assert.equal(posted.status, 405);
    assert.equal(posted.headers.get('allow'), 'GET');
  });

  it('turns an HttpError thrown by a handler into its status', async () => {
    const response = await get('/broken');
    assert.equal(response.status, 409);
    assert.equal(await response.text(), 'not now\n');
  });

  it('takes routes added while it runs', async () => {
    server.addRoute({ method: 'GET', path: '/late', handle: ({ response }) => sendText(response, 200, 'late\n') });
    assert.equal(await (await get('/late')).text(), 'late\n');
  });

  it('names the address when its port is already in use', async () => {
    const { port } = parseHostPort(server.address);
    await assert.rejects(
      startHttpServer({ listen: `127.0.0.1:${port}` }),
      /HTTP port 127\.0\.0\.1:\d+ is already in use/,
    );
  });

  it('parses HOST:PORT, bracketed IPv6 hosts and an empty host', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:8981'), { host: '127.0.0.1', port: 8981 });
    assert.deepEqual(parseHostPort('[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseHostPort(':9000'), { host: '0.0.0.0', port: 9000 });
    assert.throws(() => parseHostPort('localhost'), /expected HOST:PORT/);
    assert.throws(() => parseHostPort('h:70000'), /expected HOST:PORT/);
  });
});
