/**
 * The flags every Granary client shares to reach a secured farm (worker,
 * build/show/checkout/log, publish/provenance/push-dir): the CA that signed the
 * server's certificate, a client certificate for mTLS, and a token file (or
 * GRANARY_TOKEN). They become the DialOptions of every connection the command
 * opens.
 */
import { readFileSync } from 'node:fs';
import { environmentTokenSource, fileTokenSource } from '../client/tokenSource.js';
import type { DialOptions } from '../grpc/dial.js';
import { type FlagSpec, flag, type ParsedArgs, UsageError } from './args.js';

export const CLIENT_SECURITY_FLAGS: Record<string, FlagSpec> = {
  'tls-ca': {
    type: 'string',
    help: 'CA certificate (PEM) that signed the server certificate (grpcs://; default: system CAs)',
  },
  'tls-cert': { type: 'string', help: 'client certificate (PEM) for servers that require one (mTLS)' },
  'tls-key': { type: 'string', help: 'private key (PEM) of --tls-cert' },
  'token-file': {
    type: 'string',
    help: 'file holding the token sent as "authorization: Bearer" (default: the GRANARY_TOKEN variable)',
  },
};

/** The security settings of a client, from flags or a configuration file (file names). */
export interface ClientSecuritySettings {
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tokenFile?: string;
}

/** The settings given as flags. */
export function clientSecurityFlags(args: ParsedArgs): ClientSecuritySettings {
  return {
    tlsCa: flag(args, 'tls-ca'),
    tlsCert: flag(args, 'tls-cert'),
    tlsKey: flag(args, 'tls-key'),
    tokenFile: flag(args, 'token-file'),
  };
}

function readPem(path: string | undefined, what: string): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(`cannot read the ${what} ${path}: ${(error as Error).message}`);
  }
}

/** DialOptions for the settings; the token comes from the token file, else GRANARY_TOKEN. */
export function clientDialOptions(settings: ClientSecuritySettings, environment = process.env): DialOptions {
  if ((settings.tlsCert === undefined) !== (settings.tlsKey === undefined)) {
    throw new UsageError('--tls-cert and --tls-key go together');
  }
  const tls = {
    certificateAuthorityPem: readPem(settings.tlsCa, 'CA certificate'),
    clientCertificateChainPem: readPem(settings.tlsCert, 'client certificate'),
    clientPrivateKeyPem: readPem(settings.tlsKey, 'client key'),
  };
  let token: DialOptions['token'];
  try {
    token =
      settings.tokenFile !== undefined ? fileTokenSource(settings.tokenFile) : environmentTokenSource(environment);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const anyTls = Object.values(tls).some((value) => value !== undefined);
  return { ...(anyTls ? { tls } : {}), ...(token ? { token } : {}) };
}
