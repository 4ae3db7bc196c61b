/**
 * A streaming tar reader (POSIX ustar, pax and GNU long names) and an importer
 * that turns an archive straight into a CAS directory tree, without extracting
 * anything to disk. Because nothing is written to the host, no member can escape
 * the root there; members are still checked so the tree cannot be built from
 * absolute names, ".." components or paths through symlinks, which are all
 * rejected as unsafe. Compressed archives (gzip natively; bzip2, xz and zstd
 * through the system tools) are recognised by their magic bytes.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { backgroundContext } from '../../context/requestContext.js';
import type { Digest, DigestFunction } from '../../digest/digest.js';
import type { BlobStore } from '../../storage/blobStore.js';
import { TreeEditor } from '../../tree/editor.js';
import { BlobUploader } from './blobUploader.js';
import { ByteReader, EndOfInputError } from './byteReader.js';

export class TarError extends Error {
  override name = 'TarError';
}

export type TarMemberType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

export interface TarHeader {
  /** The member name as stored (after pax/GNU long-name handling). */
  name: string;
  type: TarMemberType;
  /** The raw typeflag character. */
  typeflag: string;
  mode: number;
  size: number;
  /** Symlink target or hard link source. */
  linkName: string;
}

export interface TarMember {
  header: TarHeader;
  /** The member's data (size bytes); what is not read is skipped. */
  body: AsyncIterable<Buffer>;
}

const BLOCK = 512;

function cString(block: Buffer, start: number, length: number): string {
  const end = block.indexOf(0, start);
  return block.toString('utf8', start, end < 0 || end > start + length ? start + length : end);
}

function parseNumber(block: Buffer, start: number, length: number, field: string): number {
  const first = block[start] as number;
  if (first & 0x80) {
    // GNU base-256: big-endian, first byte's high bit set.
    if (first === 0xff) throw new TarError(`negative ${field} in tar header`);
    let value = first & 0x7f;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + (block[i] as number);
    if (!Number.isSafeInteger(value)) throw new TarError(`${field} too large in tar header`);
    return value;
  }
  const text = block
    .toString('latin1', start, start + length)
    .replace(/\0.*$/s, '')
    .trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarError(`invalid ${field} "${text}" in tar header`);
  return Number.parseInt(text, 8);
}

function checksumOk(block: Buffer): boolean {
  let stored: number;
  try {
    stored = parseNumber(block, 148, 8, 'checksum');
  } catch {
    return false;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

function parsePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space < 0) break;
    const length = Number.parseInt(data.toString('latin1', offset, space), 10);
    if (!Number.isSafeInteger(length) || length <= 0 || offset + length > data.length) {
      throw new TarError('malformed pax extended header');
    }
    const record = data.toString('utf8', space + 1, offset + length - 1);
    const equals = record.indexOf('=');
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1);
    offset += length;
  }
  return records;
}

function memberType(typeflag: string): TarMemberType {
  switch (typeflag) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '5':
    case 'D':
      return 'directory';
    default:
      return 'other';
  }
}

