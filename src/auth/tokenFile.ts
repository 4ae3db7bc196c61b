/**
 * The access file of `--auth-tokens`: a YAML list of who may do what. Each entry
 * names a caller, one credential (a bearer token, the sha256 of one, or the
 * subject of an mTLS client certificate), its scopes and the instance-name
 * patterns they apply to:
 *
 *   - name: ci
 *     sha256: 3f1a...        # hex sha256 of the token (keeps the token out of the file)
 *     scopes: [read, cas-write, ac-write]
 *     instances: ["*"]
 *   - name: builders
 *     client-certificate: "O=Acme,CN=builder-1"
 *     scopes: [read, cas-write, bots]
 *     instances: ["ci/*"]
 *
 * Parsing is strict (unknown keys, scopes and duplicates are errors naming the
 * file and line) so a typo never quietly widens or narrows access.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isMap, isScalar, isSeq, type Node } from 'yaml';
import type { Scope } from '../context/requestContext.js';
import { parseYamlInput, type YamlInput, YamlInputError } from '../util/yamlInput.js';
import { isScope } from './access.js';
import { normalizeSubject } from './certificateSubject.js';

/** Shortest bearer token accepted in plain form: guessing must be out of reach. */
export const MINIMUM_TOKEN_LENGTH = 16;

/** How an entry's caller proves who it is. */
export type AccessCredential =
  | { readonly kind: 'token'; readonly sha256Hex: string; readonly plaintext: boolean }
  | { readonly kind: 'certificate'; readonly subject: string };

/** One caller of the access file. */
export interface AccessEntry {
  readonly name: string;
  readonly credential: AccessCredential;
  readonly scopes: ReadonlySet<Scope>;
  readonly instances: readonly string[];
  /** 1-based line of the entry, for messages. */
  readonly line: number;
}

/** The hex sha256 of a token, as the access file's `sha256:` holds it. */
export function tokenSha256(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

const KEYS = new Set(['name', 'token', 'sha256', 'client-certificate', 'scopes', 'instances']);

/** Parses the text of an access file; `source` names it in errors. */
export function parseAccessFile(text: string, source: string): AccessEntry[] {
  const fail = (line: number, message: string): never => {
    throw new Error(`${source}:${line}: ${message}`);
  };
  let input: YamlInput;
  try {
    input = parseYamlInput(text);
  } catch (error) {
    if (!(error instanceof YamlInputError)) throw error;
    return fail(error.line, error.detail);
  }
  const { lineOf } = input;
  const root = input.document.contents;
  if (root === null || (isScalar(root) && (root.value === null || root.value === ''))) return [];
  if (!isSeq(root)) fail(lineOf(root), 'expected a list of entries (- name: ..., scopes: [...], instances: [...])');
  const entries: AccessEntry[] = [];
  const names = new Set<string>();
  const credentials = new Map<string, string>();
  for (const item of (root as { items: unknown[] }).items) {
    const itemNode = item as Node;
    const line = lineOf(itemNode);
    if (!isMap(itemNode)) fail(line, 'each entry must be a mapping with name, a credential, scopes and instances');
    const fields = new Map<string, Node | null>();
    for (const pair of (itemNode as unknown as { items: { key: Node; value: Node | null }[] }).items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!KEYS.has(key)) fail(lineOf(pair.key), `unknown key "${key}" (expected ${[...KEYS].join(', ')})`);
      fields.set(key, pair.value);
    }
    const text = (key: string): string | undefined => {
      const node = fields.get(key);
      if (node === undefined) return undefined;
      if (!isScalar(node) || typeof node.value !== 'string' || node.value === '') {
        return fail(lineOf(node ?? itemNode), `"${key}" must be a non-empty string`);
      }
      return node.value;
    };
    const list = (key: string): string[] => {
      const node = fields.get(key);
      if (node === undefined) return fail(line, `entry has no "${key}"`);
      if (!isSeq(node) || node.items.length === 0)
        return fail(lineOf(node ?? itemNode), `"${key}" must be a non-empty list`);
      return node.items.map((element) => {
        if (!isScalar(element) || typeof element.value !== 'string') {
          return fail(lineOf(element as Node), `"${key}" must list strings`);
        }
        return element.value;
      });
    };
    const name = text('name') ?? fail(line, 'entry has no "name"');
    if (names.has(name)) fail(line, `a second entry is named "${name}"`);
    names.add(name);
    const given = ['token', 'sha256', 'client-certificate'].filter((key) => fields.has(key));
    if (given.length !== 1) fail(line, `entry "${name}" needs exactly one of token, sha256 or client-certificate`);
    let credential: AccessCredential;
    const token = text('token');
    const sha256 = text('sha256');
    const subject = text('client-certificate');
    if (token !== undefined) {
      if (token.length < MINIMUM_TOKEN_LENGTH || /\s/.test(token)) {
        fail(line, `the token of "${name}" must be at least ${MINIMUM_TOKEN_LENGTH} characters, without spaces`);
      }
      credential = { kind: 'token', sha256Hex: tokenSha256(token), plaintext: true };
    } else if (sha256 !== undefined) {
      if (!/^[0-9a-fA-F]{64}$/.test(sha256)) fail(line, `the sha256 of "${name}" must be 64 hexadecimal digits`);
      credential = { kind: 'token', sha256Hex: sha256.toLowerCase(), plaintext: false };
    } else {
      const normalized = normalizeSubject(subject as string);
      if (!normalized.includes('='))
        fail(line, `the client-certificate of "${name}" must be a subject like CN=builder`);
      credential = { kind: 'certificate', subject: normalized };
    }
    const key = credential.kind === 'token' ? `token:${credential.sha256Hex}` : `subject:${credential.subject}`;
    const previous = credentials.get(key);
    if (previous !== undefined) fail(line, `"${name}" has the same credential as "${previous}"`);
    credentials.set(key, name);
    const scopes = list('scopes');
    for (const scope of scopes) {
      if (!isScope(scope)) {
        fail(
          line,
          `"${name}": unknown scope "${scope}" (read, cas-write, ac-write, asset-write, execute, bots, admin)`,
        );
      }
    }
    entries.push({ name, credential, scopes: new Set(scopes as Scope[]), instances: list('instances'), line });
  }
  return entries;
}

/** An access file read from disk, with a warning when others can read tokens written in it in plain form. */
export interface LoadedAccessFile {
  readonly entries: AccessEntry[];
  readonly warnings: string[];
}

export async function loadAccessFile(path: string): Promise<LoadedAccessFile> {
  const [text, status] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
  const entries = parseAccessFile(text, path);
  const warnings: string[] = [];
  const plaintext = entries.filter((entry) => entry.credential.kind === 'token' && entry.credential.plaintext);
  if (plaintext.length > 0 && (status.mode & 0o077) !== 0) {
    warnings.push(
      `${path} holds tokens in plain form and other users may read it (mode ${(status.mode & 0o777).toString(8)}): chmod 600 it, or write sha256: entries`,
    );
  }
  return { entries, warnings };
}
