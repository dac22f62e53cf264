/**
 * The JSON API the dashboard calls, on the bridge's HTTP port (besides POST /api/token and /api/recordings, which
 * live with what they serve): the fleet view (./cameras.ts) and the admin pages (./identities.ts). Every route goes
 * through ApiCallers (./callers.ts): CSRF check, Bearer or Basic login, role; never `WWW-Authenticate: Basic`.
 */
import type { Logger } from 'pino';
import type { Fleet } from '../../fleet/fleet.ts';
import type { PresenceBook } from '../../fleet/presence.ts';
import type { HttpServer } from '../../http/server.ts';
import type { CredentialStore } from '../../security/credentials.ts';
import type { TokenSigner } from '../../security/tokens.ts';
import { ApiCallers } from './callers.ts';
import { routeCameras } from './cameras.ts';
import { routeIdentities } from './identities.ts';

export interface DashboardApiOptions {
  store: CredentialStore;
  tokens: () => Promise<TokenSigner>;
  tokenMaxTtlS: number;
  fleet: Fleet;
  presence: PresenceBook | undefined;
  logger: Logger;
}

export function routeDashboardApi(http: HttpServer, options: DashboardApiOptions): ApiCallers {
  const { store, tokens, fleet, presence, logger } = options;
  const callers = new ApiCallers({ store, tokens, logger });
  routeCameras(http, callers, fleet, store, logger);
  routeIdentities(http, { callers, store, tokens, tokenMaxTtlS: options.tokenMaxTtlS, presence, forgotten: (id) => fleet.forget(id), logger });
  return callers;
}
