/**
 * The checker's eyes: an admin MQTT connection that subscribes to everything about one device (an admin may read
 * everything under the root and $SYS: src/security/access.ts) and writes what arrives into the Timeline, decoded by
 * the protocol's one decoder. No special access: the same subscriptions a dashboard or `mosquitto_sub` could make.
 *
 *   {root}/v1/device/{id}/status, /up, /down, /metrics     the device's and the bridge's messages
 *   {root}/v1/bridge/+/status                              the bridge card (maxMessageBytes)
 *   $SYS/+/tali/device/{id}/connected, /disconnected       what its CONNECT said, how its connection ended
 *   $SYS/+/new/subscribes                                  Aedes: which filters a client subscribed, when
 */
import type { MqttClient } from 'mqtt';
import type { DeviceConnected, DeviceDisconnected } from '../broker/connection-events.ts';
import { connackCode } from '../client/mqtt-link.ts';
import { connected as connackOf, createMqttClient } from '../mqtt/connect.ts';
import { streamBuilderFor, type TlsClientOptions } from '../mqtt/streams.ts';
import { viewerClientId } from '../protocol/client-ids.ts';
import { decode, ProtocolError, Topics, type BridgeStatus } from '../protocol/index.ts';
import type { Timeline } from './observations.ts';

export interface ObserverOptions {
  url: string;
  user: string;
  password: string;
  deviceId: string;
  root: string;
  tls?: TlsClientOptions | undefined;
}

const random = () => Math.random().toString(36).slice(2, 10);

export class Observer {
  readonly topics: Topics;
  /** Bridge cards by ID, as last seen. */
  readonly bridges = new Map<string, BridgeStatus>();
  readonly #options: ObserverOptions;
  readonly #timeline: Timeline;
  #client: MqttClient | undefined;
  /** The device's retained status card as the first subscription delivered it (its state before the check). */
  initialCard: string | undefined;

  constructor(options: ObserverOptions, timeline: Timeline) {
    this.#options = options;
    this.#timeline = timeline;
    this.topics = new Topics(options.root);
  }

