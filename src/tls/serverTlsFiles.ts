/**
 * A server's TLS certificate, key and client CA read from files and read again
 * when the files change (certificate renewal without a restart): every file is
 * polled (stat, so renames and symlink swaps as done by certbot, cert-manager or
 * Kubernetes secrets are seen), and reload() re-reads on demand (SIGHUP). A new
 * set is checked (the key matches the certificate, everything parses) before any
 * listener sees it; a broken or half-written set is reported and the previous
 * one stays in use. The gRPC server factory and the HTTP port both subscribe.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';

/** A listener's certificate (PEM), and the CA that client certificates must chain to for mTLS. */
export interface ServerTlsMaterial {
  readonly certificateChainPem: Buffer;
  readonly privateKeyPem: Buffer;
  /** When set, every client must present a certificate signed by this CA (mTLS). */
  readonly clientCertificateAuthorityPem?: Buffer;
}

export interface ServerTlsFiles {
  readonly certificateFile: string;
  readonly keyFile: string;
  readonly clientCertificateAuthorityFile?: string;
}

/** What start-up and reload messages say about a certificate. */
export interface CertificateSummary {
  readonly subject: string;
  readonly validToMs: number;
}

/** Checks that the material makes a usable TLS context; throws an Error saying what is wrong. */
export function checkServerTlsMaterial(material: ServerTlsMaterial): CertificateSummary {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(material.certificateChainPem);
  } catch (error) {
    throw new Error(`the certificate is not a PEM certificate (${(error as Error).message})`);
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(material.privateKeyPem);
  } catch (error) {
    throw new Error(`the private key is not a PEM private key (${(error as Error).message})`);
  }
  if (!certificate.checkPrivateKey(key)) throw new Error('the private key does not belong to the certificate');
  if (material.clientCertificateAuthorityPem) {
    try {
      new X509Certificate(material.clientCertificateAuthorityPem);
    } catch (error) {
      throw new Error(`the client CA is not a PEM certificate (${(error as Error).message})`);
    }
  }
  createSecureContext(secureContextOptionsOf(material));
  return { subject: certificate.subject.replaceAll('\n', ','), validToMs: Date.parse(certificate.validTo) };
}

/** The material as node:tls options (a TLS context's certificate, key and client CA). */
export function secureContextOptionsOf(material: ServerTlsMaterial): SecureContextOptions {
  return {
    cert: material.certificateChainPem,
    key: material.privateKeyPem,
    ca: material.clientCertificateAuthorityPem,
  };
}

function sameMaterial(a: ServerTlsMaterial, b: ServerTlsMaterial): boolean {
  const equal = (x: Buffer | undefined, y: Buffer | undefined) => (x && y ? x.equals(y) : x === y);
  return (
    equal(a.certificateChainPem, b.certificateChainPem) &&
    equal(a.privateKeyPem, b.privateKeyPem) &&
    equal(a.clientCertificateAuthorityPem, b.clientCertificateAuthorityPem)
  );
}

/** What the poller compares between two looks at a file. */
interface FileStatus {
  readonly mtimeMs: number;
  readonly ino: number;
  readonly size: number;
}

export interface ReloadingServerTlsOptions {
  /** How often the files are looked at (default 2 s). */
  readonly pollIntervalMs?: number;
  readonly log?: (line: string) => void;
}

/** The current TLS material of a server, kept in step with its files. */
export class ReloadingServerTls {
  private readonly listeners = new Set<(material: ServerTlsMaterial) => void>();
  private readonly watched: string[];
  private readonly onChange: (current: FileStatus, previous: FileStatus) => void;
  private pending: NodeJS.Timeout | undefined;
  private reloading: Promise<boolean> = Promise.resolve(false);
  private closed = false;

  private constructor(
    private readonly files: ServerTlsFiles,
    private material: ServerTlsMaterial,
    private readonly options: ReloadingServerTlsOptions,
  ) {
    this.watched = [files.certificateFile, files.keyFile, files.clientCertificateAuthorityFile].filter(
      (file): file is string => file !== undefined,
    );
    this.onChange = (current, previous) => {
      if (current.mtimeMs === previous.mtimeMs && current.ino === previous.ino && current.size === previous.size)
        return;
      // Writers often replace the certificate and the key one after the other: wait for both.
      clearTimeout(this.pending);
      this.pending = setTimeout(() => void this.reload(), 200);
      this.pending.unref();
    };
    for (const file of this.watched) {
      watchFile(file, { interval: options.pollIntervalMs ?? 2000, persistent: false }, this.onChange);
    }
  }

  /** Reads and checks the files; throws (naming the file) when they do not make a usable certificate. */
  static async open(files: ServerTlsFiles, options: ReloadingServerTlsOptions = {}): Promise<ReloadingServerTls> {
    const material = await ReloadingServerTls.read(files);
    return new ReloadingServerTls(files, material, options);
  }

  private static async read(files: ServerTlsFiles): Promise<ServerTlsMaterial> {
    const readOne = async (file: string) => {
      try {
        return await readFile(file);
      } catch (error) {
        throw new Error(`cannot read ${file}: ${(error as Error).message}`);
      }
    };
    const [certificateChainPem, privateKeyPem, clientCertificateAuthorityPem] = await Promise.all([
      readOne(files.certificateFile),
      readOne(files.keyFile),
      files.clientCertificateAuthorityFile === undefined ? undefined : readOne(files.clientCertificateAuthorityFile),
    ]);
    const material = { certificateChainPem, privateKeyPem, clientCertificateAuthorityPem };
    try {
      checkServerTlsMaterial(material);
    } catch (error) {
      const names = [files.certificateFile, files.keyFile, files.clientCertificateAuthorityFile].filter(Boolean);
      throw new Error(`${names.join(', ')}: ${(error as Error).message}`);
    }
    return material;
  }

  /** The material in force. */
  current(): ServerTlsMaterial {
    return this.material;
  }

  /** Summary of the certificate in force. */
  summary(): CertificateSummary {
    return checkServerTlsMaterial(this.material);
  }

  /** Calls `listener` with every new set of material; returns the unsubscribe. */
  subscribe(listener: (material: ServerTlsMaterial) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Reads the files again; a changed, valid set replaces the current one (true).
   * Unchanged or invalid files leave everything as it is (false; invalid ones are logged).
   */
  reload(): Promise<boolean> {
    this.reloading = this.reloading.then(async () => {
      if (this.closed) return false;
      let material: ServerTlsMaterial;
      try {
        material = await ReloadingServerTls.read(this.files);
      } catch (error) {
        this.options.log?.(`TLS files not reloaded, keeping the previous certificate: ${(error as Error).message}`);
        return false;
      }
      if (sameMaterial(material, this.material)) return false;
      this.material = material;
      const summary = checkServerTlsMaterial(material);
      this.options.log?.(
        `TLS certificate reloaded (${summary.subject}, valid until ${new Date(summary.validToMs).toISOString()})`,
      );
      for (const listener of this.listeners) listener(material);
      return true;
    });
    return this.reloading;
  }

  /** Stops watching the files. */
  close(): void {
    this.closed = true;
    clearTimeout(this.pending);
    for (const file of this.watched) unwatchFile(file, this.onChange);
  }
}
