import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseProcStatus, parseSizes } from './storeScaling.js';

const STATUS = `Name:\tnode
VmPeak:\t 1234567 kB
VmHWM:\t  370440 kB
VmRSS:\t  274720 kB
RssAnon:\t  200000 kB
`;

describe('store scaling', () => {
  it('reads VmRSS and VmHWM from /proc/PID/status in bytes, not VmPeak or RssAnon', () => {
    assert.deepEqual(parseProcStatus(STATUS), { vmRssBytes: 274720 * 1024, vmHwmBytes: 370440 * 1024 });
  });

  it('says which line /proc status lacks', () => {
    assert.throws(() => parseProcStatus('Name:\tnode\nVmHWM:\t 1 kB\n'), /no VmRSS line/);
  });

  it('takes ascending positive store sizes in GiB', () => {
    assert.deepEqual(parseSizes('1, 2,5,10'), [1, 2, 5, 10]);
    assert.deepEqual(parseSizes('0.5'), [0.5]);
  });

  it('refuses sizes that are not ascending positive numbers', () => {
    assert.throws(() => parseSizes('1,x'), /not a list of positive GiB counts/);
    assert.throws(() => parseSizes('0,1'), /not a list of positive GiB counts/);
    assert.throws(() => parseSizes(''), /not a list of positive GiB counts/);
    assert.throws(() => parseSizes('2,1'), /not ascending/);
  });
});
