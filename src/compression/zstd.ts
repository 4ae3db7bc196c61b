/**
 * Zstandard streaming compression behind a small interface. The codec is libzstd
 * through the zstd-napi binding, an optional dependency built from the source it
 * ships: where it did not install, zstdAvailable() is false and the server
 * advertises no compressors instead of failing.
 *
 * Both directions work chunk by chunk with bounded buffers, so blobs of any size
 * stream through without being held whole in memory. A decoder produces its output
 * lazily: a consumer that stops pulling (for instance because the output exceeds
 * the declared size) stops the decompression, so a small "zstd bomb" never expands
 * beyond one output buffer.
 */
import { createRequire } from 'node:module';
import { invalidArgument, StatusError } from '../util/status.js';

/** [hint (bytes left to flush, or 0 at a frame end), bytes produced, bytes consumed] */
type StreamResult = [number, number, number];

interface NativeCCtx {
  setParameter(parameter: number, value: number): void;
  setPledgedSrcSize(size: number): void;
  compressStream2(destination: Uint8Array, source: Uint8Array, endOp: number): StreamResult;
}

interface NativeDCtx {
  decompressStream(destination: Uint8Array, source: Uint8Array): StreamResult;
}

/** The part of zstd-napi's low-level binding (its binding.d.ts) that is used here. */
interface NativeBinding {
  CCtx: new () => NativeCCtx;
  DCtx: new () => NativeDCtx;
  CParameter: { compressionLevel: number };
  EndDirective: { continue: number; end: number };
  versionString(): string;
}

let binding: NativeBinding | undefined;
let loadError: string | undefined;
let tried = false;

function load(): NativeBinding | undefined {
  if (!tried) {
    tried = true;
    try {
      binding = createRequire(import.meta.url)('zstd-napi/binding') as NativeBinding;
    } catch (error) {
      // The first line names the missing piece; Node appends the require stack.
      loadError = (error instanceof Error ? error.message : String(error)).split('\n')[0];
    }
  }
  return binding;
}

function native(): NativeBinding {
  const loaded = load();
  if (!loaded) throw new Error(`zstd is not available: ${loadError ?? 'zstd-napi did not load'}`);
  return loaded;
}

/** Whether the zstd codec loaded on this machine. */
export function zstdAvailable(): boolean {
  return load() !== undefined;
}

/** Why zstd is unavailable, or undefined when it is available. */
export function zstdUnavailableReason(): string | undefined {
  return load() ? undefined : (loadError ?? 'zstd-napi did not load');
}

/** The libzstd version, e.g. "1.5.7", or undefined when unavailable. */
export function zstdVersion(): string | undefined {
  return load()?.versionString();
}

/** Level used when serving compressed reads: the fastest regular level. */
export const DEFAULT_COMPRESSION_LEVEL = 1;

/** Size of the buffers output is produced into, and so the largest chunk either direction yields. */
const OUTPUT_BYTES = 256 * 1024;

const EMPTY = Buffer.alloc(0);

/**
 * An output buffer that codecs write into and hand out in pieces. A full buffer is
 * given away whole; a small partial one is copied so the large buffer is reused
 * and a kept chunk does not pin 256 KiB.
 */
class Output {
  private buffer = Buffer.allocUnsafe(OUTPUT_BYTES);
  private position = 0;

  get space(): Buffer {
    return this.buffer.subarray(this.position);
  }

  get full(): boolean {
    return this.position === this.buffer.length;
  }

  advance(bytes: number): void {
    this.position += bytes;
  }

  take(): Buffer | undefined {
    if (this.position === 0) return undefined;
    let out: Buffer;
    if (this.position * 2 < this.buffer.length) {
      out = Buffer.from(this.buffer.subarray(0, this.position));
    } else {
      out = this.buffer.subarray(0, this.position);
      this.buffer = Buffer.allocUnsafe(OUTPUT_BYTES);
    }
    this.position = 0;
    return out;
  }
}

export interface CompressOptions {
  /** zstd level; negative levels are faster still. Default DEFAULT_COMPRESSION_LEVEL. */
  level?: number;
  /** The exact number of bytes that will be pushed, recorded in the frame header. */
  pledgedSizeBytes?: number;
}

/** Compresses one stream into a single zstd frame. Each instance is used once. */
export class ZstdEncoder {
  private readonly cctx: NativeCCtx;
  private readonly output = new Output();
  private readonly endOp: { continue: number; end: number };
  private ended = false;

  constructor(options: CompressOptions = {}) {
    const zstd = native();
    this.cctx = new zstd.CCtx();
    this.cctx.setParameter(zstd.CParameter.compressionLevel, options.level ?? DEFAULT_COMPRESSION_LEVEL);
    if (options.pledgedSizeBytes !== undefined) this.cctx.setPledgedSrcSize(options.pledgedSizeBytes);
    this.endOp = zstd.EndDirective;
  }

