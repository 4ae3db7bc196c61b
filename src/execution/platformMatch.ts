/**
 * The matching rule between an action's platform and a worker's properties:
 * an action may run on a worker when, for every property the action names, the
 * worker advertises that same name with that same value (names and values compare
 * exactly; a worker may advertise several values for one name, e.g. two pools).
 * Properties the worker does not know about make the action unrunnable there.
 * Worker-side hints listed in WORKER_HINT_PROPERTIES are handled by the worker
 * itself and are not matched.
 */
import type { PlatformProperty } from './types.js';

/** Properties that tune how a worker runs an action rather than which worker runs it. */
export const WORKER_HINT_PROPERTIES = new Set<string>([]);

export function satisfies(worker: readonly PlatformProperty[], action: readonly PlatformProperty[]): boolean {
  return action.every(
    (wanted) =>
      WORKER_HINT_PROPERTIES.has(wanted.name) || worker.some((p) => p.name === wanted.name && p.value === wanted.value),
  );
}
