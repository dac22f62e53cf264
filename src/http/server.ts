/**
 * The bridge's one HTTP(S) server: MQTT over WebSocket upgrades (see broker/websocket.ts) and plain routes. Routes
 * are a small table so later features (dashboard, metrics) add a line, not a framework.
 *
 * What it holds per client is bounded, so that one address cannot take the sockets everyone else needs (/healthz,
 * /api/token, the dashboard's MQTT): a cap on sockets per address (`maxSocketsPerAddress`), a deadline for the
 * request head (`headersTimeoutMs`) and for the whole request with its body (`requestTimeoutMs`), checked every
 * second, and the TLS handshake within the head's deadline.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export type Route = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface HttpServerOptions {
  /**
   * Every socket the server holds (plain requests and WebSocket upgrades alike): idle HTTP connections are not MQTT
   * connections, so the broker's limits never see them.
   */
  maxSockets?: number | undefined;
  /** Sockets from one IP address at once, upgraded ones included; more are closed on arrival. */
  maxSocketsPerAddress?: number | undefined;
  /** A request's head (request line and headers, and with TLS the handshake) must arrive within this (default 10 s). */
  headersTimeoutMs?: number | undefined;
  /** The whole request, body included, must arrive within this (default 30 s). */
  requestTimeoutMs?: number | undefined;
}

/** Headers on every response: no response of ours is meant to be sniffed into another type (scripts, HTML). */
const COMMON_HEADERS = { 'x-content-type-options': 'nosniff' } as const;

export class HttpServer {
  readonly server: Server;
  readonly #routes = new Map<string, Route>();
  readonly #prefixes: [prefix: string, route: Route][] = [];
  readonly #perAddress = new Map<string, number>();
  /** Sockets closed on arrival because their address was at maxSocketsPerAddress, since start. */
  refusedSockets = 0;

  constructor(tls?: { key: Buffer; cert: Buffer }, options: HttpServerOptions = {}) {
    const handler = (req: IncomingMessage, res: ServerResponse) => this.#handle(req, res);
    const headersTimeout = options.headersTimeoutMs ?? 10_000;
    // Node checks both deadlines only every connectionsCheckingInterval (30 s by default): a slow-loris client would
    // hold its socket three times longer than the deadline says.
    const timing = { headersTimeout, requestTimeout: Math.max(options.requestTimeoutMs ?? 30_000, headersTimeout), connectionsCheckingInterval: 1000 };
    this.server = tls
      ? createHttpsServer({ key: tls.key, cert: tls.cert, handshakeTimeout: headersTimeout, ...timing }, handler)
      : createHttpServer(timing, handler);
    // Keep-alive sockets would hold close() open; we close them ourselves on shutdown.
    this.server.keepAliveTimeout = 5000;
    if (options.maxSockets !== undefined) this.server.maxConnections = options.maxSockets;
    const perAddress = options.maxSocketsPerAddress;
    if (perAddress !== undefined) this.server.on('connection', (socket: Socket) => this.#admit(socket, perAddress));
    // A head deadline from accept (after the TLS handshake, which handshakeTimeout bounds) to the first request, not
    // left to Node alone: Node 24 also counts a socket that sends nothing from accept (measured: 408 after 1.04 s with
    // headersTimeout 1 s), but only when its checker next runs, and this does not depend on that. Keep-alive and
    // upgraded sockets get their own (keepAliveTimeout; ws clears it). It is an idle timer: Node restarts it on every
    // chunk its parser reads, so a head sent byte by byte is bounded by headersTimeout.
    this.server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => socket.setTimeout(headersTimeout));
    this.server.on('request', (req: IncomingMessage) => req.socket.setTimeout(0));
  }

  route(path: string, route: Route): void {
    this.#routes.set(path, route);
  }

  /** A route for every path under `prefix` (e.g. "/api/recordings/"), for paths that carry an ID. */
  routePrefix(prefix: string, route: Route): void {
    this.#prefixes.push([prefix, route]);
    this.#prefixes.sort((a, b) => b[0].length - a[0].length);
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port }, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Idempotent; drops idle and active keep-alive connections. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** Counts the socket against its address, or closes it at once when the address is at its cap. */
  #admit(socket: Socket, cap: number): void {
    const address = socket.remoteAddress ?? 'unknown';
    const count = this.#perAddress.get(address) ?? 0;
    if (count >= cap) {
      this.refusedSockets++;
      socket.destroy();
      return;
    }
    this.#perAddress.set(address, count + 1);
    socket.once('close', () => {
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left === 0) this.#perAddress.delete(address);
      else this.#perAddress.set(address, left);
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    for (const [name, value] of Object.entries(COMMON_HEADERS)) res.setHeader(name, value);
    const path = (req.url ?? '/').split('?')[0] as string;
    if (!wellEscaped(path)) {
      // Routes decode the path to read IDs from it; a malformed escape is the client's error, said once here.
      res.writeHead(400, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(`${JSON.stringify({ error: 'TALI_ERR_BAD_REQUEST', message: 'malformed percent-escape in the path' })}\n`);
      return;
    }
    const route = this.#routes.get(path) ?? this.#prefixes.find(([prefix]) => path.startsWith(prefix))?.[1];
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    Promise.resolve(route(req, res)).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  }
}

/** Whether every `%` in the path starts a well-formed escape of UTF-8 (what decodeURIComponent accepts). */
function wellEscaped(path: string): boolean {
  if (!path.includes('%')) return true;
  try {
    decodeURIComponent(path);
    return true;
  } catch {
    return false;
  }
}
