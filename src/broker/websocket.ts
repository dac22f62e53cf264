/**
 * MQTT over WebSocket (MQTT §6) on the bridge's shared HTTP(S) server, at one path (default /mqtt). Each connection
 * becomes a byte stream handed to `onStream`: the embedded broker's `accept`, or in external-broker mode a pipe to
 * the broker (src/mqtt/broker-pipe.ts).
 *
 * Built on `ws` and its createWebSocketStream. Not `websocket-stream`, which pins ws 3.3.3 with published
 * denial-of-service advisories (GHSA-6fc8-4gx4-v693, GHSA-3h5v-q93c-6h6q).
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, WebSocketServer } from 'ws';

export interface WebSocketListenerOptions {
  path: string;
  /** Takes over each connection's stream (with Nagle already off). */
  onStream: (stream: Duplex, req: IncomingMessage) => void;
  /** Largest WebSocket message accepted, in bytes; larger ones close the connection (ws `maxPayload`). */
  maxMessageBytes: number;
  /** Whether the page that asks may connect (src/http/origin.ts); refused handshakes get 403. Default: any. */
  allowOrigin?: ((req: IncomingMessage) => boolean) | undefined;
}

export class WebSocketListener {
  readonly #wss: WebSocketServer;
  readonly #server: HttpServer | HttpsServer;
  readonly #onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

  constructor(server: HttpServer | HttpsServer, options: WebSocketListenerOptions) {
    this.#server = server;
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxMessageBytes,
      // MQTT §6: the client offers the "mqtt" subprotocol; pick it when offered, accept plain clients too.
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false),
      perMessageDeflate: false,
      ...(options.allowOrigin && {
        verifyClient: ({ req }: { req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) =>
          options.allowOrigin?.(req) === false ? done(false, 403, 'origin not allowed') : done(true),
      }),
    });
    this.#onUpgrade = (req, socket, head) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== options.path) return; // another upgrade handler (or none) owns it
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        (req.socket as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
        const stream = createWebSocketStream(ws);
        stream.on('error', () => stream.destroy());
        options.onStream(stream, req);
      });
    };
    server.on('upgrade', this.#onUpgrade);
  }

  /**
   * Closes every WebSocket with 1001 "going away" (RFC 6455 §7.4.1) after what was written is flushed, and
   * terminates those that do not finish within `graceMs`. The HTTP server belongs to the bridge. Idempotent.
   */
  async close(graceMs = 1000): Promise<void> {
    this.#server.off('upgrade', this.#onUpgrade);
    const open = [...this.#wss.clients];
    let timer: NodeJS.Timeout | undefined;
    const allClosed = Promise.all(open.map((ws) => new Promise((resolve) => (ws.once('close', resolve), ws.close(1001)))));
    await Promise.race([allClosed, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    for (const ws of open) ws.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}
