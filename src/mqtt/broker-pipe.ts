/**
 * External-broker mode: MQTT over WebSocket at the bridge's wsPath, carried byte for byte to the broker, so the
 * dashboard and the browser camera that the bridge serves reach the broker from their own origin, whatever listeners
 * the broker has (Mosquitto's default configuration has no WebSocket listener). The broker authenticates and
 * authorizes every client exactly as if it had connected directly: the pipe reads no MQTT and holds no credentials.
 */
import type { IncomingMessage } from 'node:http';
import { pipeline, type Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { streamBuilderFor, type StreamBuilder } from './streams.ts';

export interface BrokerPipeOptions {
  /** The broker's URL: mqtt://, mqtts://, ws:// or wss://. */
  broker: string;
  /** Pipes open at once; more are closed on arrival (the maxConnections option). */
  maxPipes: number;
  /** Pipes from one IP address at once (the maxConnectionsPerAddress option). */
  maxPipesPerAddress: number;
  logger: Logger;
}

export class BrokerPipe {
  readonly #connect: StreamBuilder;
  readonly #options: BrokerPipeOptions;
  readonly #open = new Set<Duplex>();
  readonly #perAddress = new Map<string, number>();

  constructor(options: BrokerPipeOptions) {
    this.#options = options;
    this.#connect = streamBuilderFor(new URL(options.broker));
  }

  /** Connects `client` (a browser's MQTT-over-WebSocket stream) to the broker until either side closes. */
  readonly accept = (client: Duplex, req: IncomingMessage): void => {
    const address = req.socket.remoteAddress ?? 'unknown';
    const fromAddress = this.#perAddress.get(address) ?? 0;
    const limit = this.#open.size >= this.#options.maxPipes ? 'maxConnections' : fromAddress >= this.#options.maxPipesPerAddress ? 'maxConnectionsPerAddress' : undefined;
    if (limit !== undefined) {
      this.#options.logger.warn({ event: 'limit', limit, address }, 'WebSocket connection to the broker refused: limit reached');
      client.destroy();
      return;
    }
    const upstream = this.#connect();
    this.#open.add(client);
    this.#perAddress.set(address, fromAddress + 1);
    // Either side closing or failing ends both: the broker sees the browser go, the browser sees the broker go.
    pipeline(client, upstream, client, (err) => {
      this.#open.delete(client);
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.#perAddress.set(address, left);
      else this.#perAddress.delete(address);
      if (err && err.code !== 'ERR_STREAM_PREMATURE_CLOSE') this.#options.logger.debug({ address, err: err.message }, 'WebSocket pipe to the broker ended');
    });
  };

  /** Ends every pipe. Idempotent. */
  close(): void {
    for (const client of this.#open) client.destroy();
  }
}
