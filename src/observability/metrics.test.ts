import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sample } from '../../test/support/metricsText.js';
import type { SchedulerAdmin } from '../execution/scheduler.js';
import type { OperationRecord } from '../execution/types.js';
import { Code } from '../util/status.js';
import { farmMetrics } from './farmMetrics.js';
import { describeFinishedAction } from './finishedAction.js';
import { createMetricsRegistry, grpcCallMetrics } from './metrics.js';
import { storageMetrics } from './storageMetrics.js';

const ms = (value: number) => ({ seconds: Math.floor(value / 1000), nanos: (value % 1000) * 1e6 });

function completedOperation(overrides: Partial<OperationRecord> = {}): OperationRecord {
  return {
    name: 'operations/1',
    request: {
      instanceName: '',
      digestFunction: 1,
      actionDigest: { hash: 'ab'.repeat(32), sizeBytes: 140 },
      platform: [],
      priority: 0,
      clientKey: 'bazel:inv',
      doNotCache: false,
      timeoutMs: 60_000,
      clientMetadata: { toolName: 'bazel', actionMnemonic: 'CppCompile', toolInvocationId: 'inv-1' },
    },
    stage: 'COMPLETED',
    queuedAtMs: 1_000,
    startedAtMs: 1_250,
    completedAtMs: 3_000,
    attempts: 1,
    version: 3,
    response: {
      cachedResult: false,
      status: { code: Code.OK, message: '', details: [] },
      serverLogs: {},
      message: '',
      result: {
        outputFiles: [],
        outputFileSymlinks: [],
        outputSymlinks: [],
        outputDirectories: [],
        outputDirectorySymlinks: [],
        exitCode: 1,
        stdoutRaw: Buffer.alloc(0),
        stdoutDigest: undefined,
        stderrRaw: Buffer.alloc(0),
        stderrDigest: undefined,
        executionMetadata: {
          worker: 'embedded',
          queuedTimestamp: undefined,
          workerStartTimestamp: ms(1_300),
          workerCompletedTimestamp: ms(2_900),
          inputFetchStartTimestamp: ms(1_300),
          inputFetchCompletedTimestamp: ms(1_400),
          executionStartTimestamp: ms(1_400),
          executionCompletedTimestamp: ms(2_400),
          virtualExecutionDuration: undefined,
          outputUploadStartTimestamp: ms(2_400),
          outputUploadCompletedTimestamp: ms(2_900),
          auxiliaryMetadata: [],
        },
      },
    },
    ...overrides,
  };
}

