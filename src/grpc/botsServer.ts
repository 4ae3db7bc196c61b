/** gRPC adapter for the Remote Workers API Bots service. */
import type { ServerUnaryCall } from '@grpc/grpc-js';
import type { BotSessions } from '../execution/botSessions.js';
import type {
  BotsServer,
  CreateBotSessionRequest,
  UpdateBotSessionRequest,
} from '../gen/google/devtools/remoteworkers/v1test2/bots.js';
import { unary } from './handlers.js';

export function botsServer(sessions: BotSessions): BotsServer {
  return {
    createBotSession: unary(async (request: CreateBotSessionRequest) =>
      sessions.create(request.parent, request.botSession),
    ),
    updateBotSession: unary(
      async (request: UpdateBotSessionRequest, call: ServerUnaryCall<UpdateBotSessionRequest, unknown>) => {
        const deadline = call.getDeadline();
        const deadlineMs =
          deadline instanceof Date
            ? deadline.getTime()
            : Number.isFinite(deadline)
              ? Number(deadline)
              : Date.now() + 60_000;
        const abort = new AbortController();
        call.on('cancelled', () => abort.abort());
        return sessions.update(request.name, request.botSession, deadlineMs, abort.signal);
      },
    ),
  };
}
