/**
 * Dependency relations of elements as BuildStream defines them: an element is
 * built in a sandbox holding its build dependencies and, transitively, their
 * runtime dependencies; a dependency of type 'all' counts as both.
 */
import type { Element, Project } from './project/index.js';

export function buildDependencyNames(element: Element): string[] {
  return element.dependencies.filter((d) => d.type !== 'runtime').map((d) => d.name);
}

export function runtimeDependencyNames(element: Element): string[] {
  return element.dependencies.filter((d) => d.type !== 'build').map((d) => d.name);
}

/** The element itself and everything it needs at run time, transitively, in dependency order. */
export function runtimeClosure(
  project: Project,
  name: string,
  into: string[] = [],
  seen = new Set<string>(),
): string[] {
  if (seen.has(name)) return into;
  seen.add(name);
  const element = project.elements.get(name);
  if (!element) return into;
  for (const dep of runtimeDependencyNames(element)) runtimeClosure(project, dep, into, seen);
  into.push(name);
  return into;
}

/** What is staged at / when building an element: its build dependencies with their runtime closures. */
export function sandboxElements(project: Project, element: Element): string[] {
  const into: string[] = [];
  const seen = new Set<string>();
  for (const dep of buildDependencyNames(element)) runtimeClosure(project, dep, into, seen);
  return into;
}

/** Everything an element's artifact depends on for its cache key: build deps and runtime deps. */
export function keyDependencyNames(element: Element): string[] {
  return [...new Set(element.dependencies.map((d) => d.name))].sort();
}
