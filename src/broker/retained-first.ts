/**
 * Retained messages first: the retained messages a new subscription gets (MQTT-3.3.1-6, sent with RETAIN 1,
 * MQTT-3.3.1-8) reach the client before any live message (RETAIN 0, MQTT-3.3.1-9) on the topics that subscription
 * covers, so the last card a subscriber gets for a topic is the topic's newest.
 *
 * Aedes installs the subscription, sends SUBACK, then pipes a stream of the retained messages into the client
 * (lib/handlers/subscribe.js completeSubscribe). The stream is read ahead into a writable buffer (up to 32 messages
 * copied as they were then) and each message is sent after the previous one was written, while a live message goes
 * out at once. A card published meanwhile overtook the older retained one: the subscriber got the device's `online`
 * card, then the kept `offline` card a restarted bridge had republished (measured in test/broker/retained-first.test.ts,
 * 20 kept cards: the live card arrived before its kept one every run). MQTT 3.1.1 orders messages per topic only from
 * one publisher (MQTT-4.6.0-5); nothing in it lets an older retained message follow a newer live one on the same
 * topic, and receivers (SDK, dashboard, the relay's device presence) take the last card as the state.
 *
 * How: every retained stream ends with a marker (a topic no client can use: U+0000 is not allowed in a topic,
 * MQTT-1.5.3-2) that travels the same path as the retained messages into the client's delivery function. From the
 * SUBSCRIBE (Aedes' 'subscribe' event, emitted right before the stream is created) until its marker arrives, live
 * messages on topics its granted filters cover are held; then they go out in the order they came. Others pass.
 *
 * Held messages are bytes waiting for the client like those in its socket buffer, and share their bound
 * (maxClientBufferBytes, ./guarded-connection.ts): a window kept open (a slow retained read, SUBSCRIBEs back to back)
 * cannot hold more; past it the client is closed as too slow and what it held is dropped.
 */
import type { AedesPublishPacket, Client } from 'aedes';
import { Readable } from 'node:stream';
import { covers } from '../security/access.ts';

const SENT = '\u0000retained-sent';

type Deliver = (packet: AedesPublishPacket, cb: () => void) => void;

/** The persistence method Aedes reads a SUBSCRIBE's retained messages from (aedes-persistence 11). */
interface RetainedSource {
  createRetainedStreamCombi(patterns: string[]): Readable;
}

/** Ends each retained stream with the marker, also one that failed (the error is passed on after it). */
export function markRetainedEnd(persistence: RetainedSource): void {
  const create = persistence.createRetainedStreamCombi.bind(persistence);
  persistence.createRetainedStreamCombi = (patterns) => Readable.from(withMarker(create(patterns)));
}

async function* withMarker(retained: Readable): AsyncGenerator<unknown> {
  let failure: unknown;
  try {
    for await (const packet of retained) yield packet;
  } catch (err) {
    failure = err;
  }
  yield { cmd: 'publish', topic: SENT, payload: Buffer.alloc(0), qos: 0, retain: true };
  if (failure !== undefined) throw failure;
}

const windows = new WeakMap<Client, RetainedWindow>();

export interface HoldLimit {
  /** Bytes (topics and payloads) a client's window may hold. */
  maxHeldBytes: number;
  /** The window went past maxHeldBytes: the client is to be closed (its held messages are dropped already). */
  onOverflow(client: Client, heldBytes: number): void;
}

/**
 * Wraps the client's two delivery functions. Install it after ./deliver-once.ts (outermost): a held message is
 * counted there when it is released, not when it was held.
 */
export function retainedFirst(client: Client, limit: HoldLimit): void {
  windows.set(client, new RetainedWindow(client, limit));
}

/** A SUBSCRIBE of `client` granted `filters` (Aedes' 'subscribe' event): its retained stream starts now. */
export function subscribed(client: Client, filters: string[]): void {
  if (filters.length > 0) windows.get(client)?.open(filters);
}

class RetainedWindow {
  /** Retained streams on their way (one per SUBSCRIBE with a granted filter). */
  #open = 0;
  #filters = new Set<string>();
  #held: { deliver: Deliver; packet: AedesPublishPacket }[] = [];
  #heldBytes = 0;
  /** Over its limit: nothing more is held or passed, the client is closing. */
  #overflowed = false;
  readonly #client: Client;
  readonly #limit: HoldLimit;
  /** Aedes' deliverQoS passes a QoS 0 packet to the client's deliver0 (this wrapper again): let it through. */
  #inside = false;

  constructor(client: Client, limit: HoldLimit) {
    this.#client = client;
    this.#limit = limit;
    const c = client as unknown as { deliver0: Deliver; deliverQoS: Deliver };
    for (const kind of ['deliver0', 'deliverQoS'] as const) {
      const deliver = c[kind];
      c[kind] = (packet, cb) => this.#deliver(deliver, packet, cb);
    }
  }

  open(filters: string[]): void {
    this.#open++;
    for (const filter of filters) this.#filters.add(filter);
  }

  #deliver(deliver: Deliver, packet: AedesPublishPacket, cb: () => void): void {
    if (this.#inside) return deliver(packet, cb);
    if (packet.topic === SENT) {
      if (--this.#open === 0) this.#release();
      return void setImmediate(cb);
    }
    // A retained message sent on SUBSCRIBE has no brokerId (subscribe.js sendRetained); a live one has its node's.
    const live = Boolean((packet as unknown as { brokerId?: string | null }).brokerId);
    if (this.#overflowed) return void setImmediate(cb);
    if (live && this.#open > 0 && this.#covered(packet.topic)) {
      this.#held.push({ deliver, packet });
      this.#heldBytes += Buffer.byteLength(packet.topic) + packet.payload.length;
      if (this.#heldBytes > this.#limit.maxHeldBytes) this.#overflow();
      return void setImmediate(cb); // the publisher's flow does not wait on this client's retained messages
    }
    this.#pass(deliver, packet, cb);
  }

  #covered(topic: string): boolean {
    for (const filter of this.#filters) if (covers(filter, topic)) return true;
    return false;
  }

  #overflow(): void {
    const heldBytes = this.#heldBytes;
    this.#overflowed = true;
    this.#held = [];
    this.#heldBytes = 0;
    this.#limit.onOverflow(this.#client, heldBytes);
  }

  #release(): void {
    const held = this.#held;
    this.#filters = new Set();
    this.#held = [];
    this.#heldBytes = 0;
    for (const { deliver, packet } of held) this.#pass(deliver, packet, noop);
  }

  #pass(deliver: Deliver, packet: AedesPublishPacket, cb: () => void): void {
    this.#inside = true;
    try {
      deliver(packet, cb);
    } finally {
      this.#inside = false;
    }
  }
}

function noop(): void {}
