/**
 * Where a server's CPU time went, from a V8 profile written by `node
 * --cpu-prof`: the share of each kind of work (idle, garbage collection,
 * native code, Node internals, grpc-js, protobuf, Granary) and the functions
 * with the most self and total time. bench/profileSummary.ts prints it.
 *
 * On a loaded machine the process is often preempted; the sample taken when it
 * runs again carries the whole gap as its time delta, which inflates whatever
 * was on the stack then (typically a system call). Weighting every sample the
 * same ('samples', the default) approximates CPU time instead; 'time' weights
 * by the recorded deltas (wall-clock time).
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

/** The parts of a .cpuprofile file this summary reads. */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Share {
  name: string;
  /** Samples, or microseconds when weighted by time. */
  weight: number;
  fraction: number;
}

export type Weighting = 'samples' | 'time';

export interface ProfileSummary {
  weighting: Weighting;
  /** Samples, or microseconds when weighted by time. */
  totalWeight: number;
  categories: Share[];
  selfTime: Share[];
  /** Time with the function anywhere on the stack (each sample counted once per function). */
  totalTime: Share[];
}

/** Which kind of work a frame is, judged by its script's URL. */
export function categoryOf(frame: CallFrame): string {
  const { functionName, url } = frame;
  if (functionName === '(idle)') return 'idle (event loop waiting)';
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(program)' || (url === '' && functionName !== '(root)')) return 'native (V8/C++/syscalls)';
  if (url.includes('/@grpc/grpc-js/')) return 'grpc-js';
  if (url.includes('/src/gen/') || url.includes('/@bufbuild/protobuf/') || url.includes('protobufjs')) {
    return 'protobuf encode/decode';
  }
  if (url.startsWith('node:')) return 'node internals (streams, fs, net, http2)';
  if (url.includes('/node_modules/')) return 'other dependencies';
  return 'granary';
}

function frameName(frame: CallFrame): string {
  const file = frame.url.replace(/^.*\/(dist|dist-test|node_modules)\//, '').replace(/^file:\/\//, '');
  const name = frame.functionName || '(anonymous)';
  return file ? `${name} ${file}:${frame.lineNumber + 1}` : name;
}

export function summariseProfile(profile: CpuProfile, top = 25, weighting: Weighting = 'samples'): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const categories = new Map<string, number>();
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let totalWeight = 0;
  const add = (map: Map<string, number>, key: string, value: number) => map.set(key, (map.get(key) ?? 0) + value);
  profile.samples.forEach((id, index) => {
    const delta = weighting === 'samples' ? 1 : Math.max(0, profile.timeDeltas[index] ?? 0);
    const node = byId.get(id);
    if (!node) return;
    totalWeight += delta;
    add(categories, categoryOf(node.callFrame), delta);
    add(self, frameName(node.callFrame), delta);
    const onStack = new Set<string>();
    for (let current: number | undefined = id; current !== undefined; current = parentOf.get(current)) {
      const frame = byId.get(current)?.callFrame;
      if (frame && frame.functionName !== '(root)') onStack.add(frameName(frame));
    }
    for (const name of onStack) add(total, name, delta);
  });
  const shares = (map: Map<string, number>, limit: number): Share[] =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, weight]) => ({ name, weight, fraction: totalWeight ? weight / totalWeight : 0 }));
  return {
    weighting,
    totalWeight,
    categories: shares(categories, categories.size),
    selfTime: shares(self, top),
    totalTime: shares(total, top),
  };
}
