/**
 * Where a client's bearer token comes from: a file (`--token-file`), re-read when
 * it changes so a long-running worker picks up a rotated token, or the
 * GRANARY_TOKEN environment variable. Never the command line, where every user
 * of the machine could read it in the process list.
 */
import { readFileSync, statSync } from 'node:fs';
import type { TokenSource } from '../grpc/dial.js';

/** The environment variable holding a client's token when no token file is given. */
export const TOKEN_ENVIRONMENT_VARIABLE = 'GRANARY_TOKEN';

/** How often, at most, a token file is looked at again. */
const RECHECK_INTERVAL_MS = 1000;

function tokenOf(text: string, origin: string): string {
  const token = text.trim();
  if (token === '' || /\s/.test(token)) throw new Error(`${origin} must hold one token (no spaces)`);
  return token;
}

/** A token read from `path` now (failing at once when unreadable) and again whenever the file changes. */
export function fileTokenSource(path: string, nowMs: () => number = Date.now): TokenSource {
  const read = () => {
    try {
      return tokenOf(readFileSync(path, 'utf8'), path);
    } catch (error) {
      throw new Error(`cannot read the token file: ${(error as Error).message}`);
    }
  };
  let token = read();
  let modifiedMs = statSync(path).mtimeMs;
  let checkedMs = nowMs();
  return () => {
    if (nowMs() - checkedMs < RECHECK_INTERVAL_MS) return token;
    checkedMs = nowMs();
    try {
      const modified = statSync(path).mtimeMs;
      if (modified !== modifiedMs) {
        token = read();
        modifiedMs = modified;
      }
    } catch {
      // A file being replaced may be missing for a moment: keep the token we have.
    }
    return token;
  };
}

/** The token of GRANARY_TOKEN, or undefined when it is not set. */
export function environmentTokenSource(environment: NodeJS.ProcessEnv = process.env): TokenSource | undefined {
  const value = environment[TOKEN_ENVIRONMENT_VARIABLE];
  if (value === undefined || value === '') return undefined;
  const token = tokenOf(value, TOKEN_ENVIRONMENT_VARIABLE);
  return () => token;
}
