/**
 * WHEP playback over HTTP (draft-ietf-wish-whep-03): any standard player (a page with RTCPeerConnection and fetch,
 * GStreamer's whepsrc, OBS, MediaMTX or go2rtc players) watches a camera through the relay.
 *
 *   POST   /whep/{deviceId}        application/sdp offer → 201, the answer (every candidate inside), Location, ETag
 *   PATCH  /whep/{deviceId}/{id}   application/trickle-ice-sdpfrag with If-Match: ETag → 204 (trickle, §4.4.2);
 *                                  an ICE restart (If-Match: *, new ufrag) → 422: not supported
 *   DELETE /whep/{deviceId}/{id}   → 200, the session ends
 *   OPTIONS /whep/{deviceId}        (CORS preflight, §4.3) → 200 with Accept-Post
 *   OPTIONS /whep/{deviceId}/{id}   → 204 with Allow / Accept-Patch, whether the session lives or not: a browser
 *                                  preflights a player's cross-origin DELETE, and a session that ended meanwhile must
 *                                  still get its DELETE (→ 404), not a CORS failure
 *   HEAD and GET → 200, no content (§4.1, §4.2); on a session that is gone → 404
 *
 * Authentication (§4.8.1): `Authorization: Bearer <viewer token>`; the token must cover the device (403 otherwise)
 * and be valid (401, with `WWW-Authenticate: Bearer` as RFC 6750 §3 asks: it opens no browser dialog, unlike Basic).
 * PATCH and DELETE need a token of the same user. WHEP is cross-origin by design: CORS allows any origin, and the
 * dashboard's CSRF rule does not apply here, since a Bearer token is never sent by a browser on its own (no cookie,
 * no Basic cache), so another site's page can do nothing a player without the token could not.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { sendError } from '../../http/api-request.ts';
import type { Route } from '../../http/server.ts';
import { ProtocolError } from '../../protocol/errors.ts';
import type { IceServer } from '../../protocol/messages.ts';
import { isValidId } from '../../protocol/topics.ts';
import type { CredentialStore } from '../../security/credentials.ts';
import type { Identity } from '../../security/identity.ts';
import { mayWatch, type ApiCallers } from '../../web/api/callers.ts';
import { checkOffer, SdpError } from '../../webrtc/sdp.ts';
import { parseSdpFragment, SdpFragmentError } from './sdpfrag.ts';
import { WhepRefusal, type WhepSession, type WhepSessions } from './whep-sessions.ts';

export const WHEP_PATH = '/whep/';

export interface WhepRouteOptions {
  sessions: WhepSessions;
  callers: ApiCallers;
  store: CredentialStore;
  /** STUN/TURN servers for this user's player, as Link headers of the 201 (§4.7, RFC 9725 §4.6): its TURN credentials. */
  iceServers: (user: string) => readonly IceServer[];
  /** Whether the camera is connected, when this node can tell (a single node); offline cameras get 409 at once. */
  isOnline?: ((deviceId: string) => boolean) | undefined;
  /** Largest request body (an offer or a fragment). */
  maxBodyBytes: number;
  logger: Logger;
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'Location, ETag, Link, Accept-Post, Accept-Patch, Retry-After, WWW-Authenticate',
};
const PREFLIGHT = {
  'access-control-allow-methods': 'GET, HEAD, POST, PATCH, DELETE, OPTIONS',
  'access-control-allow-headers': 'Authorization, Content-Type, If-Match',
  'access-control-max-age': '86400',
};
/** What a session URL takes. */
const RESOURCE_METHODS = 'GET, HEAD, PATCH, DELETE, OPTIONS';
const RETRY_LATER_S = '5';

