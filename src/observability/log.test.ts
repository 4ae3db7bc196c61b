import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { configureLogging, createLogger, formatLine, parseLogFormat } from './log.js';

const time = new Date('2026-12-02T03:00:00.000Z');

describe('log lines', () => {
  after(() => configureLogging({ format: 'text', sink: { write: (line) => process.stdout.write(line) } }));

  it('writes text as the commands always did, with fields as key=value and quoted when they hold spaces', () => {
    const line = formatLine(
      'text',
      'granary',
      'info',
      'action finished',
      {
        event: 'action_finished',
        action: 'abc/12',
        exit_code: 0,
        cache_hit: false,
        error: 'two words',
        skipped: undefined,
        platform: ['OSFamily=linux', 'ISA=x86-64'],
      },
      time,
    );
    assert.equal(
      line,
      'granary: action finished action=abc/12 exit_code=0 cache_hit=false error="two words" platform=OSFamily=linux,ISA=x86-64',
    );
  });

  it('marks warnings and errors in text', () => {
    assert.equal(formatLine('text', 'granary worker', 'warn', 'retrying', {}, time), 'granary worker: WARN: retrying');
  });

  it('writes json as one object per line with time, level, component, message and every defined field', () => {
    const line = formatLine(
      'json',
      'granary',
      'info',
      'worker w1 joined',
      { event: 'worker_joined', slots: 2, peer: undefined },
      time,
    );
    assert.deepEqual(JSON.parse(line), {
      time: '2026-12-02T03:00:00.000Z',
      level: 'info',
      component: 'granary',
      message: 'worker w1 joined',
      event: 'worker_joined',
      slots: 2,
    });
  });

  it('never lets a field overwrite the message or the level', () => {
    const line = formatLine('json', 'granary', 'info', 'real', { message: 'fake', level: 'error' }, time);
    assert.equal(JSON.parse(line).message, 'real');
    assert.equal(JSON.parse(line).level, 'info');
  });

  it('sends every logger of the process through the configured format and sink', () => {
    const lines: string[] = [];
    configureLogging({ format: 'json', sink: { write: (line) => lines.push(line) }, now: () => time });
    createLogger('granary').component('granary worker').warn('lost the farm', { attempt: 3 });
    assert.equal(lines.length, 1);
    assert.ok(lines[0]?.endsWith('\n'));
    assert.equal(JSON.parse(lines[0] as string).component, 'granary worker');
  });

  it('accepts only text and json as formats', () => {
    assert.equal(parseLogFormat('json'), 'json');
    assert.equal(parseLogFormat('text'), 'text');
    assert.equal(parseLogFormat('yaml'), undefined);
  });
});
