// Removes compiled output directories before a build, so files deleted or moved
// in the sources never linger (and stale tests never run) in dist/ or dist-test/.
import { rmSync } from 'node:fs';

for (const directory of process.argv.slice(2)) rmSync(directory, { recursive: true, force: true });