/** Reads the members of an uncompressed tar stream. Each body must be used (or left) before the next member. */
export async function* readTar(input: AsyncIterable<Buffer>): AsyncGenerator<TarMember> {
  const reader = new ByteReader(input);
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  const readBody = async (size: number) => {
    const data = await reader.read(size);
    if (data.length < size) throw new TarError('truncated tar archive');
    await reader.skip(padding(size));
    return data;
  };
  try {
    for (let index = 0; ; index++) {
      const block = await reader.read(BLOCK);
      if (block.length === 0) return;
      if (block.length < BLOCK) throw new TarError('truncated tar archive');
      if (block.every((b) => b === 0)) return;
      if (!checksumOk(block)) {
        throw new TarError(
          index === 0 ? 'not a tar archive (bad header checksum)' : 'corrupt tar header (bad checksum)',
        );
      }
      const typeflag = String.fromCharCode(block[156] as number);
      let size = parseNumber(block, 124, 12, 'size');
      if (typeflag === 'L' || typeflag === 'K') {
        const value = cString(await readBody(size), 0, size);
        if (typeflag === 'L') longName = value;
        else longLink = value;
        continue;
      }
      if (typeflag === 'x') {
        pax = { ...pax, ...parsePax(await readBody(size)) };
        continue;
      }
      if (typeflag === 'g') {
        await readBody(size); // global headers (git archive's commit comment) carry nothing we use
        continue;
      }
      if (
        typeflag === 'S' ||
        typeflag === 'M' ||
        typeflag === 'N' ||
        Object.keys(pax).some((k) => k.startsWith('GNU.sparse'))
      ) {
        throw new TarError(`unsupported tar member type "${typeflag}" (sparse or multi-volume archive)`);
      }
      const magic = block.toString('latin1', 257, 263);
      let name = cString(block, 0, 100);
      if (magic === 'ustar\0') {
        const prefix = cString(block, 345, 155);
        if (prefix) name = `${prefix}/${name}`;
      }
      if (longName !== undefined) name = longName;
      if (pax.path !== undefined) name = pax.path;
      let linkName = cString(block, 157, 100);
      if (longLink !== undefined) linkName = longLink;
      if (pax.linkpath !== undefined) linkName = pax.linkpath;
      if (pax.size !== undefined) {
        size = Number(pax.size);
        if (!Number.isSafeInteger(size) || size < 0) throw new TarError(`invalid pax size "${pax.size}"`);
      }
      longName = undefined;
      longLink = undefined;
      pax = {};
      const type = memberType(typeflag);
      // Like Python's tarfile: links, directories and devices carry no data, whatever the size says.
      const dataSize = type === 'file' || type === 'other' || typeflag === 'D' ? size : 0;
      const header: TarHeader = {
        name,
        type,
        typeflag,
        mode: parseNumber(block, 100, 8, 'mode'),
        size: dataSize,
        linkName,
      };
      let consumed = 0;
      const body = (async function* () {
        try {
          for await (const piece of reader.stream(dataSize - consumed)) {
            consumed += piece.length;
            yield piece;
          }
        } catch (error) {
          throw error instanceof EndOfInputError ? new TarError('truncated tar archive') : error;
        }
      })();
      yield { header, body };
      if (consumed < dataSize) await reader.skip(dataSize - consumed);
      await reader.skip(padding(dataSize));
    }
  } catch (error) {
    if (error instanceof EndOfInputError) {
      throw new TarError('truncated tar archive');
    }
    throw error;
  } finally {
    await reader.close();
  }
}

const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

/**
 * Normalises a member name to tree path components. Leading "./" and trailing
 * "/" are dropped; absolute names and ".." components are unsafe.
 */
