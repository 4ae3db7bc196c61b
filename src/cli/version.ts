/** Granary's version: the `version` of package.json, for `granary --version` and provenance records. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** package.json's version, or undefined if it cannot be read (an unusual installation). */
export function packageVersion(): string | undefined {
  try {
    // This module is dist/src/cli/version.js (or dist-test/...): package.json is three levels up.
    const path = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'package.json');
    return (JSON.parse(readFileSync(path, 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}
