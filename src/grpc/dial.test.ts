import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { rejectsWithCode } from '../../test/support/status.js';
import { makeTestCertificates, type TestCertificates } from '../../test/support/tls.js';
import { unary } from '../client/connection.js';
import {
  CapabilitiesClient,
  CapabilitiesService,
  type ServerCapabilities,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code } from '../util/status.js';
import { capabilitiesServer } from './capabilitiesServer.js';
import { channelCredentialsFor, type DialOptions, dial, isLocalAddress, parseDialTarget } from './dial.js';
import { createGrpcServer, type GrpcServer, type ListenerOptions } from './server.js';

describe('parseDialTarget', () => {
  const accepted: [string, string, boolean][] = [
    ['grpc://127.0.0.1:8980', '127.0.0.1:8980', false],
    ['grpc://farm.example:8980/', 'farm.example:8980', false],
    ['http://farm.example:8980', 'farm.example:8980', false],
    ['http://farm.example', 'farm.example:80', false],
    ['grpcs://farm.example:8981', 'farm.example:8981', true],
    ['grpcs://farm.example', 'farm.example:443', true],
    ['https://farm.example', 'farm.example:443', true],
    ['grpc://farm.example', 'farm.example', false],
    ['grpc://[::1]:8980', '[::1]:8980', false],
    ['localhost:8980', 'localhost:8980', false],
    ['[::1]:8980', '[::1]:8980', false],
    ['unix:/run/granary.sock', 'unix:/run/granary.sock', false],
    ['unix:relative.sock', 'unix:relative.sock', false],
    ['unix:///run/granary.sock', 'unix:/run/granary.sock', false],
  ];
  for (const [url, address, tls] of accepted) {
    it(`reads ${url} as ${address}${tls ? ' over TLS' : ' in plain text'}`, () => {
      assert.deepEqual(parseDialTarget(url), { address, tls });
    });
  }

  it('rejects addresses it cannot read, naming the forms it accepts', () => {
    for (const url of [
      '',
      'localhost',
      'ftp://farm.example:21',
      'grpc://farm.example:8980/instance',
      'grpc://farm.example:0',
      'grpc://farm.example:99999',
      'grpc://',
      'unix:',
      'unix://relative.sock',
      'farm example:8980',
    ]) {
      assert.throws(() => parseDialTarget(url), /invalid server address .*expected grpc:\/\/HOST:PORT/, url);
    }
  });
});

