/**
 * Protocol v1 spoken on behalf of one libpeer device: what a DeviceClient is for a native camera (typed messages on
 * the device's up and down topics, numbered and de-duplicated), over the adapter's one MQTT client instead of the
 * device's own connection. SessionKeeper drives it with a LibpeerPeer, so from the down topic on nothing differs from
 * a native device.
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { DeviceClientEvents, UpBody } from '../../../devices/sdk/device-client.ts';
import type { SessionLink } from '../../../devices/sdk/session-keeper.ts';
import { TypedEmitter } from '../../client/emitter.ts';
import { decode, encode } from '../../protocol/codec.ts';
import { ProtocolError } from '../../protocol/errors.ts';
import type { BridgeStatus, MessageOnChannel } from '../../protocol/messages.ts';
import { DuplicateFilter, SequenceCounter } from '../../protocol/sequence.ts';
import { PROTOCOL_VERSION, type Topics } from '../../protocol/topics.ts';

export interface DeviceLinkOptions {
  deviceId: string;
  client: MqttClient;
  topics: Topics;
  /** The bridge cards the adapter has seen, shared by every link. */
  bridges: ReadonlyMap<string, BridgeStatus>;
  /** Largest up payload the bridge accepts (maxMessageBytes). */
  maxMessageBytes: number;
  log: Logger;
}

export class DeviceLink extends TypedEmitter<DeviceClientEvents> implements SessionLink {
  readonly deviceId: string;
  readonly #options: DeviceLinkOptions;
  readonly #outgoing = new SequenceCounter();
  readonly #seen = new DuplicateFilter({ sessions: 16 });
  #connected = false;

  constructor(options: DeviceLinkOptions) {
    super();
    this.deviceId = options.deviceId;
    this.#options = options;
  }

  /** The libpeer device is subscribed to its invoke topic: it can be called. */
  get connected(): boolean {
    return this.#connected;
  }

  get bridges(): ReadonlyMap<string, BridgeStatus> {
    return this.#options.bridges;
  }

  get onlineBridge(): BridgeStatus | undefined {
    let newest: BridgeStatus | undefined;
    for (const card of this.#options.bridges.values()) {
      if (card.state === 'online' && (newest === undefined || card.ts > newest.ts)) newest = card;
    }
    return newest;
  }

  setConnected(connected: boolean): void {
    if (this.#connected === connected) return;
    this.#connected = connected;
    if (connected) this.emit('connected', { reconnect: false });
    else this.emit('disconnected', undefined);
  }

  /** A bridge card arrived (the adapter reads them once for every device). */
  bridgeCard(card: BridgeStatus): void {
    this.emit('bridge', card);
  }

  /** Numbers, stamps and checks (as the bridge will) one message of `sessionId`; resolves at PUBACK. */
  async send(sessionId: string, body: UpBody): Promise<void> {
    if (!this.#connected) throw new Error('the libpeer device is not connected');
    const message = { v: PROTOCOL_VERSION, ...body, sessionId, seq: this.#outgoing.next(sessionId), ts: Date.now() };
    const payload = encode(message as MessageOnChannel<'up'>);
    decode('up', payload, this.#options.maxMessageBytes);
    await this.#options.client.publishAsync(this.#options.topics.device(this.deviceId, 'up'), payload, { qos: 1 });
  }

  forgetSession(sessionId: string): void {
    this.#outgoing.forget(sessionId);
    this.#seen.forget(sessionId);
  }

  /** A payload from the device's down topic. */
  down(payload: Uint8Array): void {
    let message: MessageOnChannel<'down'>;
    try {
      message = decode('down', payload);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.#options.log.warn({ code: err.code, err: err.message }, 'unreadable message on the down topic');
      return;
    }
    if ('sessionId' in message && message.sessionId !== undefined && message.seq !== undefined) {
      if (!this.#seen.accept(message.sessionId, message.seq)) return; // MQTT-4.3.2: QoS 1 may deliver twice
    }
    switch (message.type) {
      case 'answer':
        return this.emit('answer', message);
      case 'candidate':
        return this.emit('candidate', message);
      case 'bye':
        return this.emit('bye', message);
      case 'start':
        return this.emit('start', message);
      case 'error':
        return this.emit('error', message);
      case 'ice-servers':
        return; // libpeer gathers with the servers built into its firmware: there is no call to hand them to
    }
  }
}
