/**
 * A client certificate's subject as Granary names it: its attributes in the
 * certificate's order, comma-separated (`O=Acme,CN=ci-client`), the form
 * `openssl x509 -noout -subject` prints once its spaces after commas are
 * dropped. mTLS callers are identified by it, and the token file names them by it.
 */
import { X509Certificate } from 'node:crypto';

/** Splits a subject at unescaped commas and newlines, trimming each attribute. */
function attributesOf(subject: string): string[] {
  const attributes: string[] = [];
  let current = '';
  for (let index = 0; index < subject.length; index += 1) {
    const character = subject[index] as string;
    if (character === '\\' && index + 1 < subject.length) {
      current += character + (subject[index + 1] as string);
      index += 1;
    } else if (character === ',' || character === '\n') {
      attributes.push(current.trim());
      current = '';
    } else {
      current += character;
    }
  }
  attributes.push(current.trim());
  return attributes.filter((attribute) => attribute !== '');
}

/** The canonical form of a subject written by a person (`CN=a, O=b` and `CN=a,O=b` are one subject). */
export function normalizeSubject(subject: string): string {
  return attributesOf(subject).join(',');
}

/** The subject of a DER-encoded certificate, in canonical form. */
export function subjectOfCertificate(der: Buffer): string {
  return normalizeSubject(new X509Certificate(der).subject);
}
