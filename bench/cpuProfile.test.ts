import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { categoryOf, summariseProfile } from './cpuProfile.js';

const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });

describe('CPU profile summary', () => {
  it('sorts frames into kinds of work by their script', () => {
    assert.equal(categoryOf(frame('(idle)')), 'idle (event loop waiting)');
    assert.equal(categoryOf(frame('(garbage collector)')), 'garbage collection');
    assert.equal(categoryOf(frame('writev')), 'native (V8/C++/syscalls)');
    assert.equal(categoryOf(frame('sendMessage', 'file:///r/node_modules/@grpc/grpc-js/build/src/x.js')), 'grpc-js');
    assert.equal(categoryOf(frame('decode', 'file:///r/dist/src/gen/build/x.js')), 'protobuf encode/decode');
    assert.equal(
      categoryOf(frame('onread', 'node:internal/stream_base_commons')),
      'node internals (streams, fs, net, http2)',
    );
    assert.equal(categoryOf(frame('put', 'file:///r/dist/src/storage/diskBlobStore.js')), 'granary');
  });

  it('counts self time at the sampled frame and total time once for every function on its stack, by recorded time', () => {
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(root)'), children: [2] },
        { id: 2, callFrame: frame('handler', 'file:///r/dist/src/a.js'), children: [3, 4] },
        { id: 3, callFrame: frame('hash', 'file:///r/dist/src/b.js') },
        { id: 4, callFrame: frame('(garbage collector)') },
      ],
      samples: [3, 3, 4, 2],
      timeDeltas: [100, 100, 50, 750],
    };
    const summary = summariseProfile(profile, 25, 'time');
    assert.equal(summary.totalWeight, 1000);
    assert.deepEqual(
      summary.selfTime.map((s) => [s.name, s.fraction]),
      [
        ['handler src/a.js:1', 0.75],
        ['hash src/b.js:1', 0.2],
        ['(garbage collector)', 0.05],
      ],
    );
    assert.equal(summary.totalTime.find((s) => s.name === 'handler src/a.js:1')?.fraction, 1);
    assert.deepEqual(
      summary.categories.map((c) => c.name),
      ['granary', 'garbage collection'],
    );
  });
});
