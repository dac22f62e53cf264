/**
 * The MQTT side of the client SDKs (devices/sdk for cameras, src/viewer for viewers) that is not about tali messages:
 * what a connection looks like, how to tell a refused CONNECT from a network failure, and promise wrappers over
 * mqtt.js callbacks. Browser-safe.
 */
import type { MqttClient } from 'mqtt';

/** What DeviceClient and ViewerClient ask their connector for; every field maps 1:1 onto mqtt.js IClientOptions. */
export interface ClientConnectOptions {
  /** A device's must equal its device ID (the bridge refuses any other); a viewer's is its user name plus a suffix. */
  clientId: string;
  username: string;
  password: string;
  /**
   * Published by the broker if the client vanishes: a device's status card with state "offline" (retained), a
   * viewer's `leave` (not retained).
   */
  will: { topic: string; payload: string; qos: 1; retain: boolean };
  keepaliveS: number;
  clean: true;
}

/**
 * Makes an mqtt.js client that speaks MQTT 3.1.1 (protocolVersion 4) and does not reconnect by itself
 * (reconnectPeriod 0): ConnectionKeeper owns reconnecting. Node: `nodeConnector(url)` from ./node-connector.ts.
 * Browser: `(o) => mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, clientId: o.clientId,
 * username: o.username, password: o.password, will: o.will, keepalive: o.keepaliveS, clean: o.clean })`.
 */
export type MqttConnector = (options: ClientConnectOptions) => MqttClient;

/**
 * CONNACK return codes that retrying cannot fix (MQTT 3.1.1 §3.2.2.3): 1 unacceptable protocol version,
 * 2 identifier rejected, 4 bad user name or password, 5 not authorized. 3 (server unavailable) is worth a retry.
 */
const FATAL_CONNACK_CODES = new Set([1, 2, 4, 5]);

const CONNACK_TEXT: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'client ID rejected (a device must use its device ID)',
  3: 'server unavailable',
  4: 'bad {id} or secret',
  5: 'not authorized',
};

/** The broker refused the CONNECT for a reason that retrying will not fix. */
export class ConnectRefusedError extends Error {
  readonly returnCode: number;
  /** `who` names the client for people, e.g. `device "cam1"` or `viewer "alice"`; `idName` what its user name is. */
  constructor(who: string, returnCode: number, idName = 'user name') {
    const text = (CONNACK_TEXT[returnCode] ?? 'refused').replace('{id}', idName);
    super(`the broker refused ${who}: ${text} (CONNACK return code ${returnCode})`);
    this.name = 'ConnectRefusedError';
    this.returnCode = returnCode;
  }
}

/** The CONNACK return code carried by an mqtt.js 'error' event, if the error is a refused CONNECT. */
export function connackCode(err: Error): number | undefined {
  const code = (err as Error & { code?: unknown }).code;
  return typeof code === 'number' && err.message.startsWith('Connection refused') ? code : undefined;
}

export function isFatalConnack(code: number | undefined): code is number {
  return code !== undefined && FATAL_CONNACK_CODES.has(code);
}

/**
 * Publishes at QoS 1 and resolves at PUBACK. Also rejects when the connection closes first: mqtt.js would keep the
 * callback until a reconnect of the same client, and ConnectionKeeper makes a new client per connection.
 */
export function publish(client: MqttClient, topic: string, payload: string, retain = false): Promise<void> {
  return new Promise((resolve, reject) => {
    const onClose = () => reject(new Error(`connection closed before PUBACK on ${topic}`));
    client.once('close', onClose);
    client.publish(topic, payload, { qos: 1, retain }, (err) => {
      client.off('close', onClose);
      if (err) reject(err);
      else resolve();
    });
  });
}

/** Subscribes at QoS 1; rejects if the broker refuses any filter (SUBACK 0x80, MQTT-3.9.3). */
export function subscribe(client: MqttClient, filters: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    client.subscribe(filters, { qos: 1 }, (err, granted) => {
      if (err) return reject(err);
      const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
      if (refused.length > 0) reject(new Error(`the broker refused the subscription to ${refused.join(', ')}`));
      else resolve();
    });
  });
}

/** Rejects with `what` timed out after `ms`; the timer never outlives the race. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
