/**
 * ByteStream resource names of REAPI:
 *   read:  {instance}/blobs/{function?}/{hash}/{size}
 *          {instance}/compressed-blobs/{compressor}/{function?}/{hash}/{size}
 *   write: {instance}/uploads/{uuid}/blobs/{function?}/{hash}/{size}{/metadata...}
 *          {instance}/uploads/{uuid}/compressed-blobs/{compressor}/{function?}/{hash}/{size}{/metadata...}
 * The instance prefix may be empty or span several segments. The function segment
 * is optional; without it the function is inferred from the hash length.
 */
import {
  type Digest,
  type DigestFunction,
  digestFunctionByName,
  parseDigest,
  resolveDigestFunction,
} from '../digest/digest.js';
import { invalidArgument } from '../util/status.js';

export type Compressor = 'identity' | 'zstd';

export interface BlobResource {
  instanceName: string;
  digest: Digest;
  digestFunction: DigestFunction;
  compressor: Compressor;
}

export interface UploadResource extends BlobResource {
  uploadId: string;
}

const RESERVED = new Set([
  'blobs',
  'uploads',
  'compressed-blobs',
  'actions',
  'actionResults',
  'operations',
  'capabilities',
]);

export function parseReadResourceName(name: string, supportedCompressors: readonly Compressor[]): BlobResource {
  const segments = name.split('/');
  const at = readAnchor(segments, name);
  const instanceName = instanceOf(segments.slice(0, at), name);
  const blob = parseBlobPart(segments.slice(at), name, supportedCompressors);
  if (blob.trailing.length > 0) throw malformed(name, 'unexpected segments after the size');
  return { instanceName, ...blob.resource };
}

export function parseWriteResourceName(name: string, supportedCompressors: readonly Compressor[]): UploadResource {
  const segments = name.split('/');
  const at = writeAnchor(segments, name);
  const instanceName = instanceOf(segments.slice(0, at), name);
  const uploadId = segments[at + 1];
  if (!uploadId) throw malformed(name, 'missing upload id');
  const blob = parseBlobPart(segments.slice(at + 2), name, supportedCompressors);
  // Anything after the size is optional metadata that the specification lets us ignore.
  return { instanceName, uploadId, ...blob.resource };
}

/**
 * The instance name of a read resource name, found exactly as parseReadResourceName
 * finds it: the gRPC edge needs it (for the request context and authorization)
 * before the rest of the name is interpreted.
 */
export function instanceNameOfReadResource(name: string): string {
  const segments = name.split('/');
  return instanceOf(segments.slice(0, readAnchor(segments, name)), name);
}

/** The instance name of an upload resource name, found exactly as parseWriteResourceName finds it. */
export function instanceNameOfWriteResource(name: string): string {
  const segments = name.split('/');
  return instanceOf(segments.slice(0, writeAnchor(segments, name)), name);
}

function readAnchor(segments: string[], name: string): number {
  const at = segments.findIndex((s) => s === 'blobs' || s === 'compressed-blobs');
  if (at < 0) throw malformed(name, 'expected "blobs" or "compressed-blobs"');
  return at;
}

function writeAnchor(segments: string[], name: string): number {
  const at = segments.indexOf('uploads');
  if (at < 0) throw malformed(name, 'expected "{instance}/uploads/{uuid}/blobs/..."');
  return at;
}

function instanceOf(segments: string[], name: string): string {
  if (segments.some((s) => s === '' || RESERVED.has(s))) throw malformed(name, 'malformed instance name');
  return segments.join('/');
}

function parseBlobPart(
  segments: string[],
  name: string,
  supportedCompressors: readonly Compressor[],
): { resource: Omit<BlobResource, 'instanceName'>; trailing: string[] } {
  let rest = segments;
  let compressor: Compressor = 'identity';
  if (rest[0] === 'compressed-blobs') {
    const requested = rest[1] ?? '';
    if (!(supportedCompressors as readonly string[]).includes(requested) || requested === 'identity') {
      throw invalidArgument(`resource name "${clip(name)}": compressor "${clip(requested)}" is not supported`);
    }
    compressor = requested as Compressor;
    rest = rest.slice(2);
  } else if (rest[0] === 'blobs') {
    rest = rest.slice(1);
  } else {
    throw malformed(name, 'expected "blobs" or "compressed-blobs"');
  }
  // Function names all contain a non-hex letter, so they cannot be mistaken for a hash.
  let explicit: DigestFunction | undefined;
  if (rest.length >= 3 && !/^[0-9a-f]+$/.test(rest[0] ?? '')) {
    explicit = digestFunctionByName(rest[0] as string);
    if (!explicit) {
      throw invalidArgument(
        `resource name "${clip(name)}": digest function "${clip(rest[0] as string)}" is not supported`,
      );
    }
    rest = rest.slice(1);
  }
  const [hash, sizeText] = rest;
  if (hash === undefined || sizeText === undefined) throw malformed(name, 'expected ".../{hash}/{size}"');
  if (!/^\d{1,16}$/.test(sizeText)) throw malformed(name, `size "${clip(sizeText)}" is not a non-negative integer`);
  const digestFunction = explicit ?? resolveDigestFunction(0, hash);
  const digest = parseDigest({ hash, sizeBytes: Number(sizeText) }, digestFunction, 'resource_name');
  return { resource: { digest, digestFunction, compressor }, trailing: rest.slice(2) };
}

function malformed(name: string, why: string) {
  return invalidArgument(`malformed resource name "${clip(name)}": ${why}`, [
    { field: 'resource_name', description: why },
  ]);
}

function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}
