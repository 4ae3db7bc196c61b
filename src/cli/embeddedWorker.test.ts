import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { until } from '../../test/support/waiting.js';
import { createLogger } from '../observability/log.js';
import { EmbeddedWorker, type EmbeddedWorkerOptions } from './embeddedWorker.js';

const quiet = createLogger('test');
const lines: string[] = [];
const recording = {
  ...quiet,
  warn: (message: string) => {
    lines.push(message);
  },
};

/** A stand-in worker process: a Node script that gets the worker's flags as arguments. */
function options(script: string, extra: Partial<EmbeddedWorkerOptions> = {}): EmbeddedWorkerOptions {
  return {
    server: 'grpc://127.0.0.1:1',
    slots: 1,
    workDirectory: '/nonexistent',
    sandbox: 'none',
    platform: [],
    drainTimeoutMs: 1000,
    log: recording,
    command: [process.execPath, '-e', script, '--'],
    firstBackoffMs: 20,
    longestBackoffMs: 80,
    ...extra,
  };
}

/** The restart delays the supervisor logged, in order. */
function restartDelaysMs(logged: readonly string[]): number[] {
  return logged.flatMap((line) => {
    const match = /embedded worker exit code 3; starting it again in (\d+) ms/.exec(line);
    return match ? [Number(match[1])] : [];
  });
}

describe('the embedded worker supervisor', () => {
  it('starts a worker that died again, with a growing backoff, and says each time how it ended', async () => {
    const exits: string[] = [];
    let restarts = 0;
    const worker = new EmbeddedWorker(
      options('process.exit(3)', {
        onExit: (description) => exits.push(description),
        onRestart: () => {
          restarts++;
        },
      }),
    );
    worker.start();
    try {
      await until(() => restarts >= 3, 60_000); // three node start-ups take seconds on a loaded machine
    } finally {
      await worker.stop(); // also when the wait fails, or the supervisor would keep the test file alive
    }
    const stoppedAt = restarts;
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(restarts, stoppedAt, 'a stopped supervisor starts nothing more');
    assert.ok(exits.length >= 3);
    assert.ok(exits.every((description) => description === 'exit code 3'));
    const delays = restartDelaysMs(lines);
    assert.deepEqual(delays.slice(0, 3), [20, 40, 80], 'doubling from the first backoff');
    assert.ok(
      delays.every((delayMs) => delayMs <= 80),
      `capped at the longest backoff: ${delays}`,
    );
    assert.equal(worker.restartCount, stoppedAt);
  });

  it('starts again after the first backoff each time a worker had stayed up long enough', async () => {
    const from = lines.length;
    let restarts = 0;
    const worker = new EmbeddedWorker(
      options('process.exit(3)', {
        stableAfterMs: 0,
        onRestart: () => {
          restarts++;
        },
      }),
    );
    worker.start();
    try {
      await until(() => restarts >= 2, 60_000);
    } finally {
      await worker.stop();
    }
    const delays = restartDelaysMs(lines.slice(from));
    assert.ok(delays.length >= 2);
    assert.ok(
      delays.every((delayMs) => delayMs === 20),
      `${delays}`,
    );
  });

  it('asks a running worker to drain over its IPC channel and waits for it to exit', async () => {
    let exited = 0;
    const worker = new EmbeddedWorker(
      options(
        "process.on('message', (m) => { if (m.type === 'drain') setTimeout(() => process.exit(0), 50); }); setInterval(() => {}, 1000);",
        { onExit: () => exited++ },
      ),
    );
    worker.start();
    let pid: number | undefined;
    try {
      await until(() => worker.pid !== undefined, 30_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      pid = worker.pid;
    } finally {
      await worker.stop();
    }
    assert.equal(worker.pid, undefined);
    assert.equal(exited, 0, 'an exit it asked for is not a death');
    assert.throws(() => process.kill(pid as number, 0), 'the process is gone');
  });

  it('starts a worker killed with SIGKILL again', async () => {
    let restarted = false;
    const worker = new EmbeddedWorker(
      options('setInterval(() => {}, 1000);', {
        onRestart: () => {
          restarted = true;
        },
      }),
    );
    worker.start();
    try {
      await until(() => worker.pid !== undefined, 30_000);
      const first = worker.pid as number;
      process.kill(first, 'SIGKILL');
      await until(() => restarted && worker.pid !== undefined && worker.pid !== first, 30_000);
    } finally {
      await worker.stop();
    }
  });
});
