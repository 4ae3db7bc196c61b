import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { listeningInodes, parentOf, processTree } from './serverProcesses.js';

describe('server processes from /proc', () => {
  it('finds the inode of a listening socket by port and ignores connected sockets on it', () => {
    const table = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1',
      '   1: 0100007F:2384 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4343 1',
      '   2: 0100007F:2385 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1',
    ].join('\n');
    assert.deepEqual(listeningInodes(table, 0x2384), ['4242']);
  });

  it('reads the parent process ID even when the command name holds spaces and parentheses', () => {
    assert.equal(parentOf('1234 (my (odd) name) S 77 1234 1234 0 -1'), 77);
    assert.equal(parentOf(''), undefined);
  });

  it('includes a process and its children in its tree', async () => {
    const tree = await processTree(process.ppid);
    assert.ok(tree.includes(process.ppid));
    assert.ok(tree.includes(process.pid));
  });
});
