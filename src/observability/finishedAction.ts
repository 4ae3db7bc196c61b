/**
 * What operators want to know about one finished action, read off its operation
 * record: who asked (tool, invocation, mnemonic, target from RequestMetadata),
 * where it ran, how it ended, and how long each phase took (from the
 * ExecutedActionMetadata timestamps the worker reported, and the server's own
 * queue times). The structured log line and the phase histograms both use it.
 */
import type { OperationRecord } from '../execution/types.js';
import type { ExecutedActionMetadata } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { Timestamp } from '../gen/google/protobuf/timestamp.js';
import type { LogFields } from './log.js';
import { codeName } from './metrics.js';

/** The phases of an action, as the metrics label them. */
export type ActionPhase = 'queued' | 'input_fetch' | 'execution' | 'output_upload';

export interface FinishedAction {
  /** `OK`, or the status code the operation ended with. */
  readonly status: string;
  readonly cacheHit: boolean;
  readonly exitCode: number | undefined;
  /** Phase durations in milliseconds; a phase the action never went through is absent. */
  readonly phasesMs: Partial<Record<ActionPhase, number>>;
  /** Fields of the `action finished` log line. */
  readonly fields: LogFields;
}

function milliseconds(timestamp: Timestamp | undefined): number | undefined {
  if (!timestamp || (timestamp.seconds === 0 && timestamp.nanos === 0)) return undefined;
  return timestamp.seconds * 1000 + timestamp.nanos / 1e6;
}

function span(start: number | undefined, end: number | undefined): number | undefined {
  return start === undefined || end === undefined || end < start ? undefined : end - start;
}

/** The phases a worker timed, from its ExecutedActionMetadata. */
export function workerPhasesMs(metadata: ExecutedActionMetadata | undefined): Partial<Record<ActionPhase, number>> {
  const phasesMs: Partial<Record<ActionPhase, number>> = {};
  const phases: [ActionPhase, Timestamp | undefined, Timestamp | undefined][] = [
    ['input_fetch', metadata?.inputFetchStartTimestamp, metadata?.inputFetchCompletedTimestamp],
    ['execution', metadata?.executionStartTimestamp, metadata?.executionCompletedTimestamp],
    ['output_upload', metadata?.outputUploadStartTimestamp, metadata?.outputUploadCompletedTimestamp],
  ];
  for (const [phase, start, end] of phases) {
    const duration = span(milliseconds(start), milliseconds(end));
    if (duration !== undefined) phasesMs[phase] = duration;
  }
  return phasesMs;
}

/** Reads a COMPLETED operation. */
export function describeFinishedAction(operation: OperationRecord): FinishedAction {
  const response = operation.response;
  const result = response?.result;
  const metadata = result?.executionMetadata;
  const cacheHit = response?.cachedResult ?? false;
  const status = codeName(response?.status?.code ?? 0);
  let phasesMs: Partial<Record<ActionPhase, number>> = {};
  if (!cacheHit) {
    // Queue time by the server's clock: from submission to the last worker taking it.
    const queued = span(operation.queuedAtMs, operation.startedAtMs);
    phasesMs = { ...(queued === undefined ? {} : { queued }), ...workerPhasesMs(metadata) };
  }
  const client = operation.request.clientMetadata ?? {};
  const digest = operation.request.actionDigest;
  const rounded = (ms: number | undefined) => (ms === undefined ? undefined : Math.round(ms));
  const fields: LogFields = {
    event: 'action_finished',
    action: `${digest.hash}/${digest.sizeBytes}`,
    operation: operation.name,
    status,
    exit_code: result?.exitCode,
    cache_hit: cacheHit,
    worker: metadata?.worker || undefined,
    tool: client.toolName,
    mnemonic: client.actionMnemonic,
    target: client.targetId,
    invocation: client.toolInvocationId,
    queued_ms: rounded(phasesMs.queued),
    input_fetch_ms: rounded(phasesMs.input_fetch),
    execution_ms: rounded(phasesMs.execution),
    output_upload_ms: rounded(phasesMs.output_upload),
    total_ms: rounded(span(operation.queuedAtMs, operation.completedAtMs)),
    attempts: operation.attempts > 1 ? operation.attempts : undefined,
    error: status === 'OK' ? undefined : response?.status?.message,
  };
  return { status, cacheHit, exitCode: result?.exitCode, phasesMs, fields };
}
