/** gRPC adapter for the Remote Workers API Bots service. */
import type { BotSessions } from '../execution/botSessions.js';
import type {
  BotsServer,
  CreateBotSessionRequest,
  UpdateBotSessionRequest,
} from '../gen/google/devtools/remoteworkers/v1test2/bots.js';
import { unary } from './handlers.js';
import { botParentInstance, botSessionInstance } from './instanceNames.js';

/** How long an UpdateBotSession without a deadline may wait for work. */
const DEFAULT_UPDATE_WAIT_MS = 60_000;

export function botsServer(sessions: BotSessions): BotsServer {
  return {
    createBotSession: unary(
      async (request: CreateBotSessionRequest, context) => sessions.create(context, request.parent, request.botSession),
      { instanceName: botParentInstance },
    ),
    updateBotSession: unary(
      async (request: UpdateBotSessionRequest, context) =>
        sessions.update(
          context,
          request.name,
          request.botSession,
          context.deadlineMs ?? Date.now() + DEFAULT_UPDATE_WAIT_MS,
        ),
      { instanceName: botSessionInstance },
    ),
  };
}
