import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAgainst, parseAgainstList } from './against.js';

describe('--against values', () => {
  it('labels a bare URL with its host and port', () => {
    assert.deepEqual(parseAgainst('grpc://127.0.0.1:9092'), { label: '127.0.0.1:9092', url: 'grpc://127.0.0.1:9092' });
  });

  it('takes a label before an equals sign and keeps an instance name in the URL', () => {
    assert.deepEqual(parseAgainst('buildbarn=grpc://localhost:8981/main'), {
      label: 'buildbarn',
      url: 'grpc://localhost:8981/main',
    });
  });

  it('rejects a URL without a port or with another scheme', () => {
    assert.throws(() => parseAgainst('grpc://localhost'), /expected \[LABEL=\]grpc:\/\/HOST:PORT/);
    assert.throws(() => parseAgainst('http://localhost:8080'), /expected/);
    assert.throws(() => parseAgainst('bazel-remote='), /expected/);
  });

  it('rejects two servers with the same label', () => {
    assert.throws(() => parseAgainstList(['a=grpc://h:1', 'a=grpc://h:2']), /two servers are labelled "a"/);
  });
});
