import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type BazelTraceEvent,
  formatBazelProfileSummary,
  summariseBazelProfile,
  summariseOperations,
  summariseServerMetrics,
} from './bazelProfile.js';

/** An event in the shape Bazel 4.2.3 writes (times in milliseconds here, microseconds in the file). */
const event = (cat: string, name: string, tid: number, startMs: number, durationMs: number): BazelTraceEvent =>
  ({
    cat,
    name,
    ph: 'X',
    ts: startMs * 1000,
    dur: durationMs * 1000,
    pid: 1,
    tid,
  }) as BazelTraceEvent;

/** One remote spawn of `name` on thread `tid` from `startMs`: 100 ms of action, phases inside. */
function remoteSpawn(name: string, tid: number, startMs: number): BazelTraceEvent[] {
  return [
    event('action processing', name, tid, startMs, 100),
    event('general information', 'MerkleTree.build(ActionInput)', tid, startMs + 1, 2),
    event('remote action cache check', 'check cache hit', tid, startMs + 3, 5),
    event('Remote execution upload time', 'upload missing inputs', tid, startMs + 8, 10),
    event('remote action execution', 'execute remotely', tid, startMs + 18, 70),
    event('remote output download', 'download server logs', tid, startMs + 88, 1),
    event('remote output download', 'download outputs', tid, startMs + 89, 8),
  ];
}

describe('Bazel profile summary', () => {
  const profile = {
    traceEvents: [
      { name: 'thread_name', ph: 'M', pid: 1, tid: 0, args: { name: 'Critical Path' } },
      { name: 'thread_name', ph: 'M', pid: 1, tid: 7, args: { name: 'skyframe-evaluator 0' } },
      event('build phase marker', 'Launch Blaze', 1, -50, 50),
      { cat: 'build phase marker', name: 'Build artifacts', ph: 'i', ts: 1_000_000, pid: 1, tid: 1 },
      ...remoteSpawn('Compiling a.cc', 7, 1000),
      // The same description on another thread at another time is not the critical path's.
      ...remoteSpawn('Compiling a.cc', 8, 5000),
      ...remoteSpawn('Compiling b.cc', 8, 1000),
      ...remoteSpawn('Linking ab', 7, 1200),
      event('critical path component', "action 'Compiling a.cc'", 0, 1000, 100),
      event('critical path component', 'runfiles for //:ab', 0, 1150, 1),
      event('critical path component', "action 'Linking ab'", 0, 1200, 100),
      { cat: 'build phase marker', name: 'Complete build', ph: 'i', ts: 1_400_000, pid: 1, tid: 1 },
    ] as BazelTraceEvent[],
  };

  it('sums each remote phase over the build and over the actions on the critical path', () => {
    const summary = summariseBazelProfile(profile);
    assert.equal(summary.actions.count, 4);
    assert.ok(Math.abs(summary.actions.seconds - 0.4) < 1e-9);
    assert.equal(summary.phases['execute remotely'].count, 4);
    assert.ok(Math.abs(summary.phases['execute remotely'].seconds - 0.28) < 1e-9);
    // 'download server logs' is not counted as a download of outputs.
    assert.equal(summary.phases['download outputs'].count, 4);
    assert.ok(Math.abs(summary.phases['download outputs'].seconds - 0.032) < 1e-9);
    assert.equal(summary.criticalPath.count, 3);
    assert.ok(Math.abs(summary.criticalPath.seconds - 0.201) < 1e-9);
    // Only the two actions on the path, each found on its own thread at its own time.
    assert.equal(summary.criticalPathPhases['upload inputs'].count, 2);
    assert.ok(Math.abs(summary.criticalPathPhases['upload inputs'].seconds - 0.02) < 1e-9);
    assert.equal(summary.criticalPathPhases['merkle tree'].count, 2);
    assert.deepEqual(
      summary.criticalPathActions.map((a) => a.name),
      ['Compiling a.cc', 'Linking ab'],
    );
    assert.ok(Math.abs((summary.executionSeconds ?? 0) - 0.4) < 1e-9);
    assert.ok(Math.abs(summary.wallSeconds - 5.15) < 1e-9);
    const text = formatBazelProfileSummary(summary).join('\n');
    assert.match(text, /execute remotely\s+4 x,\s+0\.3 s, mean\s+70 ms \|\s+2 x, 0\.1 s/);
  });

  it('summarises a local build, which has no remote phases', () => {
    const local = {
      traceEvents: [
        { name: 'thread_name', ph: 'M', pid: 1, tid: 0, args: { name: 'Critical Path' } },
        event('action processing', 'Compiling a.cc', 7, 0, 300),
        event('critical path component', "action 'Compiling a.cc'", 0, 0, 300),
      ],
    };
    const summary = summariseBazelProfile(local);
    assert.equal(summary.phases['execute remotely'].count, 0);
    assert.equal(summary.executionSeconds, undefined);
    const text = formatBazelProfileSummary(summary).join('\n');
    assert.doesNotMatch(text, /remote spawn phases/);
    assert.match(text, /Compiling a\.cc 0\.3 s/);
  });
});

describe('server metrics summary', () => {
  it('sums action phases and the clients’ calls, leaving out the workers’ long polls', () => {
    const text = [
      'granary_action_phase_seconds_sum{phase="queued"} 1.5',
      'granary_action_phase_seconds_count{phase="queued"} 3',
      'granary_action_phase_seconds_sum{phase="execution"} 0.9',
      'granary_action_phase_seconds_count{phase="execution"} 3',
      'granary_grpc_server_handling_seconds_sum{service="google.bytestream.ByteStream",method="Write",code="OK"} 2',
      'granary_grpc_server_handling_seconds_count{service="google.bytestream.ByteStream",method="Write",code="OK"} 10',
      'granary_grpc_server_handling_seconds_sum{service="google.bytestream.ByteStream",method="Write",code="CANCELLED"} 1',
      'granary_grpc_server_handling_seconds_count{service="google.bytestream.ByteStream",method="Write",code="CANCELLED"} 1',
      'granary_grpc_server_handling_seconds_sum{service="google.devtools.remoteworkers.v1test2.Bots",method="UpdateBotSession",code="OK"} 50',
      'granary_grpc_server_handling_seconds_count{service="google.devtools.remoteworkers.v1test2.Bots",method="UpdateBotSession",code="OK"} 5',
    ].join('\n');
    assert.deepEqual(summariseServerMetrics(text), [
      'action phases: queued 1.5 s (3 x, mean 500 ms); execution 0.9 s (3 x, mean 300 ms)',
      'calls: ByteStream.Write 11 x 3.0 s',
    ]);
  });
});

describe('operations summary', () => {
  it('gives the mean queue wait and slot time, overall and per mnemonic', () => {
    assert.equal(
      summariseOperations([
        { mnemonic: 'CppCompile', queuedAtMs: 0, startedAtMs: 10, completedAtMs: 310 },
        { mnemonic: 'CppCompile', queuedAtMs: 0, startedAtMs: 30, completedAtMs: 130 },
        { mnemonic: 'CppLink', queuedAtMs: 100, startedAtMs: 100, completedAtMs: 150 },
        { mnemonic: 'CppLink', queuedAtMs: 100 },
      ]),
      'operations (means): all 3 x, queued 13 ms, on a slot 150 ms; ' +
        'CppCompile 2 x, queued 20 ms, on a slot 200 ms; CppLink 1 x, queued 0 ms, on a slot 50 ms',
    );
  });
});
