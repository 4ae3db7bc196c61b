/**
 * Builds elements through the farm. Cache keys are computed first (dependencies
 * before dependents); an element whose key already has an artifact is never
 * rebuilt. The rest are built in dependency order, up to `jobs` at a time: build
 * kinds as one REAPI Action each, import/stack/compose by composing trees in the
 * CAS. Events report every element's state and current step for the UI.
 */
import type { Connection } from '../client/connection.js';
import { executeRemotely } from '../client/execute.js';
import type { AssetService } from '../client/remoteAsset.js';
import { backgroundContext } from '../context/requestContext.js';
import type { Digest } from '../digest/digest.js';
import type { PlatformProperty } from '../execution/types.js';
import { type BlobStore, getBuffer, putBuffer } from '../storage/blobStore.js';
import { EMPTY_DIRECTORY_DIGEST } from '../tree/directory.js';
import { graftAt, mergeTrees, subtreeAt } from '../tree/editor.js';
import { type Artifact, ArtifactStore } from './artifactStore.js';
import { type Assembly2Context, Assembly2Error, assemble2 } from './assemble2.js';
import { type PreparedAction, prepareBuildAction } from './buildAction.js';
import { isMarkerLine, lastStep } from './buildLog.js';
import { cacheKey } from './cacheKey.js';
import { composeArtifact } from './compose.js';
import { buildDependencyNames, sandboxElements } from './graph.js';
import { type Element, type Project, resolveTargets } from './project/index.js';
import {
  defaultSourceKinds,
  format2SourceKinds,
  type SourceDeclaration,
  type SourceKeyMaterial,
  type SourceKindRegistry,
  sourcesKey,
  stageSources,
} from './sources/index.js';
import { relativizeSymlinks } from './symlinks.js';

export type ElementState = 'cached' | 'buildable' | 'waiting' | 'queued' | 'running' | 'built' | 'failed' | 'skipped';

export interface ElementEvent {
  element: string;
  state: ElementState;
  /** What a running element is doing: "staging", "queued on the farm", "configure-commands 1/2", ... */
  step?: string;
  /** For failures: the failing command and the tail of the log. */
  detail?: string;
}

export interface BuilderOptions {
  project: Project;
  connection: Connection;
  cas: BlobStore;
  /** Downloads (tarballs) and scratch space. */
  cacheDirectory: string;
  platform: PlatformProperty[];
  jobs?: number;
  keepGoing?: boolean;
  onEvent?: (event: ElementEvent) => void;
  /** The farm's Remote Asset service, for sources that fetch assets. */
  asset?: AssetService;
  /** Elements built again even when cached: their artifacts and build Actions are not looked up in any cache. */
  rebuild?: readonly string[];
}

export interface PlannedElement {
  element: Element;
  key: string;
  artifact?: Artifact;
  /** The key material of its sources, in order (what the cache key holds of them). */
  sources?: SourceKeyMaterial[];
}

export class BuildFailure extends Error {}

export class Builder {
  readonly artifacts: ArtifactStore;
  private readonly planned = new Map<string, PlannedElement>();

  constructor(private readonly options: BuilderOptions) {
    this.artifacts = new ArtifactStore(options.connection, options.cas);
  }

  /** Computes keys and looks up artifacts of the targets and everything they need. */
  async plan(targets: readonly string[]): Promise<PlannedElement[]> {
    const ordered = resolveTargets(this.options.project, targets);
    for (const element of ordered) {
      if (this.planned.has(element.name)) continue;
      const sources = await sourcesKey(this.declarations(element), this.sourceContext(element), registryOf(element));
      const dependencies = element.dependencies.map((d) => ({
        name: d.name,
        type: d.type,
        key: (this.planned.get(d.name) as PlannedElement).key,
        // Where a BuildStream 2 build element stages the dependency (`config: {location: ...}`).
        ...(d.config && d.config.length > 0 ? { config: d.config } : {}),
      }));
      const key = cacheKey({ element, sources, dependencies, platform: this.options.platform });
      const artifact = this.options.rebuild?.includes(element.name)
        ? undefined
        : await this.artifacts.lookup(element.project.name, element.name, key);
      this.planned.set(element.name, { element, key, artifact, sources });
    }
    return ordered.map((e) => this.planned.get(e.name) as PlannedElement);
  }

  /** The state `granary show` reports: cached, buildable (all build deps cached) or waiting. */
  stateOf(planned: PlannedElement): ElementState {
    if (planned.artifact) return 'cached';
    const deps = sandboxElements(this.options.project, planned.element);
    return deps.every((d) => this.planned.get(d)?.artifact) ? 'buildable' : 'waiting';
  }

