/**
 * The routes every Granary process serves on its HTTP port: `/metrics` for
 * Prometheus, `/healthz` (the process is alive and its event loop turns) and
 * `/readyz` (it can take work now: 200, or 503 with the reason), and an index at
 * `/` listing whatever routes the process has, so an operator who finds the
 * port finds everything else.
 */
import type { Registry } from 'prom-client';
import { type HttpRoute, type RunningHttpServer, sendJson, sendText } from './httpServer.js';

/** What a process says about its readiness; `ready: false` comes with the reason. */
export interface Readiness {
  readonly ready: boolean;
  readonly reason?: string;
  /** Extra facts for people (workers connected, storage used); shown in the body. */
  readonly details?: Readonly<Record<string, unknown>>;
}

export function metricsRoute(registry: Registry): HttpRoute {
  return {
    method: 'GET',
    path: '/metrics',
    scope: 'read',
    description: 'Prometheus metrics (text format)',
    handle: async ({ response }) => {
      const body = await registry.metrics();
      sendText(response, 200, body, registry.contentType.split(';')[0] as string);
    },
  };
}

/** The paths load balancers and orchestrators probe, which answer every caller. */
export const PROBE_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

export function healthRoutes(readiness: () => Readiness | Promise<Readiness>): HttpRoute[] {
  return [
    {
      method: 'GET',
      path: '/healthz',
      description: 'alive: 200 while the process runs',
      handle: ({ response }) => sendText(response, 200, 'ok\n'),
    },
    {
      method: 'GET',
      path: '/readyz',
      description: 'ready to take work: 200, or 503 with the reason',
      handle: async ({ response }) => {
        const state = await readiness();
        sendJson(response, state.ready ? 200 : 503, {
          ready: state.ready,
          ...(state.reason ? { reason: state.reason } : {}),
          ...state.details,
        });
      },
    },
  ];
}

/** `/`: the routes of this server, one line each (the web UI replaces it with its own page). */
export function indexRoute(server: Pick<RunningHttpServer, 'routes'>, title: string): HttpRoute {
  return {
    method: 'GET',
    path: '/',
    description: 'this list',
    handle: ({ response }) => {
      const lines = [title, ''];
      for (const route of server.routes()) {
        if (route.path === '/') continue;
        lines.push(`${route.method.padEnd(5)}${route.path.padEnd(24)}${route.description ?? ''}`);
      }
      sendText(response, 200, `${lines.join('\n')}\n`);
    },
  };
}
