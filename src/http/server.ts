/**
 * The bridge's one HTTP(S) server: MQTT over WebSocket upgrades (see broker/websocket.ts) and plain routes. Routes
 * are a small table so later features (dashboard, metrics) add a line, not a framework.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export type Route = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export class HttpServer {
  readonly server: Server;
  readonly #routes = new Map<string, Route>();
  readonly #prefixes: [prefix: string, route: Route][] = [];

  /**
   * `maxSockets` bounds every socket the server holds (plain requests and WebSocket upgrades alike): idle HTTP
   * connections are not MQTT connections, so the broker's limits never see them.
   */
  constructor(tls?: { key: Buffer; cert: Buffer }, options: { maxSockets?: number } = {}) {
    const handler = (req: IncomingMessage, res: ServerResponse) => this.#handle(req, res);
    this.server = tls ? createHttpsServer({ key: tls.key, cert: tls.cert }, handler) : createHttpServer(handler);
    // Keep-alive sockets would hold close() open; we close them ourselves on shutdown.
    this.server.keepAliveTimeout = 5000;
    // A slow-loris client holding a socket open with half a request: Node's defaults allow 60 s and 300 s.
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    if (options.maxSockets !== undefined) this.server.maxConnections = options.maxSockets;
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

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] as string;
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
