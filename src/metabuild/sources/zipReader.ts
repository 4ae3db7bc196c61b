/**
 * Reading zip archives (stored and deflated members), for the zip source.
 *
 * The central directory at the end of the archive lists the members; each
 * member's data follows its local header. Zip64 archives, encrypted members
 * and other compression methods are refused with a clear error rather than
 * staged wrongly.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';

/** One member of a zip archive. */
export interface ZipMember {
  /** The name as stored ('dir/', 'dir/file'). */
  readonly name: string;
  readonly isDirectory: boolean;
  /** Reads and decompresses the member's content. */
  read(): Promise<Buffer>;
}

export class ZipError extends Error {
  override name = 'ZipError';
}

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_HEADER = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;

async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, position);
  if (bytesRead !== length) throw new ZipError('truncated zip archive');
  return buffer;
}

/** Lists the members of the zip archive at `path`; call `close` when done reading them. */
export async function openZip(path: string): Promise<{ members: ZipMember[]; close(): Promise<void> }> {
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    const tailLength = Math.min(size, 0xffff + 22);
    const tail = await readAt(handle, size - tailLength, tailLength);
    let end = -1;
    for (let index = tail.length - 22; index >= 0; index--) {
      if (tail.readUInt32LE(index) === END_OF_CENTRAL_DIRECTORY) {
        end = index;
        break;
      }
    }
    if (end < 0) throw new ZipError('not a zip archive (no end of central directory)');
    const count = tail.readUInt16LE(end + 10);
    const directorySize = tail.readUInt32LE(end + 12);
    const directoryOffset = tail.readUInt32LE(end + 16);
    if (count === 0xffff || directorySize === 0xffffffff || directoryOffset === 0xffffffff) {
      throw new ZipError('zip64 archives are not supported');
    }
    const directory = await readAt(handle, directoryOffset, directorySize);
    const members: ZipMember[] = [];
    let position = 0;
    for (let index = 0; index < count; index++) {
      if (directory.readUInt32LE(position) !== CENTRAL_HEADER) throw new ZipError('corrupt central directory');
      const flags = directory.readUInt16LE(position + 8);
      const method = directory.readUInt16LE(position + 10);
      const compressedSize = directory.readUInt32LE(position + 20);
      const uncompressedSize = directory.readUInt32LE(position + 24);
      const nameLength = directory.readUInt16LE(position + 28);
      const extraLength = directory.readUInt16LE(position + 30);
      const commentLength = directory.readUInt16LE(position + 32);
      const localOffset = directory.readUInt32LE(position + 42);
      const name = directory.toString(flags & 0x800 ? 'utf8' : 'latin1', position + 46, position + 46 + nameLength);
      position += 46 + nameLength + extraLength + commentLength;
      if (compressedSize === 0xffffffff || uncompressedSize === 0xffffffff || localOffset === 0xffffffff) {
        throw new ZipError(`member "${name}": zip64 archives are not supported`);
      }
      if (flags & 0x1) throw new ZipError(`member "${name}" is encrypted`);
      if (method !== 0 && method !== 8)
        throw new ZipError(`member "${name}" uses unsupported compression method ${method}`);
      members.push({
        name,
        isDirectory: name.endsWith('/'),
        read: async () => {
          const header = await readAt(handle, localOffset, 30);
          if (header.readUInt32LE(0) !== LOCAL_HEADER) throw new ZipError(`member "${name}": corrupt local header`);
          const dataOffset = localOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
          const data = compressedSize === 0 ? Buffer.alloc(0) : await readAt(handle, dataOffset, compressedSize);
          const content = method === 8 ? inflateRawSync(data) : data;
          if (content.length !== uncompressedSize) throw new ZipError(`member "${name}": size mismatch`);
          return content;
        },
      });
    }
    return { members, close: () => handle.close() };
  } catch (error) {
    await handle.close();
    throw error;
  }
}