  /** Builds what is not cached; returns the names that failed. */
  async build(targets: readonly string[]): Promise<{ failed: string[]; built: string[] }> {
    const plan = await this.plan(targets);
    const emit = (event: ElementEvent) => this.options.onEvent?.(event);
    const pending = new Map<string, PlannedElement>();
    for (const p of plan) {
      if (p.artifact) emit({ element: p.element.name, state: 'cached' });
      else {
        pending.set(p.element.name, p);
        emit({ element: p.element.name, state: 'waiting' });
      }
    }
    const failed: string[] = [];
    const built: string[] = [];
    const jobs = Math.max(1, this.options.jobs ?? 4);
    /** Elements being built, until their artifact exists. */
    const running = new Map<string, Promise<void>>();
    /** Artifacts being recorded in the farm's action cache (dependants need not wait for that). */
    const recording = new Set<Promise<void>>();
    let stop = false;
    // Resolves the current wait when an artifact comes to exist before its job ends.
    let wake: () => void = () => undefined;
    const isDone = (name: string) => this.planned.get(name)?.artifact !== undefined;
    const isBroken = (name: string): boolean =>
      failed.includes(name) ||
      sandboxElements(this.options.project, (this.planned.get(name) as PlannedElement).element).some((d) =>
        failed.includes(d),
      );
    while ((pending.size > 0 || running.size > 0) && !(stop && running.size === 0)) {
      if (!stop) {
        for (const [name, p] of pending) {
          if (running.size >= jobs) break;
          if (isBroken(name)) {
            pending.delete(name);
            emit({ element: name, state: 'skipped', detail: 'a dependency failed' });
            continue;
          }
          if (!sandboxElements(this.options.project, p.element).every(isDone)) continue;
          pending.delete(name);
          emit({ element: name, state: 'running', step: 'sources' });
          const fail = (error: unknown) => {
            failed.push(name);
            emit({ element: name, state: 'failed', detail: error instanceof Error ? error.message : String(error) });
            if (!this.options.keepGoing) stop = true;
          };
          const job = this.buildOne(p)
            .then((artifact) => {
              // Dependants may start now; the record follows beside them.
              p.artifact = artifact;
              emit({ element: name, state: 'running', step: 'recording' });
              const record = this.artifacts
                .record(p.element.project.name, name, p.key, artifact)
                .then(() => {
                  built.push(name);
                  emit({ element: name, state: 'built' });
                }, fail)
                .finally(() => {
                  recording.delete(record);
                  wake();
                });
              recording.add(record);
            }, fail)
            .finally(() => running.delete(name));
          running.set(name, job);
        }
      }
      if (running.size === 0) {
        // Nothing can start: whatever is left waits on failed elements.
        for (const name of pending.keys()) emit({ element: name, state: 'skipped', detail: 'a dependency failed' });
        pending.clear();
        break;
      }
      await Promise.race([
        new Promise<void>((resolve) => {
          wake = resolve;
        }),
        ...running.values(),
      ]);
    }
    while (recording.size > 0) await Promise.all([...recording]);
    // Stopped after a failure (no --keep-going): what never started is skipped, not left waiting.
    for (const name of pending.keys()) {
      emit({
        element: name,
        state: 'skipped',
        detail: isBroken(name) ? 'a dependency failed' : 'the build stopped after a failure',
      });
    }
    return { failed, built };
  }

  private async buildOne(planned: PlannedElement): Promise<Artifact> {
    const { element } = planned;
    // BuildStream 1 makes absolute symlinks relative wherever it links files; BuildStream 2 keeps them.
    const relativize = (root: Digest) => (element.format === 1 ? relativizeSymlinks(cas, root) : Promise.resolve(root));
    const emit = (step: string) => this.options.onEvent?.({ element: element.name, state: 'running', step });
    const cas = this.options.cas;
    const sources = await stageSources(this.declarations(element), this.sourceContext(element), registryOf(element));
    if (element.format === 2) {
      emit('staging');
      return assemble2(this.assemblyContext(), element, sources).catch((error: unknown) => {
        throw error instanceof Assembly2Error ? new BuildFailure(error.message) : error;
      });
    }
    const dependencyRoots = sandboxElements(this.options.project, element).map(
      (name) => this.planned.get(name)!.artifact!.root,
    );
    let artifact: Artifact;
    switch (element.config.type) {
      case 'import': {
        const picked = element.config.source.replace(/^\/+/, '');
        const subtree = picked ? await subtreeAt(backgroundContext(), cas, sources, picked) : sources;
        if (!subtree)
          throw new BuildFailure(
            `${element.file}: import source directory '${element.config.source}' not found in the sources`,
          );
        artifact = {
          root: await graftAt(
            backgroundContext(),
            cas,
            EMPTY_DIRECTORY_DIGEST,
            element.config.target.replace(/^\/+/, ''),
            subtree,
          ),
        };
        break;
      }
      case 'stack':
        artifact = { root: EMPTY_DIRECTORY_DIGEST };
        break;
      case 'compose': {
        const deps = sandboxElements(this.options.project, element).map(
          (name) => this.planned.get(name) as PlannedElement,
        );
        // BuildStream links the composed files into place, which makes absolute symlinks relative.
        artifact = { root: await relativize(await composeArtifact(cas, element.config, deps)) };
        break;
      }
      case 'build': {
        emit('staging');
        // As BuildStream stages dependencies: absolute symlinks become relative.
        const base = await relativize(await mergeTrees(backgroundContext(), cas, dependencyRoots));
        const buildRoot = (element.variables['build-root'] ?? '').replace(/^\/+/, '');
        const inputRoot = await graftAt(backgroundContext(), cas, base, buildRoot, sources);
        const prepared = prepareBuildAction(element, inputRoot, this.options.platform);
        artifact = await this.runAction(element, prepared);
        // BuildStream collects the install root by linking its files, which makes absolute symlinks relative.
        artifact = { ...artifact, root: await relativize(artifact.root) };
        break;
      }
      default:
        throw new BuildFailure(`${element.file}: building '${element.kind}' elements is not supported yet`);
    }
    return artifact;
  }

