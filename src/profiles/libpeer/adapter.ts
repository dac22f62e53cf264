/**
 * The libpeer profile's edge adapter. libpeer devices (github.com/sepfy/libpeer) signal with JSON-RPC on
 * `<prefix>/<id>/invoke|result` and publish no status card; the adapter turns that into protocol v1 on the device's
 * native topics, through its own in-process MQTT client, so the answerer, relay, recorder, metrics and dashboard see
 * a native device (src/profiles/libpeer/*: nothing past this folder knows the profile).
 *
 *   broker events (embedded broker)          adapter, per device                         bridge (v1 topics)
 *   SUBSCRIBE <prefix>/<id>/invoke ───────► LibpeerDevice: DeviceLink + SessionKeeper ──► status online, offer, bye, …
 *   connection ends ──────────────────────► (closed)                                  ──► status offline
 *   <prefix>/<id>/result ─────────────────► RpcChannel → LibpeerPeer                  ◄── answer, bye, start (down)
 *                                            │
 *   <prefix>/<id>/invoke ◄─────────────────── offer · answer · state · close
 *
 * A libpeer device keeps one connection: its client ID is its device ID. A second one takes the first over
 * (MQTT-3.1.4-2), and its SUBSCRIBE starts over: the keeper sees a reconnect and offers again. What happens to one
 * device (online, reconnect, offline) runs in the order the broker reported it, one step after the other, so a card
 * is never published out of turn.
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { SessionKeeper } from '../../../devices/sdk/session-keeper.ts';
import { endWithin } from '../../answerer/answerer.ts';
import { byteLength, decode } from '../../protocol/codec.ts';
import { ProtocolError } from '../../protocol/errors.ts';
import type { BridgeStatus } from '../../protocol/messages.ts';
import type { LibpeerTopics, Topics } from '../../protocol/topics.ts';
import { libpeerCard } from './card.ts';
import { DeviceLink } from './device-link.ts';
import { decodeResponse, RpcDecodeError } from './json-rpc.ts';
import { LibpeerPeer } from './libpeer-peer.ts';
import { RpcChannel } from './rpc-channel.ts';

/** libpeer's CONFIG_MQTT_BUFFER_SIZE: coreMQTT receives a whole packet into it and drops a larger one. */
export const LIBPEER_MQTT_BUFFER = 4096;

export interface LibpeerAdapterOptions {
  connect: () => Promise<MqttClient>;
  topics: Topics;
  libpeer: LibpeerTopics;
  /** Largest payload taken from a device (maxMessageBytes): libpeer's offer SDP is at most 8 KB. */
  maxMessageBytes: number;
  logger: Logger;
}

interface LibpeerDevice {
  readonly prefix: string;
  readonly link: DeviceLink;
  readonly rpc: RpcChannel;
  readonly keeper: SessionKeeper;
}

export class LibpeerAdapter {
  readonly #options: LibpeerAdapterOptions;
  readonly #log: Logger;
  /** Connections per libpeer device ID (a takeover briefly makes two). */
  readonly #connections = new Map<string, number>();
  readonly #devices = new Map<string, LibpeerDevice>();
  readonly #bridges = new Map<string, BridgeStatus>();
  /** Per device, the end of its chain of steps (online, reconnect, offline). */
  readonly #steps = new Map<string, Promise<void>>();
  /** SUBSCRIBEs seen before start() connected the adapter's client, played then. */
  readonly #early = new Map<string, readonly string[]>();
  #client: MqttClient | undefined;
  #closed = false;

  constructor(options: LibpeerAdapterOptions) {
    this.#options = options;
    this.#log = options.logger;
  }

