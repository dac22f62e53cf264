/**
 * The admin pages' routes: devices and users in the credential store, and shareable viewer links. Admins only.
 * A new or re-keyed secret is in the answer once and nowhere else (the store keeps a hash); the running bridge closes
 * the connections of what was removed or re-keyed (../../security/revocation.ts), as for `tali device remove`.
 *
 *   GET    /api/devices                 {"devices":[{id, created, online, lastSeen}]}   online/lastSeen: this node
 *   POST   /api/devices        {"id"}   201 {"id","secret","created"}
 *   DELETE /api/devices/{id}            200 {"id","removed":true}
 *   POST   /api/devices/{id}/secret     200 {"id","secret","created"}      re-key
 *   GET    /api/users                   {"users":[{id, role, created}]}
 *   POST   /api/users  {"id","role"}    201 {"id","role","secret","created"}
 *   DELETE /api/users/{id}              200 (not your own login: an admin cannot lock itself out)
 *   POST   /api/users/{id}/secret       200 re-key
 *   POST   /api/links  {"deviceId","ttlS","user"?}   201 {"url","token","expiresAt"}: a viewer token for one camera
 *          that cannot be refreshed past its expiry, in a dashboard URL (in the #fragment: never sent to a server)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ownOrigin, pathAfter, readJsonBody, sendError, sendJson } from '../../http/api-request.ts';
import type { HttpServer } from '../../http/server.ts';
import { isValidId } from '../../protocol/topics.ts';
import type { CredentialStore, StoredIdentity } from '../../security/credentials.ts';
import type { TokenSigner } from '../../security/tokens.ts';
import type { PresenceBook } from '../../fleet/presence.ts';
import type { ApiCaller, ApiCallers } from './callers.ts';

export interface IdentityRoutesOptions {
  callers: ApiCallers;
  store: CredentialStore;
  tokens: () => Promise<TokenSigner>;
  tokenMaxTtlS: number;
  /** Embedded broker only: who is connected here. */
  presence: PresenceBook | undefined;
  /** A device was removed: drop what is kept of it (its still). */
  forgotten: (deviceId: string) => void;
  logger: Logger;
}

type Kind = 'device' | 'user';
const PATHS: Record<Kind, string> = { device: '/api/devices', user: '/api/users' };

export function routeIdentities(http: HttpServer, options: IdentityRoutesOptions): void {
  const { callers } = options;
  for (const kind of ['device', 'user'] as const) {
    http.route(PATHS[kind], callers.route('admin', (req, res, caller) => collection(kind, req, res, caller, options)));
    http.routePrefix(`${PATHS[kind]}/`, callers.route('admin', (req, res, caller) => member(kind, req, res, caller, options)));
  }
  http.route('/api/links', callers.route('admin', (req, res, caller) => link(req, res, caller, options)));
}

async function collection(kind: Kind, req: IncomingMessage, res: ServerResponse, caller: ApiCaller, o: IdentityRoutesOptions): Promise<void> {
  if (req.method === 'GET') {
    const all = (await o.store.list()).filter((i) => (i.role === 'device') === (kind === 'device'));
    if (kind === 'user') return sendJson(res, 200, { users: all.map(({ id, role, created }) => ({ id, role, created })) });
    const devices = all.map(({ id, created }) => {
      const p = o.presence?.get(id);
      return { id, created, online: p?.online ?? false, lastSeen: p ? new Date(p.lastSeen).toISOString() : null };
    });
    return sendJson(res, 200, { devices, presence: o.presence !== undefined });
  }
  if (req.method !== 'POST') return sendError(res, 405, 'TALI_ERR_METHOD', 'use GET or POST', { allow: 'GET, POST' });
  const body = await body_(req, res);
  if (body === undefined) return;
  const id = body.id;
  const role = kind === 'device' ? 'device' : body.role;
  if (!isValidId(id)) return sendError(res, 400, 'TALI_ERR_BAD_REQUEST', '"id": 1–64 of A–Z a–z 0–9 . _ - starting with a letter or digit');
  if (role !== 'device' && role !== 'viewer' && role !== 'admin') return sendError(res, 400, 'TALI_ERR_BAD_REQUEST', '"role" must be "viewer" or "admin"');
  if ((role === 'device') !== (kind === 'device')) return sendError(res, 400, 'TALI_ERR_BAD_REQUEST', 'devices are added at /api/devices');
  const existing = await o.store.get(id);
  if (existing) return sendError(res, 409, 'TALI_ERR_CONFLICT', `${id} exists already (a ${existing.role}): remove it or re-key it`);
  const secret = await o.store.add(id, role);
  o.logger.info({ event: 'identity_added', id, role, by: caller.id }, `${role} added`);
  sendJson(res, 201, { id, role, secret, created: (await o.store.get(id))?.created });
}

