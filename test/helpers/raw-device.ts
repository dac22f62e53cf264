/**
 * A device at the wire level: an MQTT client with the device's credentials and raw access to its topics, for tests
 * that must send exactly what they mean (malformed payloads, replays, out-of-order messages). Devices that behave
 * use the SDK in devices/sdk instead.
 */
import type { MqttClient } from 'mqtt';
import { onTestFinished } from 'vitest';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { PROTOCOL_VERSION, Topics } from '../../src/protocol/topics.ts';
import type { TestBridge, Transport } from './bridge.ts';
import { Inbox } from './wait.ts';

export interface RawDevice {
  id: string;
  secret: string;
  client: MqttClient;
  /** Everything received on the device's down topic. */
  down: Inbox;
  topics: Topics;
  /** Publishes on the device's up topic: an object is JSON-encoded, a string or Buffer goes as is. */
  send(payload: object | string | Buffer): Promise<void>;
  /** A session message with v, ts and the given fields. */
  message(type: string, sessionId: string, seq: number, fields?: Record<string, unknown>): Record<string, unknown>;
}

/** `will`: set the device's last will to its offline card, as the SDK does. */
export async function connectRawDevice(tb: TestBridge, transport: Transport, id = 'cam1', options: { will?: boolean } = {}): Promise<RawDevice> {
  const secret = await tb.bridge.credentials.add(id, 'device', { replace: true });
  const topics = new Topics(tb.bridge.config.root);
  const offline = JSON.stringify({ v: PROTOCOL_VERSION, type: 'status', ts: Date.now(), state: 'offline' });
  const will = options.will ? { topic: topics.device(id, 'status'), payload: Buffer.from(offline), qos: 1 as const, retain: true } : undefined;
  const client = await connectMqtt({ target: tb.urlFor(transport), clientId: id, username: id, password: secret, will });
  onTestFinished(() => client.endAsync(true));
  const down = new Inbox(client);
  await client.subscribeAsync(topics.device(id, 'down'), { qos: 1 });
  return {
    id,
    secret,
    client,
    down,
    topics,
    send: async (payload) => {
      const body = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
      await client.publishAsync(topics.device(id, 'up'), body, { qos: 1 });
    },
    message: (type, sessionId, seq, fields = {}) => ({ v: PROTOCOL_VERSION, type, sessionId, seq, ts: Date.now(), ...fields }),
  };
}