  /** Connects and subscribes; rejects when the login or a subscription is refused (not an admin). */
  async start(): Promise<void> {
    const client = await this.#connect();
    this.#client = client;
    const t = this.topics;
    const id = this.#options.deviceId;
    // A delivery with the retain flag is a retained message sent because we subscribed (the state before the check);
    // a live one is forwarded without it (MQTT-3.3.1-9).
    client.on('message', (topic, payload, packet) => this.#onMessage(topic, payload, packet.qos, packet.retain));
    const filters = [t.device(id, 'status'), t.device(id, 'up'), t.device(id, 'down'), t.device(id, 'metrics'), t.allBridges(), `$SYS/+/tali/device/${id}/+`, '$SYS/+/new/subscribes'];
    // mqtt.js rejects when any filter gets SUBACK 0x80 (MQTT-3.9.3): a viewer may not read a device's signaling.
    await client.subscribeAsync(filters, { qos: 1 }).catch((err: Error) => {
      throw new Error(`the broker refused the subscriptions (${err.message}): check-device needs an admin login`);
    });
  }

  /** The bridge card devices would use now (the newest online one). */
  get bridge(): BridgeStatus | undefined {
    return [...this.bridges.values()].filter((b) => b.state === 'online').sort((a, b) => b.ts - a.ts)[0];
  }

  /** The online bridge card (retained: it comes right after subscribing), or undefined after `ms`. */
  waitForBridge(ms: number): Promise<BridgeStatus | undefined> {
    if (this.bridge) return Promise.resolve(this.bridge);
    return new Promise((resolve) => {
      const timer = setTimeout(() => (this.#onBridge = undefined, resolve(undefined)), ms);
      this.#onBridge = () => {
        if (!this.bridge) return;
        clearTimeout(timer);
        this.#onBridge = undefined;
        resolve(this.bridge);
      };
    });
  }

  #onBridge: (() => void) | undefined;

  /**
   * What a new subscriber gets retained on `topic` now: proves a card was published with the retain flag. The same
   * filter subscribed again makes the broker send its retained message again without interrupting the flow
   * (MQTT-3.8.4-3), after the SUBACK and from its store: wait for one that `wanted` accepts, and give up after `ms`,
   * recording what did come (an older card, or nothing).
   */
  async readRetained(topic: string, wanted: (text: string) => boolean, ms = 2000): Promise<void> {
    const client = this.#client;
    if (client === undefined) return;
    const text = await new Promise<string | undefined>((resolve) => {
      let seen: string | undefined;
      const done = () => {
        clearTimeout(timer);
        this.#onRetained = undefined;
        resolve(seen);
      };
      const timer = setTimeout(done, ms);
      this.#onRetained = (t, payload) => {
        if (t !== topic) return;
        seen = payload;
        if (wanted(payload)) done();
      };
      client.subscribe(topic, { qos: 1 }, (err) => err && done());
    });
    this.#timeline.add({ kind: 'retained', topic, text });
  }

  #onRetained: ((topic: string, payload: string) => void) | undefined;

  async close(): Promise<void> {
    const client = this.#client;
    if (client === undefined) return;
    // A connection the broker already closed (a refused subscription may end it) is only torn down.
    if (client.connected) await client.endAsync().catch(() => {});
    else client.end(true);
  }

  /** Connects; a CONNACK 3 (the bridge is busy checking other logins: retry) is retried for up to 15 s. */
  async #connect(): Promise<MqttClient> {
    const o = this.#options;
    const deadline = Date.now() + 15_000;
    for (let attempt = 0; ; attempt++) {
      const client = createMqttClient({ target: streamBuilderFor(new URL(o.url), o.tls), clientId: viewerClientId(o.user, `check-${random()}`), username: o.user, password: o.password });
      try {
        await connackOf(client);
        // Later errors (a PUBACK mqtt.js writes after end(), a reset) end in 'close'; the check reads the timeline.
        client.on('error', () => {});
        return client;
      } catch (err) {
        client.end(true);
        if (connackCode(err as Error) !== 3 || Date.now() > deadline) throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2)));
    }
  }

  #onMessage(topic: string, payload: Buffer, qos: number, retained: boolean): void {
    const id = this.#options.deviceId;
    if (topic.startsWith('$SYS/')) return this.#onSys(topic, payload);
    const parsed = this.topics.parse(topic);
    if (parsed === undefined || payload.length === 0) return;
    if (parsed.kind === 'bridge') {
      try {
        const card = decode('bridge', payload);
        this.bridges.set(card.bridgeId, card);
        this.#onBridge?.();
      } catch {
        // not ours to judge
      }
      return;
    }
    if (parsed.id !== id) return;
    const text = payload.toString('utf8');
    if (parsed.channel === 'status' && retained) {
      // A retained card sent because we subscribed: the state before the check, or a re-read (readRetained).
      if (this.#onRetained) this.#onRetained(topic, text);
      else this.initialCard ??= text;
      return;
    }
    if (parsed.channel === 'status' || parsed.channel === 'up') {
      let message;
      let invalid;
      try {
        message = parsed.channel === 'status' ? decode('status', payload) : decode('up', payload, this.bridge?.maxMessageBytes);
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        invalid = { code: err.code, message: err.message };
      }
      this.#timeline.add({ kind: 'published', channel: parsed.channel, qos, text, bytes: payload.length, message, invalid });
    } else if (parsed.channel === 'down') {
      try {
        this.#timeline.add({ kind: 'down', message: decode('down', payload) });
      } catch {
        // the bridge's own message: not the device's to answer for
      }
    } else if (parsed.channel === 'metrics' && !retained) {
      try {
        this.#timeline.add({ kind: 'metrics', message: decode('metrics', payload) });
      } catch {
        // as above
      }
    }
  }

  #onSys(topic: string, payload: Buffer): void {
    const id = this.#options.deviceId;
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    if (topic.endsWith(`/tali/device/${id}/connected`)) this.#timeline.add({ kind: 'connected', event: body as DeviceConnected });
    else if (topic.endsWith(`/tali/device/${id}/disconnected`)) this.#timeline.add({ kind: 'disconnected', event: body as DeviceDisconnected });
    else if (topic.endsWith('/new/subscribes')) {
      const { clientId, subs } = body as { clientId?: string; subs?: { topic: string; qos: number }[] };
      if (clientId === id && Array.isArray(subs)) this.#timeline.add({ kind: 'subscribed', filters: subs.map((s) => ({ topic: s.topic, qos: s.qos })) });
    }
  }
}