export function whepRoute(options: WhepRouteOptions): Route {
  return async (req, res) => {
    for (const [name, value] of Object.entries(CORS)) res.setHeader(name, value);
    const levels = (req.url ?? '').split('?')[0]!.slice(WHEP_PATH.length).split('/');
    const [deviceId, sessionId, extra] = levels;
    if (!isValidId(deviceId) || extra !== undefined || (sessionId !== undefined && !/^[A-Za-z0-9_-]{8,64}$/.test(sessionId))) {
      return sendError(res, 404, 'TALI_ERR_NOT_FOUND', 'a WHEP endpoint is /whep/{deviceId}');
    }
    const method = req.method ?? 'GET';
    if (sessionId === undefined) return endpoint(options, req, res, method, deviceId);
    // Answered without looking the session up: a preflight says what may be sent, not whether the session lives.
    if (method === 'OPTIONS') return void res.writeHead(204, { ...PREFLIGHT, allow: RESOURCE_METHODS, 'accept-patch': 'application/trickle-ice-sdpfrag' }).end();
    const session = options.sessions.get(sessionId);
    if (session === undefined || session.deviceId !== deviceId) return sendError(res, 404, 'TALI_ERR_NOT_FOUND', 'no such WHEP session (it ended, or never was)');
    return resource(options, req, res, method, session);
  };
}

async function endpoint(o: WhepRouteOptions, req: IncomingMessage, res: ServerResponse, method: string, deviceId: string): Promise<void> {
  if (method === 'OPTIONS') return void res.writeHead(200, { ...PREFLIGHT, 'accept-post': 'application/sdp', 'content-length': '0' }).end();
  // §4.2: a HEAD (or GET) says "this is a WHEP endpoint" without a body, whatever the device, so it tells nothing more.
  if (method === 'HEAD' || method === 'GET') return void res.writeHead(200, { 'content-type': 'application/sdp', 'content-length': '0' }).end();
  if (method !== 'POST') return sendError(res, 405, 'TALI_ERR_METHOD', 'POST an SDP offer', { allow: 'GET, HEAD, POST, OPTIONS' });
  const caller = await o.callers.bearer(req);
  if ('status' in caller) return refuseLogin(res, caller);
  if (!mayWatch(caller, deviceId)) return sendError(res, 403, 'TALI_ERR_FORBIDDEN', `this token does not cover ${deviceId}`);
  if (!isType(req, 'application/sdp')) return sendError(res, 415, 'TALI_ERR_MEDIA_TYPE', 'POST an offer as Content-Type: application/sdp');
  const offer = await body(req, o.maxBodyBytes);
  if (offer === undefined) return sendError(res, 413, 'TALI_ERR_BAD_REQUEST', `the offer is over ${o.maxBodyBytes} bytes`);
  try {
    checkOffer(offer);
  } catch (err) {
    if (err instanceof SdpError) return sendError(res, 400, 'TALI_ERR_INVALID_SDP', err.message);
    throw err;
  }
  await o.store.refresh();
  if (o.store.lookup(deviceId)?.role !== 'device') return sendError(res, 404, 'TALI_ERR_NOT_FOUND', `no camera ${deviceId}`);
  if (o.isOnline?.(deviceId) === false) return sendError(res, 409, 'TALI_ERR_NOT_STREAMING', `camera ${deviceId} is offline`, { 'retry-after': RETRY_LATER_S });
  const identity: Identity = { role: 'viewer', id: caller.id, source: 'token', credential: caller.credential, expiresAt: caller.expiresAt, ...(caller.devices && { devices: caller.devices }) };
  let created;
  try {
    created = await o.sessions.create(identity, deviceId, offer, caller.expiresAt);
  } catch (err) {
    if (err instanceof ProtocolError) return sendError(res, err.code === 'TALI_ERR_PAYLOAD_TOO_LARGE' ? 413 : 400, err.code, err.message);
    if (!(err instanceof WhepRefusal)) throw err;
    const status = { limit: 503, elsewhere: 503, 'not-streaming': 409, refused: 422 }[err.kind];
    return sendError(res, status, err.code, err.message, err.kind === 'refused' ? {} : { 'retry-after': err.kind === 'elsewhere' ? '1' : RETRY_LATER_S });
  }
  const { session, answer } = created;
  const links = o.iceServers(identity.id).flatMap(iceServerLinks);
  res.writeHead(201, {
    'content-type': 'application/sdp',
    location: `${WHEP_PATH}${deviceId}/${session.id}`,
    etag: session.etag,
    'accept-patch': 'application/trickle-ice-sdpfrag',
    'cache-control': 'no-store',
    ...(links.length > 0 && { link: links.join(', ') }),
  });
  res.end(answer);
}

