/**
 * The Node connector for DeviceClient: mqtt://, mqtts://, ws:// and wss:// through the project's stream builders
 * (src/mqtt/streams.ts, Nagle off on every transport) and client seam (src/mqtt/connect.ts). Node only; a browser
 * page uses mqtt.connect instead.
 */
import { createMqttClient } from '../mqtt/connect.ts';
import { streamBuilderFor, type TlsClientOptions } from '../mqtt/streams.ts';
import type { MqttConnector } from './mqtt-link.ts';

export interface NodeConnectorOptions {
  /** For mqtts:// and wss://: CA certificate(s) to trust, and whether to verify the server at all. */
  tls?: TlsClientOptions | undefined;
  /** Milliseconds to wait for CONNACK (default 10 000). */
  connectTimeoutMs?: number | undefined;
}

export function nodeConnector(url: string, options: NodeConnectorOptions = {}): MqttConnector {
  // Fail at configuration time, not at the first connect.
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  if (parsed === undefined || !['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(parsed.protocol)) {
    throw new TypeError(`unsupported MQTT URL ${JSON.stringify(url)}: use mqtt://, mqtts://, ws:// or wss://`);
  }
  const target = streamBuilderFor(parsed, options.tls);
  return (o) =>
    createMqttClient({
      target,
      clientId: o.clientId,
      username: o.username,
      password: o.password,
      will: o.will,
      clean: o.clean,
      keepaliveS: o.keepaliveS,
      connectTimeoutMs: options.connectTimeoutMs,
      reconnectPeriodMs: 0,
    });
}
