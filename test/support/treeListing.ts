/**
 * Describing a checked-out directory tree line by line (paths, contents, executable bits,
 * symlink targets), so that two trees, say Granary's artifact and BuildStream's, can be
 * compared and their differences shown.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * One line per path below `root`, sorted: `f PATH x|- SHA256` for files (with
 * their executable bit), `l PATH -> TARGET` for symlinks, `d PATH` for directories.
 */
export function describeTree(root: string): string[] {
  const lines: string[] = [];
  const walk = (relative: string) => {
    for (const name of readdirSync(join(root, relative)).sort()) {
      const path = relative ? `${relative}/${name}` : name;
      const full = join(root, path);
      const stat = lstatSync(full);
      if (stat.isSymbolicLink()) lines.push(`l ${path} -> ${readlinkSync(full)}`);
      else if (stat.isDirectory()) {
        lines.push(`d ${path}`);
        walk(path);
      } else if (stat.isFile()) {
        const hash = createHash('sha256').update(readFileSync(full)).digest('hex');
        lines.push(`f ${path} ${stat.mode & 0o111 ? 'x' : '-'} ${hash}`);
      } else lines.push(`? ${path}`);
    }
  };
  walk('');
  return lines;
}

/** The lines only in `a` and only in `b`, at most `limit` of each. */
export function treeDifferences(a: string[], b: string[], limit = 20): { onlyA: string[]; onlyB: string[] } {
  const setA = new Set(a);
  const setB = new Set(b);
  return {
    onlyA: a.filter((line) => !setB.has(line)).slice(0, limit),
    onlyB: b.filter((line) => !setA.has(line)).slice(0, limit),
  };
}