async function resource(o: WhepRouteOptions, req: IncomingMessage, res: ServerResponse, method: string, session: WhepSession): Promise<void> {
  if (method === 'HEAD' || method === 'GET') return void res.writeHead(200, { 'content-length': '0' }).end();
  if (method !== 'PATCH' && method !== 'DELETE') return sendError(res, 405, 'TALI_ERR_METHOD', 'PATCH candidates or DELETE the session', { allow: RESOURCE_METHODS });
  const caller = await o.callers.bearer(req);
  if ('status' in caller) return refuseLogin(res, caller);
  if (caller.id !== session.identity.id) return sendError(res, 403, 'TALI_ERR_FORBIDDEN', 'this WHEP session belongs to another user');
  if (method === 'DELETE') {
    // §4.5: entity-tags are ignored where no ICE session has to match.
    await o.sessions.end(session.id, 'DELETE');
    return void res.writeHead(200, { 'content-length': '0' }).end();
  }
  if (!isType(req, 'application/trickle-ice-sdpfrag')) return sendError(res, 415, 'TALI_ERR_MEDIA_TYPE', 'PATCH with Content-Type: application/trickle-ice-sdpfrag');
  const ifMatch = req.headers['if-match'];
  const text = await body(req, o.maxBodyBytes);
  if (text === undefined) return sendError(res, 413, 'TALI_ERR_BAD_REQUEST', `the fragment is over ${o.maxBodyBytes} bytes`);
  let fragment;
  try {
    fragment = parseSdpFragment(text);
  } catch (err) {
    if (err instanceof SdpFragmentError) return sendError(res, 400, 'TALI_ERR_BAD_REQUEST', err.message);
    throw err;
  }
  // §4.4.3: If-Match "*" with new credentials is an ICE restart; this bridge only does trickle (§4.4.1: 422).
  if (ifMatch === '*') return sendError(res, 422, 'TALI_ERR_ICE_RESTART', 'ICE restarts are not supported: DELETE this session and POST a new offer');
  if (ifMatch === undefined) return sendError(res, 428, 'TALI_ERR_PRECONDITION', `send If-Match: ${session.etag}`); // RFC 6585 §3
  if (ifMatch !== session.etag) return sendError(res, 412, 'TALI_ERR_PRECONDITION', 'If-Match is not this session\'s ETag'); // RFC 9110 §13.1.1
  try {
    o.sessions.addCandidates(session, fragment);
  } catch (err) {
    if (err instanceof ProtocolError) return sendError(res, 400, err.code, err.message);
    throw err;
  }
  res.writeHead(204).end(); // §4.4.2: no body, no ETag
}

function refuseLogin(res: ServerResponse, refusal: { status: number; code: string; message: string }): void {
  const headers: Record<string, string> = {};
  if (refusal.status === 401) headers['www-authenticate'] = 'Bearer realm="tali", error="invalid_token"';
  if (refusal.status === 429) headers['retry-after'] = '6';
  sendError(res, refusal.status, refusal.code, refusal.message, headers);
}

function isType(req: IncomingMessage, type: string): boolean {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() === type;
}

/** The body as text, or undefined when it is larger than `maxBytes`. */
async function body(req: IncomingMessage, maxBytes: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** RFC 9725 §4.6: `<url>; rel="ice-server"`, with username and credential for TURN. */
function iceServerLinks(server: IceServer): string[] {
  const urls = Array.isArray(server.urls) ? server.urls : [server.urls];
  const quoted = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;
  const auth = server.username !== undefined && server.credential !== undefined
    ? `; username=${quoted(server.username)}; credential=${quoted(server.credential)}; credential-type="password"`
    : '';
  return urls.map((url) => `<${url}>; rel="ice-server"${auth}`);
}