describe('tokens in dial', () => {
  it('tells loopback and unix-socket addresses from the rest', () => {
    for (const local of [
      '127.0.0.1:8980',
      '127.1.2.3:1',
      'localhost:8980',
      'localhost',
      '[::1]:8980',
      'unix:/run/g.sock',
    ]) {
      assert.equal(isLocalAddress(local), true, local);
    }
    for (const remote of ['10.0.0.5:8980', 'farm.example:8980', 'farm.example', '[fe80::1]:8980', '0.0.0.0:8980']) {
      assert.equal(isLocalAddress(remote), false, remote);
    }
  });

  it('refuses to send a token in clear text beyond this machine, and allows it over TLS or locally', () => {
    const token = () => 'a-token';
    assert.throws(
      () => dial('grpc://10.0.0.5:8980', { token }),
      /refusing to send a token in clear text to 10.0.0.5:8980/,
    );
    assert.throws(() => dial('farm.example:8980', { token }), /use grpcs:\/\//);
    for (const url of ['grpcs://10.0.0.5:8980', 'grpc://127.0.0.1:8980', 'unix:/run/granary.sock'])
      dial(url, { token }).close();
  });

  it('sends the current token as "authorization: Bearer" on every call', async () => {
    const seen: string[][] = [];
    const server = createGrpcServer({
      listeners: [{ address: '127.0.0.1:0' }],
      authenticator: (request) => {
        seen.push(request.metadata.get('authorization').map(String));
        return { name: 'x', kind: 'token', scopes: new Set(['read']), instances: ['*'] };
      },
    });
    server.addService(
      CapabilitiesService,
      capabilitiesServer({ maxBatchTotalSizeBytes: 1, actionCacheUpdateEnabled: false, supportedCompressors: [] }),
    );
    const [bound] = await server.listen();
    let token = 'first-token';
    const channel = dial(`grpc://${bound?.address}`, { token: () => token });
    try {
      const client = channel.client(CapabilitiesClient);
      const call = () => unary<ServerCapabilities>((done) => client.getCapabilities({ instanceName: '' }, done));
      await call();
      token = 'rotated-token';
      await call();
      assert.deepEqual(seen, [['Bearer first-token'], ['Bearer rotated-token']]);
    } finally {
      channel.close();
      await server.close();
    }
  });
});

describe('channelCredentialsFor', () => {
  it('refuses TLS options for a plain-text address rather than silently ignoring them', () => {
    const options: DialOptions = { tls: { certificateAuthorityPem: Buffer.from('x') } };
    assert.throws(() => channelCredentialsFor(parseDialTarget('grpc://h:1'), options), /use grpcs:\/\//);
  });

  it('refuses a client certificate without its key', () => {
    const options: DialOptions = { tls: { clientCertificateChainPem: Buffer.from('x') } };
    assert.throws(() => channelCredentialsFor(parseDialTarget('grpcs://h:1'), options), /both/);
  });
});

async function serveCapabilities(listeners: ListenerOptions[]): Promise<{ server: GrpcServer; addresses: string[] }> {
  const server = createGrpcServer({ listeners });
  server.addService(
    CapabilitiesService,
    capabilitiesServer({ maxBatchTotalSizeBytes: 77, actionCacheUpdateEnabled: false, supportedCompressors: [] }),
  );
  const bound = await server.listen();
  return { server, addresses: bound.map((listener) => listener.address) };
}

async function capabilitiesOver(url: string, options: DialOptions = {}): Promise<ServerCapabilities> {
  const channel = dial(url, options);
  try {
    const client = channel.client(CapabilitiesClient);
    return await unary<ServerCapabilities>((done) =>
      client.getCapabilities({ instanceName: '' }, new Metadata(), { deadline: Date.now() + 20_000 }, done),
    );
  } finally {
    channel.close();
  }
}

describe('dial against the server factory', () => {
  let certificates: TestCertificates;
  let directory: string;
  before(() => {
    certificates = makeTestCertificates();
    directory = mkdtempSync(join(tmpdir(), 'granary-dial-'));
  });
  after(() => rmSync(directory, { recursive: true, force: true }));

  it('reaches one server on every listener it binds: TCP and a unix socket', async () => {
    const socket = join(directory, 'granary.sock');
    const { server, addresses } = await serveCapabilities([{ address: '127.0.0.1:0' }, { address: `unix:${socket}` }]);
    try {
      assert.equal(addresses[1], `unix:${socket}`);
      const overTcp = await capabilitiesOver(`grpc://${addresses[0]}`);
      const overSocket = await capabilitiesOver(`unix:${socket}`);
      assert.equal(overTcp.cacheCapabilities?.maxBatchTotalSizeBytes, 77);
      assert.equal(overSocket.cacheCapabilities?.maxBatchTotalSizeBytes, 77);
    } finally {
      await server.close();
    }
  });

  it('talks TLS to a grpcs:// address with the server’s CA, and refuses a server its CA did not sign', async () => {
    const { server, addresses } = await serveCapabilities([
      {
        address: '127.0.0.1:0',
        tls: { certificateChainPem: certificates.serverCertificatePem, privateKeyPem: certificates.serverKeyPem },
      },
    ]);
    try {
      const url = `grpcs://${addresses[0]}`;
      const response = await capabilitiesOver(url, { tls: { certificateAuthorityPem: certificates.caPem } });
      assert.equal(response.cacheCapabilities?.maxBatchTotalSizeBytes, 77);
      await rejectsWithCode(
        capabilitiesOver(url, { tls: { certificateAuthorityPem: certificates.otherCaPem } }),
        Code.UNAVAILABLE,
      );
      await rejectsWithCode(capabilitiesOver(`grpc://${addresses[0]}`), Code.UNAVAILABLE, 'plain text to a TLS port');
    } finally {
      await server.close();
    }
  });

  it('presents a client certificate to a server that requires one (mTLS), which refuses clients without', async () => {
    const { server, addresses } = await serveCapabilities([
      {
        address: '127.0.0.1:0',
        tls: {
          certificateChainPem: certificates.serverCertificatePem,
          privateKeyPem: certificates.serverKeyPem,
          clientCertificateAuthorityPem: certificates.caPem,
        },
      },
    ]);
    try {
      const url = `grpcs://${addresses[0]}`;
      const withCertificate = await capabilitiesOver(url, {
        tls: {
          certificateAuthorityPem: certificates.caPem,
          clientCertificateChainPem: certificates.clientCertificatePem,
          clientPrivateKeyPem: certificates.clientKeyPem,
        },
      });
      assert.equal(withCertificate.cacheCapabilities?.maxBatchTotalSizeBytes, 77);
      await rejectsWithCode(
        capabilitiesOver(url, { tls: { certificateAuthorityPem: certificates.caPem } }),
        Code.UNAVAILABLE,
      );
    } finally {
      await server.close();
    }
  });
});
