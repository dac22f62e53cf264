/**
 * libpeer's MQTT signaling (src/peer_signaling.c at 9319aa4), line by line: URL and token parsing, the topics, and
 * the JSON-RPC handler with cJSON's semantics, including what the C code does with requests it does not expect.
 *
 *   peer_signaling_connect(url, token): mqtts://host[:port]/<path> (mqtt:// too: still TLS, port 1883), client ID
 *     = the last path level (31 characters at most), subscribe <path>/invoke, publish <path>/result; token =
 *     base64("user:password"), split at the first ':'
 *   on a request: the offer is answered only after gathering, with every candidate, to an id > 0 (id ≤ 0: libpeer
 *     POSTs the SDP over HTTP to the URL instead: nothing on MQTT); requests are handled one at a time (the C loop
 *     blocks while gathering)
 *   cJSON: member names match case-insensitively, the first match wins; a non-numeric id reads as 0, a fractional
 *     one is truncated, a huge one saturates at INT_MAX/INT_MIN
 *   a request without "method", or with a non-string "method" (or "params" of an answer), dereferences NULL: the
 *     device crashes (here: the connection drops and `crashed` is set)
 */
import { CoreMqtt, type CoreMqttOptions } from './core-mqtt.ts';
import type { LibpeerPeerConnection } from './peer-connection.ts';
import { LibpeerCrash } from './answer-reader.ts';

const RPC_ERROR = {
  parse: '{"code":-32700,"message":"Parse error"}',
  invalidRequest: '{"code":-32600,"message":"Invalid Request"}',
  methodNotFound: '{"code":-32601,"message":"Method not found"}',
  invalidParams: '{"code":-32602,"message":"Invalid params"}',
  internal: '{"code":-32603,"message":"Internal error"}',
} as const;

export interface ParsedUrl {
  host: string;
  port: number;
  path: string;
}

/** peer_signaling_resolve_url(), MQTT schemes only (the HTTP ones are libpeer's WHIP client). */
export function resolveUrl(url: string): ParsedUrl {
  const scheme = /^(mqtts?):\/\//.exec(url);
  if (scheme === null) throw new Error(`not an mqtt(s):// URL: ${url}`);
  let port = scheme[1] === 'mqtts' ? 8883 : 1883;
  const rest = url.slice(scheme[0].length);
  const portStart = rest.indexOf(':');
  const pathStart = rest.indexOf('/');
  let host = rest;
  let path = '';
  if (portStart !== -1 && pathStart !== -1 && portStart < pathStart) {
    host = rest.slice(0, portStart);
    path = rest.slice(pathStart);
    port = Number.parseInt(rest.slice(portStart + 1), 10) || 0; // atoi
  } else if (portStart === -1 && pathStart !== -1) {
    host = rest.slice(0, pathStart);
    path = rest.slice(pathStart);
  } else if (portStart !== -1 && pathStart === -1) {
    host = rest.slice(0, portStart);
    port = Number.parseInt(rest.slice(portStart + 1), 10) || 0;
  }
  return { host, port, path };
}

/** peer_signaling_resolve_token(): base64 of "user:password". */
export function resolveToken(token: string): { username: string; password: string } | undefined {
  const plain = Buffer.from(token, 'base64').toString('utf8').slice(0, 255);
  const colon = plain.indexOf(':');
  if (colon === -1) return undefined;
  return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
}

export interface PeerSignalingEvents {
  /** A request arrived (before it is handled). */
  request?(method: unknown, id: unknown): void;
  /** A response was published. */
  response?(payload: string): void;
  /** The MQTT connection is gone (closed by the broker, keep-alive timeout, crash). */
  closed?(reason: string): void;
  /** An answer or request libpeer would crash on. */
  crashed?(error: Error): void;
}

export class PeerSignaling {
  readonly url: ParsedUrl;
  readonly clientId: string;
  readonly subtopic: string;
  readonly pubtopic: string;
  /** SUBACK return codes of the last SUBSCRIBE. */
  suback: number[] | undefined;
  crashed: Error | undefined;
  readonly #pc: LibpeerPeerConnection;
  readonly #mqtt: CoreMqtt;
  readonly #events: PeerSignalingEvents;
  /** g_ps.id: the offer request's id, answered once gathering is over. */
  #offerId = 0;
  #queue: Promise<void> = Promise.resolve();

