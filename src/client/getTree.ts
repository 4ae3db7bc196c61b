/**
 * Every Directory of a tree in one streaming GetTree call, instead of one
 * read per directory: what a client needs to build a Tree message of a large
 * tree (a whole root file system has thousands of directories) without a
 * round trip for each.
 */

import type { ServiceError } from '@grpc/grpc-js';
import type { Digest } from '../digest/digest.js';
import type { Directory, GetTreeResponse } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type Connection, fromServiceError } from './connection.js';

/** The Directory messages of the tree under `root` (the root included), as the server lists them. */
export function getTreeDirectories(connection: Connection, root: Digest): Promise<Directory[]> {
  return new Promise((resolve, reject) => {
    const directories: Directory[] = [];
    const stream = connection.cas.getTree({
      instanceName: connection.instanceName,
      rootDigest: root,
      pageSize: 0,
      pageToken: '',
      digestFunction: 0,
    });
    stream.on('data', (page: GetTreeResponse) => directories.push(...page.directories));
    stream.on('error', (error: ServiceError) => reject(fromServiceError(error)));
    stream.on('end', () => resolve(directories));
  });
}
