import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { billionLaughs } from '../../test/support/yamlBomb.js';
import { loadAccessFile, parseAccessFile, tokenSha256 } from './tokenFile.js';

const TOKEN = 'ci-token-0123456789abcdef';

describe('parseAccessFile', () => {
  it('reads tokens, token hashes and client-certificate subjects with their scopes and instances', () => {
    const entries = parseAccessFile(
      [
        '# the farm’s callers',
        '- name: ci',
        `  token: ${TOKEN}`,
        '  scopes: [read, cas-write, ac-write]',
        '  instances: ["*"]',
        '- name: readers',
        `  sha256: ${tokenSha256('reader-token-0123456789').toUpperCase()}`,
        '  scopes: [read]',
        '  instances: ["", "team/*"]',
        '- name: builders',
        '  client-certificate: "O=Acme\\\\, Inc, CN=builder-1"',
        '  scopes:',
        '    - bots',
        '    - cas-write',
        '  instances: ["*"]',
      ].join('\n'),
      'tokens.yaml',
    );
    assert.equal(entries.length, 3);
    const [ci, readers, builders] = entries;
    assert.deepEqual(ci?.credential, { kind: 'token', sha256Hex: tokenSha256(TOKEN), plaintext: true });
    assert.deepEqual([...(ci?.scopes ?? [])], ['read', 'cas-write', 'ac-write']);
    assert.deepEqual(ci?.instances, ['*']);
    assert.equal(ci?.line, 2);
    assert.deepEqual(readers?.credential, {
      kind: 'token',
      sha256Hex: tokenSha256('reader-token-0123456789'),
      plaintext: false,
    });
    assert.deepEqual(readers?.instances, ['', 'team/*']);
    assert.deepEqual(builders?.credential, { kind: 'certificate', subject: 'O=Acme\\, Inc,CN=builder-1' });
    assert.equal(builders?.line, 10);
  });

  it('reads an empty file as no callers', () => {
    assert.deepEqual(parseAccessFile('', 'f'), []);
    assert.deepEqual(parseAccessFile('# nobody yet\n', 'f'), []);
  });

  const entry = (lines: string[]) =>
    ['- name: first', `  token: ${TOKEN}`, '  scopes: [read]', '  instances: ["*"]', ...lines].join('\n');

  const refusals: [string, string, RegExp][] = [
    ['a mapping instead of a list', 'name: ci\n', /f:1: expected a list/],
    [
      'an unknown key',
      entry(['- name: x', `  token: ${TOKEN}x`, '  scope: [read]', '  instances: ["*"]']),
      /f:7: unknown key "scope"/,
    ],
    [
      'an unknown scope',
      entry(['- name: x', `  token: ${TOKEN}x`, '  scopes: [read, write]', '  instances: ["*"]']),
      /f:5: "x": unknown scope "write"/,
    ],
    ['no instances', entry(['- name: x', `  token: ${TOKEN}x`, '  scopes: [read]']), /f:5: entry has no "instances"/],
    [
      'an empty scope list',
      entry(['- name: x', `  token: ${TOKEN}x`, '  scopes: []', '  instances: ["*"]']),
      /f:7: "scopes" must be a non-empty list/,
    ],
    [
      'two entries with one name',
      entry(['- name: first', `  token: ${TOKEN}x`, '  scopes: [read]', '  instances: ["*"]']),
      /f:5: a second entry is named "first"/,
    ],
    [
      'two entries with one token',
      entry(['- name: x', `  sha256: ${tokenSha256(TOKEN)}`, '  scopes: [read]', '  instances: ["*"]']),
      /f:5: "x" has the same credential as "first"/,
    ],
    [
      'a short token',
      '- name: x\n  token: short\n  scopes: [read]\n  instances: ["*"]\n',
      /f:1: the token of "x" must be at least 16 characters/,
    ],
    ['a malformed sha256', '- name: x\n  sha256: abc\n  scopes: [read]\n  instances: ["*"]\n', /64 hexadecimal digits/],
    [
      'two credentials',
      `- name: x\n  token: ${TOKEN}\n  sha256: ${tokenSha256(TOKEN)}\n  scopes: [read]\n  instances: ["*"]\n`,
      /exactly one of token, sha256 or client-certificate/,
    ],
    ['no credential', '- name: x\n  scopes: [read]\n  instances: ["*"]\n', /exactly one of/],
    ['no name', `- token: ${TOKEN}\n  scopes: [read]\n  instances: ["*"]\n`, /f:1: entry has no "name"/],
    [
      'a number as instance',
      `- name: x\n  token: ${TOKEN}\n  scopes: [read]\n  instances: [3]\n`,
      /f:4: "instances" must list strings/,
    ],
    [
      'a subject without attributes',
      '- name: x\n  client-certificate: builder\n  scopes: [read]\n  instances: ["*"]\n',
      /must be a subject like CN=builder/,
    ],
    ['broken YAML', '- name: [x\n', /f:2: Flow sequence/],
    ['an alias bomb', billionLaughs(), /f:10: aliases expand this file by more than 100000 nodes/],
  ];
  for (const [what, text, expected] of refusals) {
    it(`refuses ${what}, naming the file and line`, () => {
      assert.throws(() => parseAccessFile(text, 'f'), expected);
    });
  }
});

describe('loadAccessFile', () => {
  it('warns when a file of plain tokens is readable by others, and not when it holds only hashes', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'granary-tokens-'));
    try {
      const plain = join(directory, 'plain.yaml');
      writeFileSync(plain, `- name: ci\n  token: ${TOKEN}\n  scopes: [read]\n  instances: ["*"]\n`);
      chmodSync(plain, 0o644);
      const loaded = await loadAccessFile(plain);
      assert.equal(loaded.entries.length, 1);
      assert.match(loaded.warnings.join('\n'), /other users may read it \(mode 644\)/);
      chmodSync(plain, 0o600);
      assert.deepEqual((await loadAccessFile(plain)).warnings, []);
      const hashed = join(directory, 'hashed.yaml');
      writeFileSync(hashed, `- name: ci\n  sha256: ${tokenSha256(TOKEN)}\n  scopes: [read]\n  instances: ["*"]\n`);
      chmodSync(hashed, 0o644);
      assert.deepEqual((await loadAccessFile(hashed)).warnings, []);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
