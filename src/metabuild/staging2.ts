/**
 * What a BuildStream 2 element's sandbox holds, and in which order.
 *
 * Where dependencies' files overlap, the one staged last wins, so the order
 * decides artifacts. With each element's dependencies sorted as BuildStream 2
 * sorts them (project/dependencyOrder.ts), it stages each selected dependency after its runtime
 * dependencies (depth first, each element once), and lets build elements
 * stage some dependencies elsewhere than '/' (`config: {location: DIR}` on
 * the dependency), in sorted order of locations. Integration commands run
 * for the dependencies staged at '/', in staging order.
 */
import type { Element, Project } from './project/index.js';

/**
 * The elements staged for `selection`, in staging order: each selected
 * element after its runtime dependencies (recursively), every element once.
 */
export function stagingOrder(project: Project, selection: readonly string[]): string[] {
  const order: string[] = [];
  const visited = new Set<string>();
  const visit = (name: string) => {
    if (visited.has(name)) return;
    visited.add(name);
    for (const dependency of project.elements.get(name)?.dependencies ?? []) {
      if (dependency.type !== 'build') visit(dependency.name);
    }
    order.push(name);
  };
  for (const name of selection) visit(name);
  return order;
}

/** The direct build dependencies of an element, grouped by where they are staged ('/' unless configured). */
export function stagingLayout(element: Element): Map<string, string[]> {
  const layout = new Map<string, string[]>();
  for (const dependency of element.dependencies) {
    if (dependency.type === 'runtime') continue;
    const configs = dependency.config && dependency.config.length > 0 ? dependency.config : [undefined];
    for (const config of configs) {
      const location = config && typeof config.location === 'string' ? config.location.trim() || '/' : '/';
      const list = layout.get(location) ?? [];
      if (!list.includes(dependency.name)) list.push(dependency.name);
      layout.set(location, list);
    }
  }
  return new Map([...layout].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
