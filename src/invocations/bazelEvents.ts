/**
 * Reads the events of the Build Event Service into invocations: the envelope
 * (google.devtools.build.v1: lifecycle events and the build tool's stream) and
 * Bazel's own events inside it (build_event_stream.BuildEvent, packed in an Any).
 * Only what the web UI shows is kept: command, patterns, command line, targets,
 * tests, and the end of the build. Unknown events are counted and skipped.
 */
import {
  BuildEvent as BazelEvent,
  type BuildEventId,
  type TestResult,
  type TestSummary,
} from '../gen/build_event_stream/build_event_stream.js';
import type { BuildEvent as EnvelopeEvent, StreamId } from '../gen/google/devtools/build/v1/build_events.js';
import { BuildStatus_Result } from '../gen/google/devtools/build/v1/build_status.js';
import type { Invocation, InvocationStore } from './invocationStore.js';

/** The Any type of Bazel's events. */
const BAZEL_EVENT_TYPE = 'type.googleapis.com/build_event_stream.BuildEvent';

/** Bazel's TestStatus values by number. */
const TEST_STATUS_NAMES = [
  'NO_STATUS',
  'PASSED',
  'FLAKY',
  'TIMEOUT',
  'FAILED',
  'INCOMPLETE',
  'REMOTE_FAILURE',
  'FAILED_TO_BUILD',
  'TOOL_HALTED_BEFORE_TESTING',
];

export function testStatusName(status: number): string {
  return TEST_STATUS_NAMES[status] ?? `STATUS_${status}`;
}

/**
 * Records one event of a stream (or a lifecycle event) in its invocation.
 * Throws on a Bazel event that does not decode (the caller answers INVALID_ARGUMENT).
 */
export function recordBuildEvent(
  store: InvocationStore,
  streamId: StreamId | undefined,
  event: EnvelopeEvent | undefined,
): void {
  const invocationId = streamId?.invocationId ?? '';
  if (invocationId === '' || !event) return;
  const invocation = store.touch(invocationId, streamId?.buildId ?? '');
  const eventTimeMs = event.eventTime ? event.eventTime.seconds * 1000 + Math.floor(event.eventTime.nanos / 1e6) : 0;
  if (event.invocationAttemptStarted && eventTimeMs > 0) invocation.startedAtMs ??= eventTimeMs;
  const finishedStatus = event.invocationAttemptFinished?.invocationStatus ?? event.buildFinished?.status;
  if (finishedStatus) {
    if (eventTimeMs > 0) invocation.finishedAtMs ??= eventTimeMs;
    if (!invocation.exitCode && finishedStatus.buildToolExitCode !== undefined) {
      const code = finishedStatus.buildToolExitCode;
      invocation.exitCode = { name: code === 0 ? 'SUCCESS' : resultName(finishedStatus.result), code };
    }
  }
  const packed = event.bazelEvent;
  if (!packed) return;
  if (packed.typeUrl !== BAZEL_EVENT_TYPE) return;
  applyBazelEvent(store, invocation, BazelEvent.decode(packed.value));
}

function resultName(result: BuildStatus_Result): string {
  return BuildStatus_Result[result] ?? `RESULT_${result}`;
}

/** Applies one of Bazel's events to its invocation. */
export function applyBazelEvent(store: InvocationStore, invocation: Invocation, event: BazelEvent): void {
  const id: BuildEventId = event.id ?? {};
  if (event.started) {
    const started = event.started;
    invocation.command = started.command || invocation.command;
    invocation.toolVersion = started.buildToolVersion || invocation.toolVersion;
    invocation.workspaceDirectory = started.workspaceDirectory || invocation.workspaceDirectory;
    if (started.startTimeMillis > 0) invocation.startedAtMs = started.startTimeMillis;
  }
  if (event.unstructuredCommandLine && invocation.commandLine.length === 0) {
    const args = event.unstructuredCommandLine.args;
    invocation.commandLine = args.slice(0, store.maximumArguments);
    if (args.length > store.maximumArguments) invocation.truncated = true;
  }
  if (id.pattern) {
    for (const pattern of id.pattern.pattern) {
      if (!invocation.patterns.includes(pattern) && invocation.patterns.length < store.maximumArguments) {
        invocation.patterns.push(pattern);
      }
    }
  }
  if (id.targetConfigured && event.configured) {
    const target = store.target(invocation, id.targetConfigured.label);
    if (target) target.kind = event.configured.targetKind || target.kind;
  }
  if (id.targetCompleted) {
    const target = store.target(invocation, id.targetCompleted.label);
    // A completion without a payload is an aborted target.
    if (target) target.success = event.completed?.success ?? false;
  }
  if (id.testResult && event.testResult) recordTestResult(store, invocation, id.testResult.label, event.testResult);
  if (id.testSummary && event.testSummary)
    recordTestSummary(store, invocation, id.testSummary.label, event.testSummary);
  // Bazel also sends Aborted for single targets; only the build's own start or end aborts the invocation.
  if (event.aborted && (id.started || id.buildFinished)) {
    invocation.aborted = event.aborted.description || 'aborted';
  }
  if (event.finished) {
    const finished = event.finished;
    if (finished.finishTimeMillis > 0) invocation.finishedAtMs = finished.finishTimeMillis;
    invocation.exitCode = finished.exitCode
      ? { name: finished.exitCode.name, code: finished.exitCode.code }
      : { name: finished.overallSuccess ? 'SUCCESS' : 'FAILED', code: finished.overallSuccess ? 0 : 1 };
  }
}

function recordTestResult(store: InvocationStore, invocation: Invocation, label: string, result: TestResult): void {
  const test = store.test(invocation, label);
  if (!test) return;
  test.attempts++;
  if (result.cachedLocally || result.executionInfo?.cachedRemotely) test.cachedAttempts++;
  test.durationMs += result.testAttemptDurationMillis;
  if (result.executionInfo?.hostname) test.hostname = result.executionInfo.hostname;
  if (!test.summarized) test.status = testStatusName(result.status);
}

function recordTestSummary(store: InvocationStore, invocation: Invocation, label: string, summary: TestSummary): void {
  const test = store.test(invocation, label);
  if (!test) return;
  test.status = testStatusName(summary.overallStatus);
  test.summarized = true;
}
