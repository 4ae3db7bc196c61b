/**
 * The JSON endpoints under /api/ that the web UI's pages read (and scripts may
 * too): operations filtered by status, invocation, tool and worker; an action by
 * digest; workers with their leases; queues; storage use and cache hits over
 * time; directories, trees and blobs by digest; Bazel invocations. Lists of what
 * every client ran need the `admin` scope (as ListOperations does over gRPC);
 * content by digest and storage figures need `read`. Raw blobs are served as
 * downloads that a browser never renders.
 */

import type { RequestContext } from '../context/requestContext.js';
import type { SchedulerAdmin } from '../execution/scheduler.js';
import type { OperationRecord } from '../execution/types.js';
import { HttpError, type HttpExchange, type HttpRoute, sendJson } from '../http/httpServer.js';
import type { Invocation, InvocationStore } from '../invocations/invocationStore.js';
import type { BlobStore } from '../storage/blobStore.js';
import { Code, StatusError } from '../util/status.js';
import {
  actionView,
  blobText,
  directoryListing,
  listOperations,
  listWorkers,
  OPERATION_STATUSES,
  type OperationStatus,
  parseDigestPath,
  treeListing,
} from './farmView.js';
import type { UsageHistory } from './usageHistory.js';

/** What the UI reads. */
export interface UiSources {
  readonly admin: SchedulerAdmin;
  readonly cas: BlobStore;
  readonly history: UsageHistory;
  readonly invocations: InvocationStore;
  /**
   * Whether the caller of a request may see an operation of this instance
   * (its principal's instance patterns); everything when absent.
   */
  readonly mayView?: (exchange: HttpExchange, instanceName: string) => boolean;
}

/** Default and largest page of the operation list. */
const DEFAULT_LIMIT = 200;
const MAXIMUM_LIMIT = 5000;

/** The request's context: the caller, aborted when the browser goes away. */
function contextOf(exchange: HttpExchange): RequestContext {
  const controller = new AbortController();
  exchange.response.once('close', () => controller.abort());
  return {
    signal: controller.signal,
    deadlineMs: undefined,
    instanceName: '',
    principal: exchange.principal,
    metadata: {},
  };
}

function visibility(sources: UiSources, exchange: HttpExchange): (operation: OperationRecord) => boolean {
  const mayView = sources.mayView;
  return mayView ? (operation) => mayView(exchange, operation.request.instanceName) : () => true;
}

/** Runs a handler, answering a StatusError with its HTTP equivalent. */
function json(
  path: string,
  scope: 'read' | 'admin',
  description: string,
  produce: (exchange: HttpExchange) => Promise<unknown>,
): HttpRoute {
  return {
    method: 'GET',
    path,
    scope,
    description,
    handle: async (exchange) => {
      try {
        sendJson(exchange.response, 200, await produce(exchange));
      } catch (error) {
        if (error instanceof StatusError) throw new HttpError(httpStatusOf(error.code), error.message);
        throw error;
      }
    },
  };
}

function httpStatusOf(code: Code): number {
  switch (code) {
    case Code.INVALID_ARGUMENT:
    case Code.FAILED_PRECONDITION:
      return 400;
    case Code.NOT_FOUND:
      return 404;
    case Code.UNAUTHENTICATED:
      return 401;
    case Code.PERMISSION_DENIED:
      return 403;
    default:
      return 500;
  }
}

function notFound(what: string): never {
  throw new HttpError(404, `${what} is not in the CAS`);
}

function limitOf(url: URL): number {
  const text = url.searchParams.get('limit');
  if (text === null || text === '') return DEFAULT_LIMIT;
  const limit = Number(text);
  if (!Number.isSafeInteger(limit) || limit < 1) throw new HttpError(400, `limit must be a positive integer`);
  return Math.min(limit, MAXIMUM_LIMIT);
}

function statusOf(url: URL): OperationStatus | undefined {
  const status = url.searchParams.get('status') ?? '';
  if (status === '') return undefined;
  if (!(OPERATION_STATUSES as readonly string[]).includes(status)) {
    throw new HttpError(400, `status must be one of ${OPERATION_STATUSES.join(', ')}`);
  }
  return status as OperationStatus;
}

function invocationSummary(invocation: Invocation) {
  const tests = [...invocation.tests.values()];
  return {
    id: invocation.id,
    command: invocation.command,
    patterns: invocation.patterns,
    startedAtMs: invocation.startedAtMs,
    finishedAtMs: invocation.finishedAtMs,
    exitCode: invocation.exitCode,
    lastEventAtMs: invocation.lastEventAtMs,
    targets: invocation.targets.size,
    tests: tests.length,
    testsPassed: tests.filter((t) => t.status === 'PASSED' || t.status === 'FLAKY').length,
  };
}

