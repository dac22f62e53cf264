/**
 * The JSON API the dashboard calls, on the bridge's HTTP port (besides POST /api/token and /api/recordings, which
 * live with what they serve): GET /api/me (who the caller is: {id, role, devices, via}), the fleet view (./cameras.ts)
 * and the admin pages (./identities.ts). Every route goes
 * through ApiCallers (./callers.ts): CSRF check, Bearer or Basic login, role; never `WWW-Authenticate: Basic`.
 */
import type { Logger } from 'pino';
import type { Fleet } from '../../fleet/fleet.ts';
import type { PresenceBook } from '../../fleet/presence.ts';
import { sendError, sendJson } from '../../http/api-request.ts';
import type { HttpServer } from '../../http/server.ts';
import type { CredentialStore } from '../../security/credentials.ts';
import type { TokenSigner } from '../../security/tokens.ts';
import type { ApiCallers } from './callers.ts';
import { routeCameras } from './cameras.ts';
import { routeIdentities } from './identities.ts';

export interface DashboardApiOptions {
  callers: ApiCallers;
  store: CredentialStore;
  tokens: () => Promise<TokenSigner>;
  tokenMaxTtlS: number;
  fleet: Fleet;
  presence: PresenceBook | undefined;
  logger: Logger;
}

export function routeDashboardApi(http: HttpServer, options: DashboardApiOptions): void {
  const { callers, store, tokens, fleet, presence, logger } = options;
  // Who the caller is, as this API sees it (the dashboard shows the admin pages when role is admin).
  http.route('/api/me', callers.route('viewer', (req, res, caller) => (req.method === 'GET' ? sendJson(res, 200, caller) : sendError(res, 405, 'TALI_ERR_METHOD', 'use GET', { allow: 'GET' }))));
  routeCameras(http, callers, fleet, store, logger);
  routeIdentities(http, { callers, store, tokens, tokenMaxTtlS: options.tokenMaxTtlS, presence, forgotten: (id) => fleet.forget(id), logger });
}
