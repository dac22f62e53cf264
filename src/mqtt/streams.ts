/**
 * One stream builder per transport, as in MQTT.js, but each with Nagle off: signaling is small request/response
 * traffic and Nagle adds ~40 ms per hop (measured here; the broker side disables it too, one side is not enough).
 */
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { createWebSocketStream, WebSocket } from 'ws';

export interface TlsClientOptions {
  /** PEM CA certificate(s) to trust, e.g. the bridge's self-signed certificate. */
  ca?: Buffer | string | undefined;
  /** Verify the server certificate (default true). */
  rejectUnauthorized?: boolean | undefined;
}

export type StreamBuilder = () => Duplex;

const DEFAULT_PORTS: Record<string, number> = { 'mqtt:': 1883, 'mqtts:': 8883, 'ws:': 80, 'wss:': 443 };

export function streamBuilderFor(url: URL, tls: TlsClientOptions = {}): StreamBuilder {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port) || (DEFAULT_PORTS[url.protocol] as number);
  switch (url.protocol) {
    case 'mqtt:':
    case 'tcp:':
      return () => netConnect({ host, port, noDelay: true });
    case 'mqtts:':
    case 'tls:':
      return () => {
        const socket = tlsConnect({ host, port, servername: isIp(host) ? undefined : host, ...tls });
        socket.setNoDelay(true);
        return socket;
      };
    case 'ws:':
    case 'wss:':
      return () => {
        // MQTT §6: binary frames and the "mqtt" subprotocol.
        const ws = new WebSocket(url, 'mqtt', { perMessageDeflate: false, ...tls });
        ws.once('upgrade', (res) => res.socket.setNoDelay(true));
        const stream = createWebSocketStream(ws);
        // The stream only ends when destroyed; without this a close by the broker goes unnoticed by mqtt.js until
        // its keepalive expires (as MQTT.js's own ws builder does).
        ws.once('close', () => stream.destroy());
        return stream;
      };
    default:
      throw new TypeError(`unsupported MQTT URL scheme ${url.protocol} (use mqtt:, mqtts:, ws: or wss:)`);
  }
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
