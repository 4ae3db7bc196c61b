import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { compressibleData } from '../../test/support/compression.js';
import { Code, StatusError } from '../util/status.js';
import {
  compressBuffer,
  createCompressStream,
  createDecompressStream,
  decompressBuffer,
  ZstdDecoder,
  ZstdEncoder,
  zstdAvailable,
  zstdUnavailableReason,
  zstdVersion,
} from './zstd.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const skip = zstdAvailable() ? false : `zstd is unavailable: ${zstdUnavailableReason()}`;

function* chunksOf(data: Buffer, size: number): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of source) out.push(chunk);
  return out;
}

function assertInvalid(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof StatusError, `expected a StatusError, got ${String(error)}`);
    assert.equal(Code[error.code], 'INVALID_ARGUMENT');
    assert.match(error.message, pattern);
    return true;
  });
}

describe('zstd codec', { skip }, () => {
  it('loads libzstd', () => {
    assert.match(zstdVersion() ?? '', /^1\.\d+\.\d+$/);
  });

  it('round-trips through the async transforms with any chunking, in bounded output chunks', async () => {
    const data = compressibleData(3 * MiB + 123);
    for (const [compressChunk, decompressChunk] of [
      [MiB, 64 * KiB],
      [4 * KiB, 1],
      [7 * KiB + 3, 16 * KiB],
    ] as const) {
      const compressed = await collect(createCompressStream({ level: 3 })(chunksOf(data, compressChunk)));
      const whole = Buffer.concat(compressed);
      assert.ok(whole.length < data.length * 0.75, `compresses (${whole.length} of ${data.length})`);
      // One-byte feeding is slow for megabytes; feed a prefix only in that case.
      const input = decompressChunk === 1 ? compressBuffer(data.subarray(0, 200 * KiB)) : whole;
      const expected = decompressChunk === 1 ? data.subarray(0, 200 * KiB) : data;
      const output = await collect(createDecompressStream()(chunksOf(input, decompressChunk)));
      assert.ok(Buffer.concat(output).equals(expected), `chunks ${compressChunk}/${decompressChunk}`);
      for (const chunk of [...compressed, ...output]) assert.ok(chunk.length <= 256 * KiB, 'chunks stay bounded');
    }
  });

  it('ends cleanly when the output fills its last buffer exactly', () => {
    for (const size of [256 * KiB, 512 * KiB, 256 * KiB - 1, 256 * KiB + 1]) {
      const data = compressibleData(size);
      assert.ok(decompressBuffer(compressBuffer(data), size).equals(data), `${size} bytes`);
    }
  });

  it('works as stream.pipeline steps', async () => {
    const data = compressibleData(MiB);
    const out: Buffer[] = [];
    await pipeline(
      Readable.from(chunksOf(data, 10 * KiB)),
      createCompressStream(),
      createDecompressStream(),
      async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) out.push(chunk);
      },
    );
    assert.ok(Buffer.concat(out).equals(data));
  });

  it('decompresses concatenated frames and the empty frame', () => {
    const a = compressibleData(100 * KiB);
    const b = randomBytes(10);
    const joined = Buffer.concat([compressBuffer(a), compressBuffer(Buffer.alloc(0)), compressBuffer(b)]);
    assert.ok(decompressBuffer(joined, a.length + b.length).equals(Buffer.concat([a, b])));
    assert.equal(decompressBuffer(compressBuffer(Buffer.alloc(0)), 0).length, 0);
    assert.equal(decompressBuffer(Buffer.alloc(0), 0).length, 0, 'no frames at all is an empty stream');
  });

  it('records the pledged size in the frame header', () => {
    const data = randomBytes(1000);
    const encoder = new ZstdEncoder({ pledgedSizeBytes: data.length });
    const frame = Buffer.concat([...encoder.push(data), ...encoder.end()]);
    // Frame_Header_Descriptor: a Frame_Content_Size_flag or Single_Segment_flag is set.
    assert.notEqual((frame[4] as number) & 0xe0, 0);
    assert.ok(decompressBuffer(frame, 1000).equals(data));
  });

  it('rejects corrupt and truncated input with INVALID_ARGUMENT', () => {
    assertInvalid(() => decompressBuffer(Buffer.from('definitely not zstd'), 1000), /corrupt zstd data/);
    const frame = compressBuffer(compressibleData(50 * KiB));
    assertInvalid(() => decompressBuffer(frame.subarray(0, frame.length - 10), MiB), /middle of a frame/);
    const badMagic = Buffer.from(frame);
    badMagic[0] ^= 0xff;
    assertInvalid(() => decompressBuffer(badMagic, MiB), /corrupt zstd data/);
    // Damage inside a block may decode to wrong bytes without an error (no frame checksum):
    // that is what the digest check after decompression is for.
    assertInvalid(() => decompressBuffer(Buffer.concat([frame, Buffer.from('trailing')]), MiB), /corrupt zstd data/);
  });

  it('stops a decompression bomb at the limit without expanding it', () => {
    const encoder = new ZstdEncoder({ level: 3 });
    const zeros = Buffer.alloc(MiB);
    const parts: Buffer[] = [];
    for (let i = 0; i < 256; i++) parts.push(...encoder.push(zeros));
    parts.push(...encoder.end());
    const bomb = Buffer.concat(parts); // 256 MiB of zeros in a few KiB
    assert.ok(bomb.length < 64 * KiB);
    assertInvalid(() => decompressBuffer(bomb, 10 * MiB), /more than 10485760 bytes/);
    // The decoder is lazy: pulling one chunk decompresses one buffer's worth.
    const decoder = new ZstdDecoder();
    const first = decoder.push(bomb).next();
    assert.equal(first.done, false);
    assert.ok((first.value as Buffer).length <= 256 * KiB);
  });

  it('interoperates with the zstd command-line tool', (t) => {
    const probe = spawnSync('zstd', ['--version']);
    if (probe.error || probe.status !== 0) {
      t.skip('the zstd command is not installed');
      return;
    }
    const data = compressibleData(2 * MiB);
    const ours = spawnSync('zstd', ['-d', '-c'], { input: compressBuffer(data), maxBuffer: 64 * MiB });
    assert.equal(ours.status, 0, ours.stderr.toString());
    assert.ok(ours.stdout.equals(data), 'the zstd tool decompresses our frames');
    const theirs = spawnSync('zstd', ['-19', '-c'], { input: data, maxBuffer: 64 * MiB });
    assert.equal(theirs.status, 0, theirs.stderr.toString());
    assert.ok(decompressBuffer(theirs.stdout, data.length).equals(data), 'we decompress the zstd tool output');
  });
});