  /** Feeds input; returns the compressed output that filled a buffer (often none). */
  push(chunk: Uint8Array): Buffer[] {
    if (this.ended) throw new Error('ZstdEncoder.push after end');
    const out: Buffer[] = [];
    let source = chunk;
    while (source.length > 0) {
      const [, produced, consumed] = this.cctx.compressStream2(this.output.space, source, this.endOp.continue);
      this.output.advance(produced);
      source = source.subarray(consumed);
      if (this.output.full) out.push(this.output.take() as Buffer);
    }
    return out;
  }

  /** Ends the frame; returns the rest of the compressed output. */
  end(): Buffer[] {
    if (this.ended) return [];
    this.ended = true;
    const out: Buffer[] = [];
    for (;;) {
      const [remaining, produced] = this.cctx.compressStream2(this.output.space, EMPTY, this.endOp.end);
      this.output.advance(produced);
      if (remaining === 0) break;
      const taken = this.output.take();
      if (taken) out.push(taken);
    }
    const last = this.output.take();
    if (last) out.push(last);
    return out;
  }
}

/**
 * Decompresses a stream of zstd frames (concatenated frames and skippable frames
 * are allowed, as in the zstd format). Corrupt input throws INVALID_ARGUMENT.
 */
export class ZstdDecoder {
  private readonly dctx: NativeDCtx;
  private readonly output = new Output();
  private inFrame = false;

  constructor() {
    this.dctx = new (native().DCtx)();
  }

  /**
   * Feeds compressed input and yields full output buffers as they fill. Output that
   * does not fill a buffer stays inside until more input or end(). The generator
   * must be drained before the next push.
   */
  *push(chunk: Uint8Array): Generator<Buffer, void, undefined> {
    let source = chunk;
    while (source.length > 0 || this.output.full) {
      if (this.output.full) yield this.output.take() as Buffer;
      let result: StreamResult;
      try {
        result = this.dctx.decompressStream(this.output.space, source);
      } catch (error) {
        throw corrupt(error);
      }
      const [hint, produced, consumed] = result;
      this.output.advance(produced);
      source = source.subarray(consumed);
      // A call that made no progress reports the next frame's header size; it says nothing about this one.
      if (produced > 0 || consumed > 0) this.inFrame = hint !== 0;
      // All input taken and room left over: the decoder holds nothing more to give.
      if (source.length === 0 && !this.output.full) return;
    }
  }

  /** Ends the input: returns the remaining output. Throws INVALID_ARGUMENT if a frame is incomplete. */
  end(): Buffer | undefined {
    if (this.inFrame) throw invalidArgument('corrupt zstd data: the stream ends in the middle of a frame');
    return this.output.take();
  }
}

function corrupt(error: unknown): StatusError {
  if (error instanceof StatusError) return error;
  return invalidArgument(`corrupt zstd data: ${error instanceof Error ? error.message : String(error)}`);
}

/** An async transform: consumes chunks, yields transformed chunks. */
export type AsyncTransform = (source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>) => AsyncGenerator<Buffer>;

/**
 * A transform compressing its source into one zstd frame. Usable on its own or as
 * a step of stream.pipeline.
 */
export function createCompressStream(options: CompressOptions = {}): AsyncTransform {
  return async function* compress(source) {
    const encoder = new ZstdEncoder(options);
    for await (const chunk of source) yield* encoder.push(chunk);
    yield* encoder.end();
  };
}

/** A transform decompressing a zstd stream; corrupt or truncated input fails with INVALID_ARGUMENT. */
export function createDecompressStream(): AsyncTransform {
  return async function* decompress(source) {
    const decoder = new ZstdDecoder();
    for await (const chunk of source) yield* decoder.push(chunk);
    const last = decoder.end();
    if (last) yield last;
  };
}

/** Compresses an in-memory buffer (small blobs of batch reads). */
export function compressBuffer(data: Uint8Array, level = DEFAULT_COMPRESSION_LEVEL): Buffer {
  const encoder = new ZstdEncoder({ level, pledgedSizeBytes: data.length });
  const parts = [...encoder.push(data), ...encoder.end()];
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}

/**
 * Decompresses an in-memory buffer whose content must be at most `maximumBytes`
 * long; more output fails with INVALID_ARGUMENT without decompressing the rest.
 */
export function decompressBuffer(data: Uint8Array, maximumBytes: number): Buffer {
  const decoder = new ZstdDecoder();
  const parts: Buffer[] = [];
  let total = 0;
  const keep = (part: Buffer) => {
    total += part.length;
    if (total > maximumBytes) throw invalidArgument(`zstd data decompresses to more than ${maximumBytes} bytes`);
    parts.push(part);
  };
  for (const part of decoder.push(data)) keep(part);
  const last = decoder.end();
  if (last) keep(last);
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, total);
}