  constructor(url: string, token: string | undefined, pc: LibpeerPeerConnection, events: PeerSignalingEvents = {}, timing?: CoreMqttOptions['timing']) {
    this.url = resolveUrl(url);
    this.#pc = pc;
    this.#events = events;
    const slash = this.url.path.lastIndexOf('/');
    this.clientId = this.url.path.slice(slash + 1).slice(0, 31); // snprintf into char client_id[32]
    this.subtopic = `${this.url.path}/invoke`;
    this.pubtopic = `${this.url.path}/result`;
    const credentials = token ? resolveToken(token) : undefined;
    this.#mqtt = new CoreMqtt(
      { host: this.url.host, port: this.url.port, clientId: this.clientId, username: credentials?.username, password: credentials?.password, timing },
      {
        publish: (_topic, payload) => this.#enqueue(payload),
        dropped: () => {},
        suback: (codes) => (this.suback = codes),
        closed: (reason) => this.#events.closed?.(reason),
      },
    );
  }

  /** Bytes of packets coreMQTT dropped for not fitting its 4096-byte buffer. */
  get droppedBytes(): number {
    return this.#mqtt.dropped;
  }

  /** peer_signaling_connect(): CONNECT, then SUBSCRIBE when CONNACK 0 came within 1 s. Resolves with the CONNACK code. */
  async connect(): Promise<number> {
    const rc = await this.#mqtt.connect();
    if (rc === 0) this.#mqtt.subscribe(this.subtopic);
    return rc;
  }

  /** peer_signaling_disconnect(): UNSUBSCRIBE, DISCONNECT. */
  disconnect(): void {
    this.#mqtt.unsubscribe(this.subtopic);
    this.#mqtt.disconnect();
  }

  /** The device loses power or crashes: TCP gone without DISCONNECT. */
  drop(): void {
    this.#mqtt.destroy();
  }

  #enqueue(payload: Buffer): void {
    this.#queue = this.#queue.then(() => this.#onRequest(payload)).catch((err: Error) => {
      this.crashed = err;
      this.#events.crashed?.(err);
      this.#mqtt.destroy();
    });
  }

  /** peer_signaling_on_pub_event(). */
  async #onRequest(payload: Buffer): Promise<void> {
    if (this.crashed) return;
    let req: unknown;
    try {
      req = JSON.parse(payload.toString('utf8'));
    } catch {
      return this.#respond(-1, { error: RPC_ERROR.parse });
    }
    const idItem = member(req, 'id');
    this.#events.request?.(member(req, 'method'), idItem);
    if (idItem === undefined) return this.#respond(-1, { error: RPC_ERROR.invalidRequest });
    const id = valueint(idItem);
    const method = member(req, 'method');
    if (typeof method !== 'string') throw new LibpeerCrash(`"method" is ${method === undefined ? 'missing' : 'not a string'}: NULL dereferenced`);
    const state = this.#pc.state;
    switch (method) {
      case 'offer':
        if (state === 'new' || state === 'disconnected' || state === 'failed' || state === 'closed') {
          this.#offerId = id;
          const sdp = await this.#pc.createOffer();
          // peer_signaling_onicecandidate: over MQTT only for an id > 0.
          if (this.#offerId > 0) this.#respond(this.#offerId, { result: sdp });
          this.#offerId = 0;
          return;
        }
        return this.#respond(id, { error: RPC_ERROR.internal });
      case 'answer': {
        const params = member(req, 'params');
        if (params === undefined) return this.#respond(id, { error: RPC_ERROR.invalidParams });
        if (typeof params !== 'string') throw new LibpeerCrash('"params" of an answer is not a string: NULL dereferenced');
        await this.#pc.setRemoteDescription(params);
        return; // no reply
      }
      case 'state':
        return this.#respond(id, { result: state });
      case 'close':
        this.#pc.close();
        return this.#respond(id, { result: '' });
      default:
        return this.#respond(id, { error: RPC_ERROR.methodNotFound });
    }
  }

  /** cJSON_PrintUnformatted of {jsonrpc, id, result|error}; the error object is inserted raw (cJSON_CreateRaw). */
  #respond(id: number, body: { result: string } | { error: string }): void {
    const head = `{"jsonrpc":"2.0","id":${id},`;
    const payload = 'result' in body ? `${head}"result":${JSON.stringify(body.result)}}` : `${head}"error":${body.error}}`;
    this.#events.response?.(payload);
    this.#mqtt.publish(this.pubtopic, payload);
  }
}

/** cJSON_GetObjectItem: case-insensitive, first match, objects only. */
function member(value: unknown, name: string): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const key = Object.keys(value).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : (value as Record<string, unknown>)[key];
}

/** cJSON's valueint: the number truncated and saturated to a C int; 0 for anything that is not a number. */
function valueint(value: unknown): number {
  if (typeof value !== 'number') return 0;
  if (value >= 2_147_483_647) return 2_147_483_647;
  if (value <= -2_147_483_648) return -2_147_483_648;
  return Math.trunc(value);
}
