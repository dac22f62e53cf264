/**
 * MQTT over TCP, or over TLS when a key and certificate are given (MQTT §4.2, port 8883 by convention).
 *
 * Nagle is off on every socket: signaling is small request/response traffic, and with Nagle each hop waited
 * ~40 ms for the peer's delayed ACK here (offer→answer 45 ms with Nagle, 8.7 ms without).
 */
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Broker } from './broker.ts';

export interface TcpListenerOptions {
  /** PEM key and certificate: TLS when given, plain TCP otherwise. */
  tls?: { key: Buffer; cert: Buffer } | undefined;
}

export class TcpListener {
  readonly server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(broker: Broker, options: TcpListenerOptions) {
    const accept = (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      socket.setNoDelay(true);
      broker.accept(socket, options.tls ? 'tls' : 'tcp', socket.remoteAddress ?? 'unknown');
    };
    if (options.tls) {
      const server = createTlsServer({ key: options.tls.key, cert: options.tls.cert }, (s: TLSSocket) => accept(s));
      // A failed handshake (e.g. plain MQTT sent to the TLS port) is the client's problem, not ours.
      server.on('tlsClientError', (_err, socket) => socket.destroy());
      this.server = server;
    } else {
      this.server = createNetServer({ noDelay: true }, accept);
    }
  }

  /** Port 0 picks a free port; resolves with the real one. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port }, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  /**
   * Stops accepting, then ends every connection gracefully: what the broker already wrote (a last bye, the bridge's
   * offline card) is flushed before FIN. Connections still open after `graceMs` are destroyed. Idempotent.
   */
  async close(graceMs = 1000): Promise<void> {
    const closed = new Promise<void>((resolve) => (this.server.listening ? this.server.close(() => resolve()) : resolve()));
    await endGracefully(this.#sockets, graceMs);
    await closed;
  }
}

/** socket.end() on each, then destroy() what is still open after graceMs. */
async function endGracefully(sockets: Iterable<Socket>, graceMs: number): Promise<void> {
  const open = [...sockets].filter((s) => !s.destroyed);
  if (open.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const allClosed = Promise.all(open.map((s) => new Promise((resolve) => (s.once('close', resolve), s.end()))));
  const grace = new Promise((resolve) => (timer = setTimeout(resolve, graceMs)));
  await Promise.race([allClosed, grace]);
  clearTimeout(timer);
  for (const socket of open) socket.destroy();
}