export function apiRoutes(sources: UiSources): HttpRoute[] {
  return [
    json('/api/operations', 'admin', 'operations, newest first (?status, invocation, tool, worker, limit)', (e) =>
      listOperations(
        contextOf(e),
        sources.admin,
        {
          status: statusOf(e.url),
          invocationId: e.url.searchParams.get('invocation') ?? undefined,
          toolName: e.url.searchParams.get('tool') ?? undefined,
          workerId: e.url.searchParams.get('worker') ?? undefined,
          limit: limitOf(e.url),
        },
        visibility(sources, e),
      ),
    ),
    json('/api/actions/*', 'admin', 'an action by HASH/SIZE: command, inputs, operations, result', (e) =>
      actionView(contextOf(e), sources.admin, sources.cas, parseDigestPath(e.rest), visibility(sources, e)),
    ),
    json('/api/workers', 'admin', 'workers and their leases', async (e) => ({
      workers: await listWorkers(sources.admin, contextOf(e)),
    })),
    json('/api/queues', 'admin', 'queued and executing actions per platform', async (e) => ({
      queues: await sources.admin.queues(contextOf(e)),
    })),
    json('/api/storage', 'read', 'storage use and action-cache lookups over time', async () => ({
      samples: sources.history.history(),
    })),
    json('/api/cas/directory/*', 'read', 'a Directory by HASH/SIZE', async (e) => {
      const entries = await directoryListing(contextOf(e), sources.cas, parseDigestPath(e.rest));
      return entries ? { entries } : notFound('that directory');
    }),
    json('/api/cas/tree/*', 'read', 'an output directory (Tree) by HASH/SIZE, flattened', async (e) => {
      const entries = await treeListing(contextOf(e), sources.cas, parseDigestPath(e.rest));
      return entries ? { entries } : notFound('that tree');
    }),
    json('/api/cas/text/*', 'read', 'the start of a blob by HASH/SIZE, as text', async (e) => {
      return (await blobText(contextOf(e), sources.cas, parseDigestPath(e.rest))) ?? notFound('that blob');
    }),
    json('/api/invocations', 'admin', 'Bazel invocations heard of through the Build Event Service', async () => ({
      invocations: sources.invocations.list().map(invocationSummary),
    })),
    json('/api/invocation/*', 'admin', 'one invocation: command, targets, tests, actions', async (e) => {
      const invocation = sources.invocations.get(decodeURIComponent(e.rest));
      if (!invocation) throw new HttpError(404, 'no such invocation (the farm keeps the recent ones in memory)');
      const actions = await listOperations(
        contextOf(e),
        sources.admin,
        { invocationId: invocation.id, limit: MAXIMUM_LIMIT },
        visibility(sources, e),
      );
      return {
        ...invocationSummary(invocation),
        buildId: invocation.buildId,
        toolVersion: invocation.toolVersion,
        workspaceDirectory: invocation.workspaceDirectory,
        commandLine: invocation.commandLine,
        aborted: invocation.aborted,
        truncated: invocation.truncated,
        targetList: [...invocation.targets.values()],
        testList: [...invocation.tests.values()],
        actions: actions.operations,
      };
    }),
    blobDownloadRoute(sources.cas),
  ];
}

/** `/cas/blob/HASH/SIZE?name=FILE`: the blob as a download, never rendered by the browser. */
function blobDownloadRoute(cas: BlobStore): HttpRoute {
  return {
    method: 'GET',
    path: '/cas/blob/*',
    scope: 'read',
    description: 'a blob by HASH/SIZE, as a download (?name=FILE)',
    handle: async (exchange) => {
      const { response, url, rest } = exchange;
      let digest: ReturnType<typeof parseDigestPath>;
      try {
        digest = parseDigestPath(rest);
      } catch (error) {
        throw new HttpError(400, (error as Error).message);
      }
      const blob = digest.sizeBytes === 0 ? undefined : await cas.get(contextOf(exchange), digest);
      if (!blob && digest.sizeBytes !== 0) notFound('that blob');
      const name = safeFileName(url.searchParams.get('name') ?? digest.hash);
      response.writeHead(200, {
        'Content-Type': 'application/octet-stream',
        'Content-Length': digest.sizeBytes,
        'Content-Disposition': `attachment; filename="${name}"`,
        'X-Content-Type-Options': 'nosniff',
        'Content-Security-Policy': "sandbox; default-src 'none'",
        'Cache-Control': 'private, max-age=31536000, immutable',
      });
      if (!blob || response.req.method === 'HEAD') {
        response.end();
        return;
      }
      for await (const chunk of blob.read()) {
        if (!response.write(chunk)) await new Promise((resolve) => response.once('drain', resolve));
        if (response.destroyed) return;
      }
      response.end();
    },
  };
}

/** A file name safe inside a quoted Content-Disposition parameter. */
export function safeFileName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._+-]/g, '_').slice(0, 200);
  return cleaned === '' || /^\.+$/.test(cleaned) ? 'blob' : cleaned;
}
