// Runs every compiled test file with node's test runner, unit tests first, then
// end-to-end tests (which start real servers and clients). Extra arguments are
// passed through, e.g. `npm test -- --test-name-pattern=ByteStream`.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const dist = join(root, 'dist-test');

function collect(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'fixtures' ? [] : collect(path);
    return entry.name.endsWith('.test.js') ? [path] : [];
  });
}

const only = process.env.GRANARY_TESTS; // optional: "unit" or "e2e"
const unit = only === 'e2e' ? [] : [...collect(join(dist, 'src')), ...collect(join(dist, 'bench'))];
const e2e = only === 'unit' ? [] : collect(join(dist, 'test'));
const files = [...unit.sort(), ...e2e.sort()].map((f) => relative(root, f));
const result = spawnSync(
  process.execPath,
  // A test that hangs fails after 20 minutes instead of holding the whole run until CI gives up.
  [
    '--test',
    '--test-concurrency=1',
    '--test-timeout=1200000',
    '--test-reporter=spec',
    ...process.argv.slice(2),
    ...files,
  ],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
