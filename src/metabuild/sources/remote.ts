/**
 * The `remote` source (BuildStream 2): one file by `url`, checked against
 * `ref` (its sha256), staged under `filename` (by default the last component
 * of the URL; no directories) as a regular file, executable when
 * `executable: true`.
 */
import { createReadStream } from 'node:fs';
import { posix } from 'node:path';
import { backgroundContext } from '../../context/requestContext.js';
import { TreeEditor } from '../../tree/editor.js';
import { BlobUploader } from './blobUploader.js';
import { obtainVerified } from './download.js';
import {
  checkKeys,
  optionalBoolean,
  optionalString,
  requireSha256Ref,
  requireString,
  type SourceConfig,
  SourceError,
  type SourceKind,
} from './sourceKind.js';

const KIND = 'remote';

interface RemoteConfig {
  url: string;
  ref: string;
  filename: string;
  executable: boolean;
}

function parse(config: SourceConfig, location: string | undefined): RemoteConfig {
  const where = location ?? '';
  checkKeys(config, KIND, ['url', 'ref', 'filename', 'executable', 'version', 'version-guess-pattern'], where);
  const url = requireString(config, 'url', KIND, where);
  const ref = requireSha256Ref(config, KIND, url, 'the file', location);
  const filename = optionalString(config, 'filename', KIND, where) ?? posix.basename(url.slice(url.indexOf(':') + 1));
  if (filename.includes('/') || filename === '' || filename === '.' || filename === '..') {
    throw new SourceError(
      location,
      `remote source ${url}: 'filename' "${filename}" must be a file name without directories`,
    );
  }
  const executable = optionalBoolean(config, 'executable', KIND, where) ?? false;
  return { url, ref, filename, executable };
}

export const remoteSource: SourceKind = {
  kind: KIND,
  validate(config, location) {
    parse(config, location);
  },
  async key(config, context) {
    const { url, ref, filename, executable } = parse(config, context.location);
    return { url, ref, filename, executable };
  },
  async stage(config, context) {
    const parsed = parse(config, context.location);
    const path = await obtainVerified(parsed.url, parsed.ref, KIND, context);
    const uploader = new BlobUploader(context.cas, {
      digestFunction: context.digestFunction,
      tempDir: context.cacheDir,
    });
    let digest: Awaited<ReturnType<BlobUploader['addStream']>>;
    try {
      digest = await uploader.addStream(createReadStream(path));
      await uploader.close();
    } catch (error) {
      await uploader.dispose();
      throw error;
    }
    const editor = TreeEditor.create(backgroundContext(), context.cas, context.digestFunction);
    await editor.putFile(parsed.filename, { digest, executable: parsed.executable });
    return editor.finish();
  },
};