describe('metrics', () => {
  it('counts and times served gRPC calls by service, method and code, with their bytes', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const interceptor = grpcCallMetrics(registry);
    const call = {
      service: 'build.bazel.remote.execution.v2.ContentAddressableStorage',
      method: 'FindMissingBlobs',
      durationMs: 12,
      bytesIn: 100,
      bytesOut: 40,
      peer: 'ipv4:127.0.0.1:5000',
      principal: undefined,
    };
    interceptor.onCallEnd({ ...call, code: Code.OK });
    interceptor.onCallEnd({ ...call, code: Code.OK });
    interceptor.onCallEnd({ ...call, code: Code.INVALID_ARGUMENT });
    const text = await registry.metrics();
    const labels = 'service="build.bazel.remote.execution.v2.ContentAddressableStorage",method="FindMissingBlobs"';
    assert.equal(sample(text, `granary_grpc_server_handled_total{${labels},code="OK"}`), 2);
    assert.equal(sample(text, `granary_grpc_server_handled_total{${labels},code="INVALID_ARGUMENT"}`), 1);
    assert.equal(sample(text, `granary_grpc_server_handling_seconds_count{${labels},code="OK"}`), 2);
    assert.equal(sample(text, `granary_grpc_server_received_bytes_total{${labels}}`), 300);
    assert.equal(sample(text, `granary_grpc_server_sent_bytes_total{${labels}}`), 120);
  });

  it('reads store usage at scrape time and counts eviction rounds', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const storage = storageMetrics(registry);
    let usedBytes = 10;
    storage.watch({ name: 'cas', usage: () => ({ usedBytes, maximumBytes: 100, blobCount: 2 }) });
    storage.eviction('cas', { blobs: 3, bytes: 60, incomingBytes: 50, usedBytes: 40, maximumBytes: 100 });
    usedBytes = 90;
    const text = await registry.metrics();
    assert.equal(sample(text, 'granary_storage_used_bytes{store="cas"}'), 90);
    assert.equal(sample(text, 'granary_storage_capacity_bytes{store="cas"}'), 100);
    assert.equal(sample(text, 'granary_storage_blobs{store="cas"}'), 2);
    assert.equal(sample(text, 'granary_storage_evicted_blobs_total{store="cas"}'), 3);
    assert.equal(sample(text, 'granary_storage_evicted_bytes_total{store="cas"}'), 60);
    assert.equal(sample(text, 'granary_storage_eviction_rounds_total{store="cas"}'), 1);
  });

  it("counts the storage factory's calls by store, operation and outcome, with their bytes", async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const { observer } = storageMetrics(registry);
    const call = { node: 'cas', durationMs: 2, digests: 1 } as const;
    observer.onStorageCall({ ...call, operation: 'put', outcome: 'ok', bytes: 300 });
    observer.onStorageCall({ ...call, operation: 'get', outcome: 'ok', bytes: 120 });
    observer.onStorageCall({ ...call, operation: 'get', outcome: 'miss', bytes: 0 });
    observer.onStorageCall({ ...call, operation: 'findMissing', outcome: 'error', bytes: 0, errorCode: 'UNAVAILABLE' });
    const text = await registry.metrics();
    assert.equal(sample(text, 'granary_storage_operations_total{store="cas",operation="put",outcome="ok"}'), 1);
    assert.equal(sample(text, 'granary_storage_operations_total{store="cas",operation="get",outcome="miss"}'), 1);
    assert.equal(
      sample(text, 'granary_storage_operations_total{store="cas",operation="find_missing",outcome="UNAVAILABLE"}'),
      1,
    );
    assert.equal(sample(text, 'granary_storage_operation_bytes_total{store="cas",operation="put"}'), 300);
    assert.equal(sample(text, 'granary_storage_operation_bytes_total{store="cas",operation="get"}'), 120);
    assert.equal(sample(text, 'granary_storage_operation_seconds_count{store="cas",operation="get"}'), 2);
  });

  it("reads queues and workers from the scheduler's admin view and counts finished actions by phase", async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const admin: Pick<SchedulerAdmin, 'queues' | 'workers'> = {
      queues: async () => [
        { queueKey: 'OSFamily=linux', platform: [], queued: 4, executing: 2, oldestQueuedAtMs: Date.now() - 5_000 },
      ],
      workers: async () => [
        { id: 'a', properties: [], slots: 4, lastSeenMs: 0, draining: false, leases: [completedOperation()] },
        { id: 'b', properties: [], slots: 2, lastSeenMs: 0, draining: false, leases: [] },
        { id: 'c', properties: [], slots: 2, lastSeenMs: 0, draining: false, goneAtMs: 5, leases: [] },
      ],
    };
    const farm = farmMetrics(registry, () => admin as SchedulerAdmin);
    farm.actionCacheLookup(true);
    farm.actionCacheLookup(false);
    farm.actionCacheLookup(false);
    farm.actionFinished(describeFinishedAction(completedOperation()));
    farm.workerLost('disconnected');
    const text = await registry.metrics();
    assert.equal(sample(text, 'granary_queue_depth{platform="OSFamily=linux"}'), 4);
    assert.ok((sample(text, 'granary_queue_oldest_age_seconds{platform="OSFamily=linux"}') ?? 0) >= 5);
    assert.equal(sample(text, 'granary_operations{stage="QUEUED"}'), 4);
    assert.equal(sample(text, 'granary_operations{stage="EXECUTING"}'), 2);
    assert.equal(sample(text, 'granary_workers{state="busy"}'), 1);
    assert.equal(sample(text, 'granary_workers{state="idle"}'), 1, 'a gone worker is not counted');
    assert.equal(sample(text, 'granary_worker_slots{state="busy"}'), 1);
    assert.equal(sample(text, 'granary_worker_slots{state="idle"}'), 5);
    assert.equal(sample(text, 'granary_action_cache_lookups_total{result="hit"}'), 1);
    assert.equal(sample(text, 'granary_action_cache_lookups_total{result="miss"}'), 2);
    assert.equal(sample(text, 'granary_actions_finished_total{status="OK",cache_hit="false"}'), 1);
    assert.equal(sample(text, 'granary_actions_nonzero_exit_total'), 1);
    assert.equal(sample(text, 'granary_action_phase_seconds_sum{phase="execution"}'), 1);
    assert.equal(sample(text, 'granary_action_phase_seconds_sum{phase="queued"}'), 0.25);
    assert.equal(sample(text, 'granary_workers_lost_total{reason="disconnected"}'), 1);
  });
});

describe('describeFinishedAction', () => {
  it('reads who asked, where it ran, how it ended and how long each phase took', () => {
    const finished = describeFinishedAction(completedOperation());
    assert.deepEqual(finished.phasesMs, { queued: 250, input_fetch: 100, execution: 1000, output_upload: 500 });
    assert.equal(finished.fields.tool, 'bazel');
    assert.equal(finished.fields.mnemonic, 'CppCompile');
    assert.equal(finished.fields.worker, 'embedded');
    assert.equal(finished.fields.exit_code, 1);
    assert.equal(finished.fields.cache_hit, false);
    assert.equal(finished.fields.total_ms, 2000);
    assert.equal(finished.fields.action, `${'ab'.repeat(32)}/140`);
  });

  it('gives a cache hit no phases and says why a failed operation failed', () => {
    const hit = describeFinishedAction(
      completedOperation({ response: { ...completedOperation().response!, cachedResult: true } }),
    );
    assert.deepEqual(hit.phasesMs, {});
    assert.equal(hit.cacheHit, true);
    const failed = describeFinishedAction(
      completedOperation({
        response: {
          cachedResult: false,
          status: { code: Code.FAILED_PRECONDITION, message: 'no worker can run it', details: [] },
          serverLogs: {},
          message: '',
          result: undefined,
        },
      }),
    );
    assert.equal(failed.status, 'FAILED_PRECONDITION');
    assert.equal(failed.fields.error, 'no worker can run it');
  });
});
