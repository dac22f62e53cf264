/**
 * Device connection events for admins, on `$SYS` (which only admins and the bridge may read: src/security/access.ts):
 *
 *   $SYS/{brokerId}/tali/device/{deviceId}/connected      {"clientId","keepalive","clean","will":{topic,qos,retain,payload}|null,"ts"}
 *   $SYS/{brokerId}/tali/device/{deviceId}/disconnected   {"clientId","reason","willPublished","ts"}
 *
 * What no subscriber can see on a device's own topics: its CONNECT (keep alive, clean session, the last will it set)
 * and how its connection ended: `disconnect` (a DISCONNECT packet: MQTT-3.14.4-3, the will is discarded),
 * `keepalive` (silent for 1.5 × keep alive, MQTT-3.1.2-24), `closed-by-bridge` (a denied publish, the identity
 * removed, an admin's request), or `lost` (the socket closed or failed). `tali check-device` reads them; EMQX
 * publishes the like under `$SYS/brokers/{node}/clients/{clientid}/`. Always on, for devices only: two small
 * internal publishes per device connection, as Aedes' own `$SYS/{id}/new/clients` and `disconnect/clients` are.
 * Order, as a subscriber sees it: `connected` comes before anything the device sends (Aedes holds a connection's
 * packets until its CONNACK is out), and Aedes' `$SYS/{id}/new/subscribes` before anything the device sends after
 * its SUBACK. `disconnected` is routed at once, while a retained message (a last card, the will) is routed only
 * after the broker has stored it: they may arrive in either order, and `willPublished` says whether to expect one.
 */
import type { Aedes, Client } from 'aedes';
import type { Identity } from '../security/identity.ts';

export type DisconnectReason = 'disconnect' | 'keepalive' | 'closed-by-bridge' | 'lost';

export interface DeviceConnected {
  clientId: string;
  /** Seconds; 0 when the device turned keep alive off. */
  keepalive: number;
  clean: boolean;
  will: { topic: string; qos: number; retain: boolean; payload: string } | null;
  ts: number;
}

export interface DeviceDisconnected {
  clientId: string;
  reason: DisconnectReason;
  willPublished: boolean;
  ts: number;
}

export function connectionEventTopic(brokerId: string, deviceId: string, event: 'connected' | 'disconnected'): string {
  return `$SYS/${brokerId}/tali/device/${deviceId}/${event}`;
}

/** Aedes' client fields these events read (set by its CONNECT and DISCONNECT handlers, not in its types). */
interface AedesClientState {
  clean?: boolean;
  will?: { topic: string; payload: Buffer; qos: number; retain: boolean } | null;
  /** keepalive × 1500 + 1 ms, set when keep alive is on (MQTT-3.1.2-24). */
  _keepaliveInterval?: number;
  /** A DISCONNECT packet arrived. */
  _disconnected?: boolean;
}

export class ConnectionEvents {
  readonly #aedes: Aedes;
  readonly #identityOf: (client: Client) => Identity | undefined;
  /** Devices' clients that connected, and whether they set a will. */
  readonly #willSet = new WeakMap<Client, boolean>();
  readonly #closedBy = new WeakMap<Client, DisconnectReason>();
  readonly #brokerId: string;
  #counter = 0;

  constructor(aedes: Aedes, identityOf: (client: Client) => Identity | undefined) {
    this.#aedes = aedes;
    this.#identityOf = identityOf;
    this.#brokerId = `${aedes.id}/connection-events`;
    aedes.on('clientReady', (client) => this.#connected(client));
    aedes.on('keepaliveTimeout', (client) => this.closing(client, 'keepalive'));
    aedes.on('clientDisconnect', (client) => this.#disconnected(client));
  }

  /** The bridge is about to close this client's connection (or Aedes, for its keep alive). The first reason wins. */
  closing(client: Client, reason: DisconnectReason): void {
    if (!this.#closedBy.has(client)) this.#closedBy.set(client, reason);
  }

  #connected(client: Client): void {
    const identity = this.#identityOf(client);
    if (identity?.role !== 'device') return;
    const state = client as unknown as AedesClientState;
    const will = state.will ?? null;
    this.#willSet.set(client, will !== null);
    const event: DeviceConnected = {
      clientId: client.id,
      keepalive: state._keepaliveInterval === undefined ? 0 : Math.round((state._keepaliveInterval - 1) / 1500),
      clean: state.clean === true,
      will: will && { topic: will.topic, qos: will.qos, retain: will.retain, payload: Buffer.from(will.payload).toString('utf8') },
      ts: Date.now(),
    };
    this.#publish(connectionEventTopic(this.#aedes.id, identity.id, 'connected'), event);
  }

  #disconnected(client: Client): void {
    const willSet = this.#willSet.get(client);
    const identity = this.#identityOf(client);
    if (willSet === undefined || identity === undefined) return;
    const clean = (client as unknown as AedesClientState)._disconnected === true;
    const reason: DisconnectReason = clean ? 'disconnect' : (this.#closedBy.get(client) ?? 'lost');
    // MQTT-3.1.2-8: the will is published unless the connection ended with a DISCONNECT.
    const event: DeviceDisconnected = { clientId: client.id, reason, willPublished: willSet && !clean, ts: Date.now() };
    this.#publish(connectionEventTopic(this.#aedes.id, identity.id, 'disconnected'), event);
  }

  /**
   * Straight onto Aedes' emitter, under a broker ID of its own. Aedes drops, for each subscriber, a packet whose
   * counter is below the last one delivered from the same broker ID (its cluster dedupe, lib/client.js `dedupe`),
   * and a retained publish (the will) is routed only after it is stored: an event counted on the node's own ID and
   * routed first would make an admin reading both lose the will (seen in test/broker/connection-events.test.ts).
   * With their own ID and counter, these events never shadow another packet.
   */
  #publish(topic: string, body: DeviceConnected | DeviceDisconnected): void {
    const mq = (this.#aedes as unknown as { mq: { emit(packet: object, cb: () => void): void } }).mq;
    const packet = { cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(body)), qos: 0, retain: false, dup: false };
    mq.emit({ ...packet, brokerId: this.#brokerId, brokerCounter: ++this.#counter }, () => {});
  }

}
