/**
 * The browser connector for DeviceClient and ViewerClient: mqtt.js's browser build over WebSocket to the bridge that
 * served the page (same host and port, ws:// or wss:// following the page's http:// or https://). Browser only.
 */
import mqtt from 'mqtt';
import type { MqttConnector } from './mqtt-link.ts';

/** The bridge's MQTT-over-WebSocket URL as seen from a page it served, e.g. wss://bridge.example/mqtt. */
export function mqttUrlFor(location: Location, path: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

export function browserConnector(url: string): MqttConnector {
  return (o) =>
    mqtt.connect(url, {
      protocolVersion: 4, // MQTT 3.1.1: what the bridge's broker speaks
      reconnectPeriod: 0, // the SDK clients reconnect themselves, with backoff
      connectTimeout: 10_000,
      clientId: o.clientId,
      username: o.username,
      password: o.password,
      will: o.will,
      keepalive: o.keepaliveS,
      clean: o.clean,
    });
}
