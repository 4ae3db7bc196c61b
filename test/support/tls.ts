/**
 * Throwaway certificates for TLS tests, made with the openssl command (installed
 * by .ci/run): certificate authorities that issue server certificates (for
 * 127.0.0.1 and localhost) and client certificates with chosen subjects, as
 * files (for real clients such as Bazel) and as PEM contents.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
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

/** A certificate and its key, as files and contents. */
export interface IssuedCertificate {
  certificateFile: string;
  keyFile: string;
  certificatePem: Buffer;
  keyPem: Buffer;
}

/** A certificate authority whose files live in a directory. */
export interface TestAuthority {
  caFile: string;
  caPem: Buffer;
  /** Issues a certificate for `subject` (e.g. `/CN=ci-client`), valid two days. */
  issue(name: string, subject: string, usage: 'server' | 'client'): IssuedCertificate;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Makes a CA named `name` in `directory` (files NAME.pem and NAME.key). */
export function makeTestAuthority(directory: string, name = 'ca'): TestAuthority {
  const path = (file: string) => join(directory, file);
  openssl(
    'req',
    '-x509',
    ...EC_KEY,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    path(`${name}.key`),
    '-out',
    path(`${name}.pem`),
  );
  return {
    caFile: path(`${name}.pem`),
    caPem: readFileSync(path(`${name}.pem`)),
    issue: (issued, subject, usage) => {
      const extensions =
        usage === 'server'
          ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'
          : 'extendedKeyUsage=clientAuth\n';
      writeFileSync(path(`${issued}.ext`), extensions);
      openssl('req', ...EC_KEY, '-keyout', path(`${issued}.key`), '-out', path(`${issued}.csr`), '-subj', subject);
      openssl(
        'x509',
        '-req',
        '-in',
        path(`${issued}.csr`),
        '-CA',
        path(`${name}.pem`),
        '-CAkey',
        path(`${name}.key`),
        '-CAcreateserial',
        '-days',
        '2',
        '-out',
        path(`${issued}.pem`),
        '-extfile',
        path(`${issued}.ext`),
      );
      return {
        certificateFile: path(`${issued}.pem`),
        keyFile: path(`${issued}.key`),
        certificatePem: readFileSync(path(`${issued}.pem`)),
        keyPem: readFileSync(path(`${issued}.key`)),
      };
    },
  };
}

export function makeTestCertificates(): TestCertificates {
  const directory = mkdtempSync(join(tmpdir(), 'granary-tls-'));
  try {
    const authority = makeTestAuthority(directory, 'ca');
    const other = makeTestAuthority(directory, 'other-ca');
    const server = authority.issue('server', '/CN=localhost', 'server');
    const client = authority.issue('client', '/CN=ci-client', 'client');
    return {
      caPem: authority.caPem,
      serverCertificatePem: server.certificatePem,
      serverKeyPem: server.keyPem,
      clientCertificatePem: client.certificatePem,
      clientKeyPem: client.keyPem,
      otherCaPem: other.caPem,
    };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/** What an HTTPS server answered. */
export interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface HttpsRequestOptions {
  /** The client certificate to present. */
  client?: Pick<IssuedCertificate, 'certificatePem' | 'keyPem'>;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** One request over HTTPS to a server certified for localhost, trusting `ca` (fetch cannot take a CA or a client certificate). */
export function httpsRequest(url: string, ca: Buffer, options: HttpsRequestOptions = {}): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const client = options.client && { cert: options.client.certificatePem, key: options.client.keyPem };
    const outgoing = request(
      url,
      {
        ca,
        servername: 'localhost',
        agent: false,
        method: options.method ?? 'GET',
        headers: options.headers,
        ...client,
      },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      },
    );
    outgoing.on('error', reject);
    outgoing.end(options.body);
  });
}
