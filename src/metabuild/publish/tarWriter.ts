/**
 * A deterministic tar writer, so that publishing the same artifact twice gives
 * the same tarball and the same sha256: POSIX ustar headers, a pax extended
 * header only where ustar cannot hold a value (long or non-ASCII names and link
 * targets, sizes of 8 GiB and more), every time 0, owners 0/0 with empty names,
 * modes 0644/0755 for files, 0755 for directories, 0777 for symlinks. The caller
 * decides the order of entries; `artifactTarball` walks a CAS tree depth first,
 * names in byte order, as `tar --sort=name` does.
 */
import { createHash } from 'node:crypto';
import { backgroundContext } from '../../context/requestContext.js';
import type { Digest } from '../../digest/digest.js';
import type { BlobStore } from '../../storage/blobStore.js';
import { listTree } from '../../tree/list.js';
import { notFound } from '../../util/status.js';

export type TarWriterEntry =
  | {
      kind: 'file';
      path: string;
      size: number;
      executable: boolean;
      /** The content, read once, exactly `size` bytes. */
      content: () => AsyncIterable<Buffer> | Iterable<Buffer>;
    }
  | { kind: 'directory'; path: string }
  | { kind: 'symlink'; path: string; target: string };

const BLOCK = 512;
/** The largest size an 11-digit octal field holds. */
const MAX_OCTAL_SIZE = 0o77777777777;

function isPlainAscii(text: string): boolean {
  return /^[\x20-\x7e]*$/.test(text);
}

function octal(value: number, length: number): string {
  return `${value.toString(8).padStart(length - 1, '0')}\0`;
}

/** One pax record: "LENGTH key=value\n", where LENGTH counts itself. */
export function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyBytes = Buffer.byteLength(body, 'utf8');
  let length = bodyBytes + 1;
  while (String(length).length + bodyBytes !== length) length = String(length).length + bodyBytes;
  return Buffer.from(`${length}${body}`, 'utf8');
}

function header(name: string, typeflag: string, size: number, mode: number, linkName: string): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  block.write(octal(mode, 8), 100, 'latin1');
  block.write(octal(0, 8), 108, 'latin1'); // uid
  block.write(octal(0, 8), 116, 'latin1'); // gid
  block.write(octal(size, 12), 124, 'latin1');
  block.write(octal(0, 12), 136, 'latin1'); // mtime
  block.write(typeflag, 156, 'latin1');
  block.write(linkName, 157, 100, 'utf8');
  block.write('ustar\0', 257, 'latin1');
  block.write('00', 263, 'latin1');
  // uname, gname (empty), devmajor, devminor
  block.write(octal(0, 8), 329, 'latin1');
  block.write(octal(0, 8), 337, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

function padding(length: number): Buffer {
  return Buffer.alloc((BLOCK - (length % BLOCK)) % BLOCK);
}

/** The header blocks of one entry (a pax header first when ustar cannot hold it). */
export function entryHeader(entry: TarWriterEntry): Buffer {
  const name = entry.kind === 'directory' ? `${entry.path}/` : entry.path;
  const linkName = entry.kind === 'symlink' ? entry.target : '';
  const size = entry.kind === 'file' ? entry.size : 0;
  const records: Buffer[] = [];
  if (Buffer.byteLength(name) > 100 || !isPlainAscii(name)) records.push(paxRecord('path', name));
  if (Buffer.byteLength(linkName) > 100 || !isPlainAscii(linkName)) records.push(paxRecord('linkpath', linkName));
  if (size > MAX_OCTAL_SIZE) records.push(paxRecord('size', String(size)));
  const typeflag = entry.kind === 'file' ? '0' : entry.kind === 'directory' ? '5' : '2';
  const mode = entry.kind === 'directory' ? 0o755 : entry.kind === 'symlink' ? 0o777 : entry.executable ? 0o755 : 0o644;
  const main = header(
    asciiFallback(name, 100),
    typeflag,
    Math.min(size, MAX_OCTAL_SIZE),
    mode,
    asciiFallback(linkName, 100),
  );
  if (records.length === 0) return main;
  const body = Buffer.concat(records);
  const paxName = asciiFallback(`PaxHeaders/${name.replace(/\/$/, '').split('/').pop() ?? ''}`, 100);
  return Buffer.concat([header(paxName, 'x', body.length, 0o644, ''), body, padding(body.length), main]);
}

/** A value for a fixed-size ustar field whose real value sits in a pax record. */
function asciiFallback(text: string, length: number): string {
  const ascii = text.replace(/[^\x20-\x7e]/g, '_');
  return ascii.length <= length ? ascii : ascii.slice(0, length);
}

/** The archive's bytes, entry by entry, ending with two zero blocks. */
export async function* writeTar(
  entries: AsyncIterable<TarWriterEntry> | Iterable<TarWriterEntry>,
): AsyncGenerator<Buffer> {
  for await (const entry of entries) {
    yield entryHeader(entry);
    if (entry.kind !== 'file') continue;
    let written = 0;
    for await (const chunk of entry.content()) {
      written += chunk.length;
      if (written > entry.size) throw new Error(`${entry.path}: more data than its size ${entry.size}`);
      yield chunk;
    }
    if (written !== entry.size) throw new Error(`${entry.path}: ${written} bytes of ${entry.size}`);
    yield padding(entry.size);
  }
  yield Buffer.alloc(2 * BLOCK);
}

/** The entries of a CAS directory tree, its root's contents at the top level. */
export async function* treeEntries(cas: BlobStore, root: Digest): AsyncGenerator<TarWriterEntry> {
  for (const entry of await listTree(backgroundContext(), cas, root)) {
    if (entry.kind === 'directory') yield { kind: 'directory', path: entry.path };
    else if (entry.kind === 'symlink') yield { kind: 'symlink', path: entry.path, target: entry.target };
    else {
      const digest = entry.digest;
      yield {
        kind: 'file',
        path: entry.path,
        size: digest.sizeBytes,
        executable: entry.executable,
        content: async function* () {
          if (digest.sizeBytes === 0) return;
          const blob = await cas.get(backgroundContext(), digest);
          if (!blob) throw notFound(`${entry.path}: blob ${digest.hash}/${digest.sizeBytes} is missing from the CAS`);
          yield* blob.read();
        },
      };
    }
  }
}

export interface Tarball {
  data: Buffer;
  /** Lowercase hex sha256 of `data`. */
  sha256: string;
}

/** The deterministic tarball of a CAS tree, in memory. */
export async function artifactTarball(cas: BlobStore, root: Digest): Promise<Tarball> {
  const chunks: Buffer[] = [];
  const hash = createHash('sha256');
  for await (const chunk of writeTar(treeEntries(cas, root))) {
    hash.update(chunk);
    chunks.push(chunk);
  }
  return { data: Buffer.concat(chunks), sha256: hash.digest('hex') };
}