  async start(): Promise<void> {
    const client = await this.#options.connect();
    this.#client = client;
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    const filters = [...this.#options.libpeer.allDevices('result'), this.#options.topics.allBridges()];
    await client.subscribeAsync(filters, { qos: 0 });
    for (const [deviceId, subscribed] of this.#early) this.subscribed(deviceId, subscribed);
    this.#early.clear();
  }

  /** The libpeer devices the adapter speaks for now (subscribed to their invoke topic). */
  get devices(): string[] {
    return [...this.#devices.keys()];
  }

  /** A connection of libpeer device `deviceId` was admitted. */
  connected(deviceId: string): void {
    this.#connections.set(deviceId, (this.#connections.get(deviceId) ?? 0) + 1);
  }

  /** A connection of libpeer device `deviceId` ended; with the last one the device goes offline. */
  disconnected(deviceId: string): void {
    const left = (this.#connections.get(deviceId) ?? 1) - 1;
    if (left > 0) {
      this.#connections.set(deviceId, left);
      return;
    }
    this.#connections.delete(deviceId);
    this.#early.delete(deviceId);
    this.#step(deviceId, () => this.#goOffline(deviceId));
  }

  /** A libpeer device subscribed: to its invoke topic, it is online and can be called. */
  subscribed(deviceId: string, filters: readonly string[]): void {
    const invoke = filters.map((f) => this.#options.libpeer.parse(f)).find((t) => t?.channel === 'invoke' && t.id === deviceId);
    if (invoke === undefined || this.#closed) return;
    const client = this.#client;
    if (client === undefined) {
      this.#early.set(deviceId, filters);
      return;
    }
    this.#step(deviceId, async () => {
      if (this.#closed || !this.#connections.has(deviceId)) return; // closing, or its connection ended meanwhile
      const known = this.#devices.get(deviceId);
      if (known !== undefined && known.prefix === invoke.prefix) {
        // A new connection of the same device (it rebooted, or reconnected): its previous call is gone.
        known.link.setConnected(false);
        await this.#publishCard(deviceId, 'online');
        known.link.setConnected(true);
        return;
      }
      if (known !== undefined) await this.#goOffline(deviceId);
      await this.#goOnline(deviceId, invoke.prefix, client);
    });
  }

  /** Ends every call (libpeer gets `close`; the bridge sees the device's card go offline) and disconnects. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#devices.keys()].map((id) => this.#step(id, () => this.#goOffline(id))));
    if (this.#client) await endWithin(this.#client, 1000);
  }

  /** Runs `work` after the device's previous steps; a failed step is logged and does not stop the next ones. */
  #step(deviceId: string, work: () => Promise<void>): Promise<void> {
    const next = (this.#steps.get(deviceId) ?? Promise.resolve())
      .then(work)
      .catch((err: Error) => this.#log.error({ deviceId, err: err.message }, 'libpeer device step failed'));
    this.#steps.set(deviceId, next);
    void next.then(() => this.#steps.get(deviceId) === next && this.#steps.delete(deviceId));
    return next;
  }

  async #goOnline(deviceId: string, prefix: string, client: MqttClient): Promise<void> {
    const { topics, libpeer, maxMessageBytes } = this.#options;
    const log = this.#log.child({ deviceId, profile: 'libpeer' });
    const invoke = libpeer.topic(prefix, deviceId, 'invoke');
    const rpc = new RpcChannel(
      (payload) => client.publish(invoke, payload, { qos: 0 }),
      (payload) => packetBytes(invoke, payload) <= LIBPEER_MQTT_BUFFER,
    );
    const link = new DeviceLink({ deviceId, client, topics, bridges: this.#bridges, maxMessageBytes, log });
    const keeper = new SessionKeeper({ client: link, createPeer: () => new LibpeerPeer(rpc, log) });
    const device: LibpeerDevice = { prefix, link, rpc, keeper };
    keeper.on('session-closed', (info) => log.info({ sessionId: info.sessionId, reason: info.closeReason }, 'libpeer call ended'));
    // Protocol §3: subscribed to down before the online card, so a `start` answering the card cannot be lost.
    try {
      await client.subscribeAsync(topics.device(deviceId, 'down'), { qos: 1 });
    } catch (err) {
      rpc.close();
      throw err; // the adapter's client is reconnecting: the device is taken at its next SUBSCRIBE
    }
    this.#devices.set(deviceId, device);
    await this.#publishCard(deviceId, 'online');
    log.info({ prefix }, 'libpeer device online');
    keeper.start();
    link.setConnected(true);
  }

  async #goOffline(deviceId: string): Promise<void> {
    const device = this.#devices.get(deviceId);
    if (device === undefined) return;
    this.#devices.delete(deviceId);
    device.link.setConnected(false);
    await device.keeper.stop();
    device.rpc.close();
    device.link.removeAllListeners();
    this.#client?.unsubscribe(this.#options.topics.device(deviceId, 'down'));
    await this.#publishCard(deviceId, 'offline');
    this.#log.info({ deviceId, profile: 'libpeer' }, 'libpeer device offline');
  }

  #publishCard(deviceId: string, state: 'online' | 'offline'): Promise<void> {
    const client = this.#client;
    if (client === undefined) return Promise.resolve();
    return client
      .publishAsync(this.#options.topics.device(deviceId, 'status'), libpeerCard(state), { qos: 1, retain: true })
      .then(() => {}, (err: Error) => this.#log.warn({ deviceId, err: err.message }, 'status card not published'));
  }

  #onMessage(topic: string, payload: Buffer): void {
    const result = this.#options.libpeer.parse(topic);
    if (result?.channel === 'result') return this.#onResult(result.id, payload);
    const parsed = this.#options.topics.parse(topic);
    if (parsed?.kind === 'bridge') return this.#onBridgeCard(parsed.id, payload);
    if (parsed?.kind === 'device' && parsed.channel === 'down') this.#devices.get(parsed.id)?.link.down(payload);
  }

  #onResult(deviceId: string, payload: Buffer): void {
    const device = this.#devices.get(deviceId);
    if (device === undefined) return;
    try {
      const response = decodeResponse(payload, this.#options.maxMessageBytes);
      if (!device.rpc.deliver(response)) this.#log.debug({ deviceId, id: response.id }, 'libpeer response nobody waits for');
    } catch (err) {
      if (!(err instanceof RpcDecodeError)) throw err;
      this.#log.warn({ deviceId, err: err.message }, 'unreadable libpeer response');
    }
  }

  #onBridgeCard(bridgeId: string, payload: Buffer): void {
    if (payload.length === 0) {
      this.#bridges.delete(bridgeId); // a cleared retained card (MQTT-3.3.1-10)
      return;
    }
    let card: BridgeStatus;
    try {
      card = decode('bridge', payload);
    } catch (err) {
      if (err instanceof ProtocolError) return;
      throw err;
    }
    this.#bridges.set(bridgeId, card);
    for (const device of this.#devices.values()) device.link.bridgeCard(card);
  }
}

/** Bytes of a QoS 0 PUBLISH packet (MQTT-3.3): fixed header, topic length and topic, payload. */
export function packetBytes(topic: string, payload: string): number {
  const remaining = 2 + byteLength(topic) + byteLength(payload);
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  return 1 + lengthBytes + remaining;
}
