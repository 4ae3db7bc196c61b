/**
 * The matching rule between an action's platform and a worker's properties:
 * an action may run on a worker when, for every property the action names, the
 * worker advertises that same name with that same value (names and values compare
 * exactly; a worker may advertise several values for one name, e.g. two pools).
 * Properties the worker does not know about make the action unrunnable there.
 * Worker-side hints listed in WORKER_HINT_PROPERTIES are handled by the worker
 * itself: instead of being matched by name and value, each requires the worker
 * property it maps to.
 */
import type { PlatformProperty } from './types.js';

/**
 * Properties that tune how a worker runs an action rather than which worker runs
 * it, each with the worker property it requires instead.
 *
 * - `unixUID`, `unixGID`: BuildStream 2 sends them (when a project sets
 *   `sandbox: build-uid` / `build-gid`) for BuildBox's runners, whose input root is
 *   '/'. Granary's workers take them as a request for the hermetic sandbox (see
 *   sandboxProfileFor in src/worker/executeAction.ts), so they need a worker that
 *   offers `sandbox=hermetic`, never an unsandboxed one. The command runs as the
 *   user the worker runs as (root for `granary serve` started as root), whatever
 *   the value.
 *
 * `network` is deliberately not a hint: Granary's sandboxes never give actions the
 * network, and a sandboxing worker advertises `network=off`; an action asking for
 * `network=on` (BuildStream only does for non-isolated `bst shell`) matches only
 * workers that advertise it and otherwise fails at once instead of running offline.
 */
export const WORKER_HINT_PROPERTIES: ReadonlyMap<string, PlatformProperty> = new Map([
  ['unixUID', { name: 'sandbox', value: 'hermetic' }],
  ['unixGID', { name: 'sandbox', value: 'hermetic' }],
]);

export function satisfies(worker: readonly PlatformProperty[], action: readonly PlatformProperty[]): boolean {
  const offers = (wanted: PlatformProperty) => worker.some((p) => p.name === wanted.name && p.value === wanted.value);
  return action.every((wanted) => offers(WORKER_HINT_PROPERTIES.get(wanted.name) ?? wanted));
}
