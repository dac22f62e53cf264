/**
 * libpeer's JSON-RPC 2.0 over MQTT (github.com/sepfy/libpeer, src/peer_signaling.c at 9319aa4): the bridge calls, the
 * device answers on its result topic. The one encoder of requests and the one decoder of responses: nothing past
 * this module sees a raw payload.
 *
 *   request (bridge → device, <prefix>/<id>/invoke)           response (device → bridge, <prefix>/<id>/result)
 *   {"jsonrpc":"2.0","method":"offer","id":N}                  {"jsonrpc":"2.0","id":N,"result":"<offer SDP>"}
 *   {"jsonrpc":"2.0","method":"answer","params":"<SDP>","id":N} (none: the device only applies it)
 *   {"jsonrpc":"2.0","method":"state","id":N}                  {"jsonrpc":"2.0","id":N,"result":"completed"}
 *   {"jsonrpc":"2.0","method":"close","id":N}                  {"jsonrpc":"2.0","id":N,"result":""}
 *   an offer while a session is live                           {"jsonrpc":"2.0","id":N,"error":{"code":-32603,"message":"Internal error"}}
 *
 * The device replies to the offer only once ICE gathering is over, with every candidate inside (no trickle), and
 * only to an id ≥ 1 (with id ≤ 0 it would try to POST the offer over HTTP instead). It reads `id` with cJSON's
 * valueint, so ids stay within a C int. It dereferences `method` (and `params` of an answer) without checking they
 * are strings, so every request carries both as strings.
 */

export const LIBPEER_METHODS = ['offer', 'answer', 'state', 'close'] as const;
export type LibpeerMethod = (typeof LIBPEER_METHODS)[number];

/** peer_connection_state_to_string() of libpeer's PeerConnectionState. */
export const LIBPEER_STATES = ['new', 'checking', 'connected', 'completed', 'failed', 'closed', 'disconnected', 'unknown'] as const;
export type LibpeerState = (typeof LIBPEER_STATES)[number];

/** JSON-RPC 2.0 error codes libpeer sends (§5.1 of the JSON-RPC 2.0 specification). */
export const RPC_ERRORS = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  /** libpeer: `offer` while its PeerConnection is checking, connected or completed. */
  internalError: -32603,
} as const;

/** Largest id: libpeer keeps it in a C int. */
export const MAX_RPC_ID = 2_147_483_647;

export type RpcResponse = { id: number; result: string } | { id: number; error: { code: number; message: string } };

export class RpcDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RpcDecodeError';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A request's payload, members in libpeer's own order (jsonrpc, method, params, id). */
export function encodeRequest(method: LibpeerMethod, id: number, params?: string): string {
  if (!Number.isInteger(id) || id < 1 || id > MAX_RPC_ID) throw new RangeError(`JSON-RPC id ${id} is not in 1…${MAX_RPC_ID}`);
  return JSON.stringify({ jsonrpc: '2.0', method, ...(params !== undefined && { params }), id });
}

/** Decodes one payload from a result topic. Throws RpcDecodeError for anything but a JSON-RPC 2.0 response. */
export function decodeResponse(payload: Uint8Array, maxBytes: number): RpcResponse {
  if (payload.byteLength > maxBytes) throw new RpcDecodeError(`response is ${payload.byteLength} bytes; limit ${maxBytes}`);
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(payload));
  } catch {
    throw new RpcDecodeError('response is not UTF-8 JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RpcDecodeError('response is not a JSON object');
  const r = value as Record<string, unknown>;
  if (r.jsonrpc !== '2.0') throw new RpcDecodeError('"jsonrpc" is not "2.0"');
  // libpeer answers -1 when it could not read the request's id (parse error, no id).
  if (!Number.isInteger(r.id) || (r.id as number) < -1 || (r.id as number) > MAX_RPC_ID) throw new RpcDecodeError('"id" is not an integer id');
  const id = r.id as number;
  const hasResult = Object.hasOwn(r, 'result');
  if (hasResult === Object.hasOwn(r, 'error')) throw new RpcDecodeError('exactly one of "result" and "error" is required');
  if (hasResult) {
    if (typeof r.result !== 'string') throw new RpcDecodeError('"result" is not a string');
    return { id, result: r.result };
  }
  const e = r.error as Record<string, unknown> | null;
  if (typeof e !== 'object' || e === null || !Number.isInteger(e.code) || typeof e.message !== 'string') {
    throw new RpcDecodeError('"error" is not {code, message}');
  }
  return { id, error: { code: e.code as number, message: e.message.slice(0, 256) } };
}

export function isLibpeerState(value: string): value is LibpeerState {
  return (LIBPEER_STATES as readonly string[]).includes(value);
}