export function memberPath(name: string): string[] {
  if (name.startsWith('/')) throw new TarError(`unsafe tar member "${name}": absolute path`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new TarError(`unsafe tar member "${name}": ".." escapes the root`);
  return parts;
}

export interface TarImportOptions {
  digestFunction?: DigestFunction;
  /** For spilling large members while uploading. */
  tempDir?: string;
  /**
   * Which mode bits make a file executable: any execute bit (0o111, the
   * default, as BuildStream 1 extracts) or the owner's (0o100, BuildStream 2).
   */
  executableBits?: number;
}

export interface TarImport {
  /** Root of the whole archive. */
  editor: TreeEditor;
  /** Members that cannot be represented (devices, FIFOs), skipped. */
  skipped: string[];
}

/**
 * Reads an archive into a TreeEditor, uploading file contents as it goes.
 * Call editor.finish(path) for the digest of the whole tree or of a base
 * directory. Later members replace earlier ones at the same path, as when
 * extracting; hard links must point to an earlier regular file.
 */
export async function importTar(
  cas: BlobStore | undefined,
  input: AsyncIterable<Buffer>,
  options: TarImportOptions = {},
): Promise<TarImport> {
  const editor = TreeEditor.create(backgroundContext(), cas, options.digestFunction);
  const uploader = new BlobUploader(cas, { digestFunction: options.digestFunction, tempDir: options.tempDir });
  const files = new Map<string, { digest: Digest; executable: boolean }>();
  const skipped: string[] = [];
  try {
    for await (const { header, body } of readTar(input)) {
      const parts = memberPath(header.name);
      const path = parts.join('/');
      switch (header.type) {
        case 'directory':
          if (parts.length > 0) await editor.makeDirectory(path).catch(rethrowUnsafe(header.name));
          break;
        case 'file': {
          if (parts.length === 0) throw new TarError(`tar member "${header.name}" is a file at the root`);
          const digest = await uploader.addStream(body);
          const executable = (header.mode & (options.executableBits ?? 0o111)) !== 0;
          await editor.putFile(path, { digest, executable }).catch(rethrowUnsafe(header.name));
          files.set(path, { digest, executable });
          break;
        }
        case 'symlink':
          if (parts.length === 0) throw new TarError(`tar member "${header.name}" is a symlink at the root`);
          await editor.putSymlink(path, header.linkName).catch(rethrowUnsafe(header.name));
          files.delete(path);
          break;
        case 'hardlink': {
          if (parts.length === 0) throw new TarError(`tar member "${header.name}" is a hard link at the root`);
          let source: string;
          try {
            source = memberPath(header.linkName).join('/');
          } catch {
            throw new TarError(
              `unsafe tar member "${header.name}": hard link to "${header.linkName}" escapes the root`,
            );
          }
          const file = files.get(source);
          if (!file) {
            throw new TarError(
              `tar member "${header.name}" is a hard link to "${header.linkName}", which is not an earlier file`,
            );
          }
          await editor.putFile(path, file).catch(rethrowUnsafe(header.name));
          files.set(path, file);
          break;
        }
        default:
          // Cannot be represented; its parent directories still exist, as after extraction.
          if (parts.length > 1)
            await editor.makeDirectory(parts.slice(0, -1).join('/')).catch(rethrowUnsafe(header.name));
          skipped.push(path);
      }
    }
    await uploader.close();
  } catch (error) {
    await uploader.dispose();
    throw error;
  }
  return { editor, skipped };
}

function rethrowUnsafe(name: string) {
  return (error: unknown): never => {
    const message = error instanceof Error ? error.message : String(error);
    throw new TarError(`unsafe tar member "${name}": ${message}`);
  };
}

/**
 * The decompressed content of an archive file: gzip through zlib; bzip2, xz and
 * zstd through the system tools; anything else is passed through as it is.
 */
export async function* openArchive(path: string): AsyncGenerator<Buffer> {
  const handle = await open(path, 'r');
  const magic = Buffer.alloc(6);
  try {
    await handle.read(magic, 0, 6, 0);
  } finally {
    await handle.close();
  }
  if (magic[0] === 0x1f && magic[1] === 0x8b) {
    yield* createReadStream(path).pipe(createGunzip()) as AsyncIterable<Buffer>;
    return;
  }
  const tool =
    magic.toString('latin1', 0, 3) === 'BZh'
      ? 'bzip2'
      : magic.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))
        ? 'xz'
        : magic.readUInt32LE(0) === 0xfd2fb528
          ? 'zstd'
          : undefined;
  if (!tool) {
    yield* createReadStream(path) as AsyncIterable<Buffer>;
    return;
  }
  yield* decompressWith(tool, path);
}

async function* decompressWith(tool: string, path: string): AsyncGenerator<Buffer> {
  const child = spawn(tool, ['-dc', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: Buffer[] = [];
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  let finished = false;
  try {
    yield* child.stdout as AsyncIterable<Buffer>;
    const code = await exited.catch((error: Error) => {
      throw new TarError(`cannot run ${tool} to decompress ${path}: ${error.message}`);
    });
    if (code !== 0) {
      throw new TarError(`${tool} failed to decompress ${path}: ${Buffer.concat(stderr).toString().trim()}`);
    }
    finished = true;
  } finally {
    if (!finished) {
      child.kill();
      await exited.catch(() => undefined);
    }
  }
}
