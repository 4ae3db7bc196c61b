/**
 * The order of each element's dependencies in BuildStream 2 projects.
 *
 * BuildStream 2's loader sorts every element's dependency list: an element
 * after those it depends on (directly or not), runtime-only dependencies
 * after the others, then by name within the owning project, elements of
 * subprojects before those of the project itself. That order is the staging
 * order, which decides which file wins where dependencies overlap.
 */
import type { Dependency } from './elementFile.js';
import type { Element } from './elementResolve.js';

/** Every element with its dependencies sorted as BuildStream 2's loader sorts them. */
export function sortDependencies(elements: ReadonlyMap<string, Element>): Map<string, Element> {
  const reach = new Map<string, Set<string>>();
  const reachable = (name: string, path: Set<string> = new Set()): Set<string> => {
    const known = reach.get(name);
    if (known) return known;
    const found = new Set<string>();
    if (path.has(name)) return found; // cycles are reported elsewhere
    path.add(name);
    for (const dependency of elements.get(name)?.dependencies ?? []) {
      found.add(dependency.name);
      for (const further of reachable(dependency.name, path)) found.add(further);
    }
    path.delete(name);
    reach.set(name, found);
    return found;
  };
  const localName = (name: string) => name.slice(name.lastIndexOf(':') + 1);
  const junctionOf = (name: string) => (name.includes(':') ? name.slice(0, name.lastIndexOf(':')) : '');
  const compare = (a: Dependency, b: Dependency): number => {
    if (reachable(a.name).has(b.name)) return 1;
    if (reachable(b.name).has(a.name)) return -1;
    if (a.type !== b.type) {
      if (a.type === 'runtime') return 1;
      if (b.type === 'runtime') return -1;
    }
    const [nameA, nameB] = [localName(a.name), localName(b.name)];
    if (nameA !== nameB) return nameA > nameB ? 1 : -1;
    const [junctionA, junctionB] = [junctionOf(a.name), junctionOf(b.name)];
    if (junctionA && junctionB) return junctionA === junctionB ? 0 : junctionA > junctionB ? 1 : -1;
    if (junctionA) return -1;
    if (junctionB) return 1;
    return 0;
  };
  const sorted = new Map<string, Element>();
  for (const [name, element] of elements) {
    sorted.set(name, { ...element, dependencies: [...element.dependencies].sort(compare) });
  }
  return sorted;
}
