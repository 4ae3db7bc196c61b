/**
 * Throwaway certificates for TLS tests: a CA, a server certificate for
 * 127.0.0.1/localhost and a client certificate, made with the openssl command
 * (installed by .ci/run) in a temporary directory.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificates {
  caPem: Buffer;
  serverCertificatePem: Buffer;
  serverKeyPem: Buffer;
  clientCertificatePem: Buffer;
  clientKeyPem: Buffer;
  /** A CA that signed nothing here, for "wrong CA" cases. */
  otherCaPem: Buffer;
}

export function makeTestCertificates(): TestCertificates {
  const directory = mkdtempSync(join(tmpdir(), 'granary-tls-'));
  const path = (name: string) => join(directory, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  try {
    for (const ca of ['ca', 'other-ca']) {
      openssl(
        'req',
        '-x509',
        ...ecKey,
        '-days',
        '2',
        '-subj',
        `/CN=${ca}`,
        '-keyout',
        path(`${ca}.key`),
        '-out',
        path(`${ca}.pem`),
      );
    }
    const issue = (name: string, subject: string, extensions: string) => {
      writeFileSync(path(`${name}.ext`), extensions);
      openssl('req', ...ecKey, '-keyout', path(`${name}.key`), '-out', path(`${name}.csr`), '-subj', subject);
      openssl(
        'x509',
        '-req',
        '-in',
        path(`${name}.csr`),
        '-CA',
        path('ca.pem'),
        '-CAkey',
        path('ca.key'),
        '-CAcreateserial',
        '-days',
        '2',
        '-out',
        path(`${name}.pem`),
        '-extfile',
        path(`${name}.ext`),
      );
    };
    issue('server', '/CN=localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    issue('client', '/CN=ci-client', 'extendedKeyUsage=clientAuth\n');
    return {
      caPem: readFileSync(path('ca.pem')),
      serverCertificatePem: readFileSync(path('server.pem')),
      serverKeyPem: readFileSync(path('server.key')),
      clientCertificatePem: readFileSync(path('client.pem')),
      clientKeyPem: readFileSync(path('client.key')),
      otherCaPem: readFileSync(path('other-ca.pem')),
    };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}
