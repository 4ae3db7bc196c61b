import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { FetchService, PushService } from '../gen/build/bazel/remote/asset/v1/remote_asset.js';
import {
  ActionCacheService,
  CapabilitiesService,
  ContentAddressableStorageService,
  ExecutionService,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { ByteStreamService } from '../gen/google/bytestream/bytestream.js';
import { BotsService } from '../gen/google/devtools/remoteworkers/v1test2/bots.js';
import { OperationsService } from '../gen/google/longrunning/operations.js';
import { authorizationRequestOf, methodOfPath } from './authorization.js';

const SERVED: ServiceDefinition[] = [
  CapabilitiesService,
  ContentAddressableStorageService,
  ByteStreamService,
  ActionCacheService,
  ExecutionService,
  OperationsService,
  FetchService,
  PushService,
  BotsService,
] as unknown as ServiceDefinition[];

/** What each method must need: the table a reviewer checks against SECURITY.md. */
const EXPECTED: Record<string, string> = {
  'Capabilities/GetCapabilities': 'authenticated',
  'ContentAddressableStorage/FindMissingBlobs': 'read',
  'ContentAddressableStorage/BatchReadBlobs': 'read',
  'ContentAddressableStorage/GetTree': 'read',
  'ContentAddressableStorage/SplitBlob': 'read',
  'ContentAddressableStorage/BatchUpdateBlobs': 'cas-write',
  'ContentAddressableStorage/SpliceBlob': 'cas-write',
  'ByteStream/Read': 'read',
  'ByteStream/Write': 'cas-write',
  'ByteStream/QueryWriteStatus': 'cas-write',
  'ActionCache/GetActionResult': 'read',
  'ActionCache/UpdateActionResult': 'ac-write',
  'Execution/Execute': 'execute',
  'Execution/WaitExecution': 'execute',
  'Operations/GetOperation': 'execute',
  'Operations/WaitOperation': 'execute',
  'Operations/CancelOperation': 'execute',
  'Operations/DeleteOperation': 'execute',
  'Operations/ListOperations': 'admin',
  'Fetch/FetchBlob': 'read',
  'Fetch/FetchDirectory': 'read',
  'Push/PushBlob': 'asset-write',
  'Push/PushDirectory': 'asset-write',
  'Bots/CreateBotSession': 'bots',
  'Bots/UpdateBotSession': 'bots',
};

describe('METHOD_SCOPES', () => {
  const paths = SERVED.flatMap((definition) => Object.values(definition).map((method) => method.path));

  it('names a requirement for every method of every service Granary serves', () => {
    const missing = paths.filter((path) => authorizationRequestOf(path).scope === undefined);
    assert.deepEqual(missing, [], 'methods without an entry would need admin once authentication is on');
  });

  for (const [method, requirement] of Object.entries(EXPECTED)) {
    it(`requires ${requirement} for ${method}`, () => {
      const path = paths.find((candidate) => candidate.endsWith(`.${method}`));
      assert.ok(path, `no served method ${method}`);
      assert.equal(authorizationRequestOf(path).scope, requirement);
    });
  }

  it('checks every served method here', () => {
    const listed = new Set(Object.keys(EXPECTED));
    const unlisted = paths.filter((path) => {
      const { service, method } = methodOfPath(path);
      return !listed.has(`${service.slice(service.lastIndexOf('.') + 1)}/${method}`);
    });
    assert.deepEqual(unlisted, []);
  });

  it('leaves health checks public and unknown methods without an entry', () => {
    assert.equal(authorizationRequestOf('/grpc.health.v1.Health/Check').scope, 'public');
    assert.equal(authorizationRequestOf('/some.Other/Method').scope, undefined);
  });
});
