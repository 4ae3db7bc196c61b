import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it, mock } from 'node:test';
import { main } from './main.js';
import { packageVersion } from './version.js';

const REPOSITORY_VERSION = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

describe('granary --version', () => {
  it("is package.json's version", () => {
    assert.equal(packageVersion(), REPOSITORY_VERSION);
  });

  it('prints it and exits 0', async () => {
    const printed = mock.method(console, 'log', () => {});
    try {
      assert.equal(await main(['--version']), 0);
      assert.deepEqual(
        printed.mock.calls.map((call) => call.arguments),
        [[`granary ${REPOSITORY_VERSION}`]],
      );
    } finally {
      printed.mock.restore();
    }
  });
});