async function member(kind: Kind, req: IncomingMessage, res: ServerResponse, caller: ApiCaller, o: IdentityRoutesOptions): Promise<void> {
  const rest = pathAfter(req, `${PATHS[kind]}/`) ?? '';
  const [id, sub, ...more] = rest.split('/');
  const rekey = sub === 'secret' && more.length === 0;
  if (!isValidId(id) || (sub !== undefined && !rekey)) return sendError(res, 404, 'TALI_ERR_NOT_FOUND', `use ${PATHS[kind]}/{id} or ${PATHS[kind]}/{id}/secret`);
  const existing = await o.store.get(id);
  if (existing === undefined || (existing.role === 'device') !== (kind === 'device')) return sendError(res, 404, 'TALI_ERR_NOT_FOUND', `no ${kind} named ${id}`);
  if (rekey) {
    if (req.method !== 'POST') return sendError(res, 405, 'TALI_ERR_METHOD', 'use POST', { allow: 'POST' });
    if (kind === 'user' && id === caller.id) return sendError(res, 403, 'TALI_ERR_FORBIDDEN', 're-keying your own login would sign you out: use the CLI');
    const secret = await o.store.add(id, existing.role, { replace: true });
    o.logger.info({ event: 'identity_rekeyed', id, role: existing.role, by: caller.id }, `${existing.role} re-keyed`);
    return sendJson(res, 200, { id, role: existing.role, secret, created: (await o.store.get(id))?.created });
  }
  if (req.method === 'GET') return sendJson(res, 200, summary(existing));
  if (req.method !== 'DELETE') return sendError(res, 405, 'TALI_ERR_METHOD', 'use GET or DELETE', { allow: 'GET, DELETE' });
  if (kind === 'user' && id === caller.id) return sendError(res, 403, 'TALI_ERR_FORBIDDEN', 'you cannot remove your own login');
  await o.store.remove(id);
  if (kind === 'device') {
    o.presence?.forget(id);
    o.forgotten(id);
  }
  o.logger.info({ event: 'identity_removed', id, role: existing.role, by: caller.id }, `${existing.role} removed`);
  sendJson(res, 200, { id, removed: true });
}

async function link(req: IncomingMessage, res: ServerResponse, caller: ApiCaller, o: IdentityRoutesOptions): Promise<void> {
  if (req.method !== 'POST') return sendError(res, 405, 'TALI_ERR_METHOD', 'use POST', { allow: 'POST' });
  const body = await body_(req, res);
  if (body === undefined) return;
  const { deviceId, ttlS } = body;
  const user = body.user ?? caller.id;
  if (!isValidId(deviceId) || (await o.store.get(deviceId))?.role !== 'device') return sendError(res, 404, 'TALI_ERR_NOT_FOUND', `no device named ${String(deviceId)}`);
  if (typeof ttlS !== 'number' || !Number.isInteger(ttlS) || ttlS < 60 || ttlS > o.tokenMaxTtlS) {
    return sendError(res, 400, 'TALI_ERR_BAD_REQUEST', `"ttlS": whole seconds from 60 to ${o.tokenMaxTtlS} (tokenMaxTtlS)`);
  }
  const subject = isValidId(user) ? await o.store.get(user) : undefined;
  if (subject === undefined || subject.role === 'device') return sendError(res, 404, 'TALI_ERR_NOT_FOUND', `no viewer or admin named ${String(user)}`);
  const now = Math.floor(Date.now() / 1000);
  const exp = now + ttlS;
  // `auth` is when the chain of refreshes began; set so that the chain ends at exp (auth + tokenMaxTtlS = exp): the
  // link works until it expires, and no refresh can stretch it.
  const token = (await o.tokens()).sign({ sub: subject.id, devices: [deviceId], iat: now, exp, auth: exp - o.tokenMaxTtlS, cred: subject.created });
  const url = `${ownOrigin(req)}/#/camera/${encodeURIComponent(deviceId)}?token=${token}`;
  o.logger.info({ event: 'token_issued', sub: subject.id, by: caller.id, devices: [deviceId], exp, link: true }, 'viewer link issued');
  sendJson(res, 201, { url, token, user: subject.id, deviceId, expiresAt: new Date(exp * 1000).toISOString() });
}

function summary(i: StoredIdentity) {
  return { id: i.id, role: i.role, created: i.created };
}

async function body_(req: IncomingMessage, res: ServerResponse): Promise<Record<string, unknown> | undefined> {
  try {
    return await readJsonBody(req);
  } catch (err) {
    sendError(res, 400, 'TALI_ERR_BAD_REQUEST', (err as Error).message);
    return undefined;
  }
}
