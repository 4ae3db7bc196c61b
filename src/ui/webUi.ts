/**
 * The web UI of `granary serve` as one piece: the invocation store the Build
 * Event Service fills, the usage history its charts read, and the routes (pages
 * and /api) to add to the HTTP port. The server creates it before the farm (the
 * farm reports cache lookups and build events into it) and gives it the running
 * farm once there is one.
 */
import type { HttpRoute } from '../http/httpServer.js';
import { InvocationStore } from '../invocations/invocationStore.js';
import type { RunningFarm } from '../server/farm.js';
import { apiRoutes, type UiSources } from './apiRoutes.js';
import { type PageRouteOptions, pageRoutes } from './pageRoutes.js';
import { UsageHistory } from './usageHistory.js';

export interface WebUiOptions {
  /** How often storage use and cache lookups are sampled for the charts. */
  readonly sampleIntervalMs?: number;
}

export class WebUi {
  readonly invocations = new InvocationStore();
  readonly history: UsageHistory;
  private farm: RunningFarm | undefined;

  constructor(options: WebUiOptions = {}) {
    this.history = new UsageHistory({ stores: () => this.farm?.stores ?? [], intervalMs: options.sampleIntervalMs });
  }

  /** Starts sampling the running farm. */
  attach(farm: RunningFarm): void {
    this.farm = farm;
    this.history.start();
  }

  /** The pages and the /api endpoints, reading the attached farm. */
  routes(pages: PageRouteOptions, access: Pick<UiSources, 'mayView'> = {}): HttpRoute[] {
    const farm = this.farm;
    if (!farm) throw new Error('the web UI needs the running farm first');
    return [
      ...pageRoutes(pages),
      ...apiRoutes({
        admin: farm.admin,
        cas: farm.cas,
        history: this.history,
        invocations: this.invocations,
        mayView: access.mayView,
      }),
    ];
  }

  close(): void {
    this.history.stop();
  }
}
