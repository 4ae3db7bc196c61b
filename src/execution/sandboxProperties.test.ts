import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bubblewrapHint } from './sandboxProperties.js';

describe('the hint to install bubblewrap', () => {
  it('names the sandbox properties an action asks for and the Debian package', () => {
    assert.equal(
      bubblewrapHint([
        { name: 'OSFamily', value: 'linux' },
        { name: 'sandbox', value: 'hermetic' },
      ]),
      ' (Granary workers offer sandbox=hermetic only when they sandbox with bubblewrap: ' +
        'install bubblewrap on the worker (Debian package bubblewrap: apt-get install bubblewrap))',
    );
    assert.match(bubblewrapHint([{ name: 'unixUID', value: '1000' }]), /offer sandbox=hermetic only .*bubblewrap/);
    assert.match(bubblewrapHint([{ name: 'network', value: 'off' }]), /offer network=off only/);
  });

  it('is empty for actions that ask for no sandbox', () => {
    assert.equal(bubblewrapHint([{ name: 'OSFamily', value: 'linux' }]), '');
    assert.equal(bubblewrapHint([{ name: 'network', value: 'on' }]), '');
  });
});
