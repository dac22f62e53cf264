/**
 * The MQTT client seam: the answerer, the relay, the device SDK and the tools all get an mqtt.js MqttClient from
 * here, connected to the embedded broker in-process or to any broker by URL. Nothing outside src/broker/ reaches
 * Aedes directly, so the same code runs against Mosquitto or EMQX.
 */
import { MqttClient, type IClientOptions } from 'mqtt';
import type { Duplex } from 'node:stream';
import { streamBuilderFor, type TlsClientOptions } from './streams.ts';

export interface MqttConnectOptions {
  /** mqtt://, mqtts://, ws:// or wss:// URL; or a function returning a connected stream (in-process broker). */
  target: string | (() => Duplex);
  clientId: string;
  username?: string | undefined;
  password?: string | undefined;
  will?: IClientOptions['will'];
  /** MQTT CleanSession (default true). */
  clean?: boolean;
  /** Seconds (default 30). */
  keepaliveS?: number;
  /** Milliseconds to wait for CONNACK (default 10 000). */
  connectTimeoutMs?: number;
  /** Milliseconds between automatic reconnects; 0 (default) leaves reconnecting to the caller. */
  reconnectPeriodMs?: number;
  tls?: TlsClientOptions;
  /**
   * Told of transport errors after the CONNACK (EPIPE, ECONNRESET: the broker went away mid-write). mqtt.js emits them
   * as 'error' on the client, and an EventEmitter's 'error' without a listener throws: the process would crash on what
   * the network did. The client still sees 'close' and reconnects when reconnectPeriodMs says so. Default: ignored.
   */
  onError?: (err: Error) => void;
}

/** Creates a client and starts connecting; see `connected()` to wait for the CONNACK. */
export function createMqttClient(options: MqttConnectOptions): MqttClient {
  const build = typeof options.target === 'string' ? streamBuilderFor(new URL(options.target), options.tls) : options.target;
  return new MqttClient(build, {
    protocolVersion: 4, // MQTT 3.1.1
    clientId: options.clientId,
    username: options.username,
    password: options.password,
    will: options.will,
    clean: options.clean ?? true,
    keepalive: options.keepaliveS ?? 30,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    reconnectPeriod: options.reconnectPeriodMs ?? 0,
    resubscribe: true,
  });
}

/** Resolves at CONNACK; rejects with the broker's refusal or the transport error. */
export function connected(client: MqttClient): Promise<void> {
  if (client.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      client.off('connect', onConnect);
      client.off('error', onError);
      client.off('close', onClose);
    };
    const onConnect = () => (cleanup(), resolve());
    const onError = (err: Error) => (cleanup(), reject(err));
    const onClose = () => (cleanup(), reject(new Error('connection closed before CONNACK')));
    client.on('connect', onConnect);
    client.on('error', onError);
    client.on('close', onClose);
  });
}

export async function connectMqtt(options: MqttConnectOptions): Promise<MqttClient> {
  const client = createMqttClient(options);
  try {
    await connected(client);
  } catch (err) {
    client.end(true);
    throw err;
  }
  client.on('error', options.onError ?? (() => {}));
  return client;
}
