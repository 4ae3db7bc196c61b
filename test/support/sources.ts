/** Helpers for the sources tests: hand-made tar archives, temporary directories, running tools. */
import { spawnSync } from 'node:child_process';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RawMember {
  name: string;
  /** Typeflag: '0' file, '1' hard link, '2' symlink, '5' directory, '3' char device, ... */
  type?: string;
  data?: Buffer | string;
  mode?: number;
  linkName?: string;
  /** Emit a pax header carrying the name (for long or unusual names). */
  pax?: boolean;
}

function octal(value: number, length: number): string {
  return `${value.toString(8).padStart(length - 1, '0')}\0`;
}

function header(name: string, type: string, size: number, mode: number, linkName: string): Buffer {
  const block = Buffer.alloc(512);
  block.write(name.slice(0, 100), 0, 'utf8');
  block.write(octal(mode, 8), 100, 'latin1');
  block.write(octal(0, 8), 108, 'latin1');
  block.write(octal(0, 8), 116, 'latin1');
  block.write(octal(size, 12), 124, 'latin1');
  block.write(octal(0, 12), 136, 'latin1');
  block.write(type, 156, 'latin1');
  block.write(linkName.slice(0, 100), 157, 'utf8');
  block.write('ustar\0', 257, 'latin1');
  block.write('00', 263, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

const pad = (length: number) => Buffer.alloc((512 - (length % 512)) % 512);

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = body.length + 1;
  while (`${length}${body}`.length !== length) length = `${length}${body}`.length;
  return `${length}${body}`;
}

/** Builds an uncompressed tar archive from raw members, no checks at all. */
export function makeTar(members: readonly RawMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const data = m.data === undefined ? Buffer.alloc(0) : Buffer.from(m.data);
    const type = m.type ?? '0';
    if (m.pax) {
      const records = Buffer.from(paxRecord('path', m.name));
      parts.push(header('PaxHeader', 'x', records.length, 0o644, ''), records, pad(records.length));
    }
    parts.push(header(m.name, type, data.length, m.mode ?? (type === '5' ? 0o755 : 0o644), m.linkName ?? ''));
    parts.push(data, pad(data.length));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export async function* chunksOf(data: Buffer, size = 700): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await realpath(await mkdtemp(join(tmpdir(), 'granary-sources-')));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs a command synchronously and returns its stdout; throws with stderr on failure. */
export function run(command: string, args: string[], cwd: string, env: Record<string, string> = {}): string {
  const result = spawnSync(command, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.status}): ${result.stderr}${result.error ?? ''}`);
  }
  return result.stdout;
}
