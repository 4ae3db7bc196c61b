import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, digestOf } from '../digest/digest.js';
import { putBuffer } from '../storage/blobStore.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { EMPTY_DIRECTORY_DIGEST } from '../tree/directory.js';
import { ONE_LOG_STREAM, shellQuote, stepMarkerLine } from './buildAction.js';
import type { PlannedElement } from './builder.js';
import { artifactLog, elementLogReport, isMarkerLine, lastStep, renderLog } from './buildLog.js';

/** Runs a build script's lines as the worker would (`sh -e -c`), returning its two streams. */
function runScript(lines: string[]): { stdout: string; stderr: string } {
  const run = spawnSync('sh', ['-e', '-c', `${lines.join('\n')}\n`], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return { stdout: run.stdout, stderr: run.stderr };
}

const MULTI_LINE = 'echo first to stdout\necho then to stderr >&2\necho last to stdout\n';

describe('build logs', () => {
  it('hold output and errors in one stream, in the order they were written, after the whole command', () => {
    const { stdout, stderr } = runScript([
      ONE_LOG_STREAM,
      stepMarkerLine('build-commands 1/1', MULTI_LINE),
      `sh -e -c ${shellQuote(MULTI_LINE)}`,
    ]);
    assert.equal(stdout, '');
    assert.equal(
      renderLog(stderr),
      [
        '== build-commands 1/1',
        '$ echo first to stdout',
        '> echo then to stderr >&2',
        '> echo last to stdout',
        'first to stdout',
        'then to stderr',
        'last to stdout',
        '',
      ].join('\n'),
    );
    assert.deepEqual(lastStep(stderr), { label: 'build-commands 1/1', command: MULTI_LINE.replace(/\n$/, '') });
    assert.deepEqual(
      stderr.split('\n').filter((line) => !isMarkerLine(line)),
      ['first to stdout', 'then to stderr', 'last to stdout', ''],
    );
  });

  it('name the last command started, with quotes and colons kept', () => {
    const { stderr } = runScript([
      stepMarkerLine('configure-commands 1/2', 'true'),
      stepMarkerLine('build-commands 2/2', "echo 'a: b'"),
    ]);
    assert.deepEqual(lastStep(stderr), { label: 'build-commands 2/2', command: "echo 'a: b'" });
    assert.equal(lastStep('no markers at all\n'), undefined);
  });
});

describe('granary log of an element', () => {
  const cas = new MemoryBlobStore();
  const store = async (text: string): Promise<Digest> => {
    const data = Buffer.from(text);
    const digest = digestOf(data);
    await putBuffer(backgroundContext(), cas, digest, data);
    return digest;
  };
  const planned = (name: string, kind: string, artifact: PlannedElement['artifact']): PlannedElement =>
    ({ element: { name, kind }, key: name, artifact }) as unknown as PlannedElement;
  const ACTION = digestOf(Buffer.from('an action'));

  it('that ran commands is its log', async () => {
    const log = await store(`${stepMarkerLineText('install-commands 1/1', 'make install')}installing\n`);
    const report = await elementLogReport(cas, [
      planned('lib.bst', 'manual', { root: EMPTY_DIRECTORY_DIGEST, stderr: log, actionDigest: ACTION }),
    ]);
    assert.equal(report, '== install-commands 1/1\n$ make install\ninstalling\n');
  });

  it('that ran nothing (a stack) says so, then shows the logs of what it depends on, in order', async () => {
    const lib = await store('building lib\n');
    const app = await store('building app\n');
    const plan = [
      planned('base.bst', 'import', { root: EMPTY_DIRECTORY_DIGEST }),
      planned('lib.bst', 'manual', { root: EMPTY_DIRECTORY_DIGEST, stderr: lib, actionDigest: ACTION }),
      planned('app.bst', 'manual', { root: EMPTY_DIRECTORY_DIGEST, stderr: app, actionDigest: ACTION }),
      planned('stack.bst', 'stack', { root: EMPTY_DIRECTORY_DIGEST }),
    ];
    assert.equal(
      await elementLogReport(cas, plan),
      'granary: stack.bst (kind stack) ran no commands; the logs of the elements it depends on follow\n' +
        '=== lib.bst ===\nbuilding lib\n=== app.bst ===\nbuilding app\n',
    );
    assert.equal(
      await elementLogReport(cas, plan.slice(0, 1)),
      'granary: base.bst (kind import) ran no commands, nor did any element it depends on\n',
    );
  });

  it('built before the streams were joined shows its output, then its errors, each under a heading', async () => {
    const stdout = await store('compiling\n');
    const stderr = await store('warning: old\n');
    assert.equal(
      await artifactLog(cas, { root: EMPTY_DIRECTORY_DIGEST, stdout, stderr, actionDigest: ACTION }),
      '(built before Granary kept one log in order: the standard output, then the standard error)\n' +
        '--- standard output ---\ncompiling\n--- standard error ---\nwarning: old\n',
    );
  });

  it('that is not built is an error', async () => {
    await assert.rejects(elementLogReport(cas, [planned('new.bst', 'manual', undefined)]), /new\.bst is not built/);
  });
});

/** What stepMarkerLine's printf writes. */
function stepMarkerLineText(label: string, command: string): string {
  return runScript([stepMarkerLine(label, command)]).stderr;
}
