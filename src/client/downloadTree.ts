/**
 * Writes a CAS directory tree to the local file system: files with their
 * executable bits, symlinks as symlinks, empty directories kept.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../digest/digest.js';
import { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type BlobStore, getBuffer } from '../storage/blobStore.js';
import { notFound } from '../util/status.js';

export async function downloadTree(cas: BlobStore, root: Digest, destination: string): Promise<number> {
  let files = 0;
  const walk = async (digest: Digest, path: string) => {
    await mkdir(path, { recursive: true });
    const data = digest.sizeBytes === 0 ? Buffer.alloc(0) : await getBuffer(cas, digest);
    if (!data) throw notFound(`directory ${digest.hash}/${digest.sizeBytes} is missing from the CAS`);
    const directory = Directory.decode(data);
    for (const file of directory.files) {
      if (!safe(file.name) || !file.digest) continue;
      const target = join(path, file.name);
      const mode = file.isExecutable ? 0o755 : 0o644;
      if (file.digest.sizeBytes === 0) {
        await writeFile(target, Buffer.alloc(0), { mode });
      } else {
        const blob = await cas.get(file.digest);
        if (!blob) throw notFound(`file ${file.digest.hash}/${file.digest.sizeBytes} is missing from the CAS`);
        await pipeline(blob.read(), createWriteStream(target, { mode }));
      }
      files++;
    }
    for (const link of directory.symlinks) {
      if (safe(link.name)) await symlink(link.target, join(path, link.name));
    }
    for (const child of directory.directories) {
      if (safe(child.name) && child.digest) await walk(child.digest, join(path, child.name));
    }
  };
  await walk(root, destination);
  return files;
}

function safe(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/');
}