  /** Uploads and runs a prepared Action; its output directory is the artifact. */
  private async runAction(element: Element, prepared: PreparedAction): Promise<Artifact> {
    const cas = this.options.cas;
    const emit = (step: string) => this.options.onEvent?.({ element: element.name, state: 'running', step });
    emit('uploading');
    for (const blob of prepared.blobs) await putBuffer(backgroundContext(), cas, blob.digest, blob.data);
    const response = await executeRemotely(this.options.connection, prepared.actionDigest, {
      skipCacheLookup: this.options.rebuild?.includes(element.name) ?? false,
      onStage: (stage) =>
        emit(stage === 'QUEUED' ? 'queued on the farm' : stage === 'EXECUTING' ? 'building' : 'collecting'),
    });
    const result = response.result;
    if ((response.status?.code ?? 0) !== 0 || !result || result.exitCode !== 0) {
      throw new BuildFailure(await this.describeFailure(element, response.status?.message, result));
    }
    const output = result.outputDirectories.find((d) => d.path === prepared.installOutput);
    return {
      root: output?.rootDirectoryDigest ?? EMPTY_DIRECTORY_DIGEST,
      ...(output?.rootDirectoryDigest && output.treeDigest
        ? { outputTree: { rootDigest: output.rootDirectoryDigest, treeDigest: output.treeDigest } }
        : {}),
      stdout: result.stdoutDigest,
      stderr: result.stderrDigest,
      actionDigest: prepared.actionDigest,
    };
  }

  private assemblyContext(): Assembly2Context {
    return {
      cas: this.options.cas,
      project: this.options.project,
      platform: this.options.platform,
      artifactOf: (name) => {
        const artifact = this.planned.get(name)?.artifact;
        if (!artifact) throw new Error(`${name} has no artifact yet`);
        return artifact;
      },
      run: (element, prepared) => this.runAction(element, prepared),
    };
  }

  private async describeFailure(
    element: Element,
    statusMessage: string | undefined,
    result: { exitCode: number; stdoutDigest?: Digest; stderrDigest?: Digest } | undefined,
  ): Promise<string> {
    const log = await this.readLog(result?.stdoutDigest, result?.stderrDigest);
    const step = lastStep(log);
    const tail = log
      .split('\n')
      .filter((l) => !isMarkerLine(l))
      .slice(-20)
      .join('\n');
    // The summary names the command by its first line; `granary log` shows it whole.
    const what = step
      ? `command failed: ${step.label}: ${step.command.split('\n')[0]}`
      : (statusMessage ?? 'build failed');
    const exit = result ? ` (exit code ${result.exitCode})` : '';
    return `${element.file}: ${what}${exit}${statusMessage && step ? `\n${statusMessage}` : ''}\n--- last lines of the log ---\n${tail}`;
  }

  /** The build log of an artifact or result: stdout then stderr. */
  async readLog(stdout?: Digest, stderr?: Digest): Promise<string> {
    const parts: string[] = [];
    for (const digest of [stdout, stderr]) {
      if (!digest || digest.sizeBytes === 0) continue;
      const data = await getBuffer(backgroundContext(), this.options.cas, digest);
      if (data) parts.push(data.toString('utf8'));
    }
    return parts.join('');
  }

  private declarations(element: Element): SourceDeclaration[] {
    return element.sources.map((s) => {
      const config: Record<string, unknown> = { ...s.config };
      // BuildStream 2's `provenance` describes where a source comes from; it does not change what is staged.
      if (element.format === 2) delete config.provenance;
      return {
        config: { kind: s.kind, ...(s.directory !== undefined ? { directory: s.directory } : {}), ...config },
        location: `${s.file} line ${s.line}`,
      };
    });
  }

  /** Where an element's sources are resolved: its own project's directory and aliases. */
  private sourceContext(element: Element) {
    return {
      projectDir: element.project.directory,
      aliases: element.project.aliases,
      mirrors: element.project.format2?.mirrors,
      format2: element.format === 2,
      cas: this.options.cas,
      cacheDir: this.options.cacheDirectory,
      asset: this.options.asset,
    };
  }
}

/** The source kinds an element's project format has. */
function registryOf(element: Element): SourceKindRegistry {
  return element.format === 2 ? format2SourceKinds : defaultSourceKinds;
}

export { buildDependencyNames };
