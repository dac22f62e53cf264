/**
 * The embedded broker's memory persistence (aedes-persistence, with ./retained-index.ts) written through to a
 * StateDb (./state-db.ts), and filled from it at start. Memory stays what Aedes reads (a SUBSCRIBE walks the
 * retained index, a publish matches the subscription trie); the file gets every change as it happens, in the same
 * call, so what Aedes acknowledged is on disk before the PUBACK goes out.
 *
 * What is kept: retained messages; for stored sessions (CleanSession 0) their subscriptions and queued packets (and,
 * through StoredSessions' journal, who owns each session and when its client left). Not kept: QoS 2 incoming state
 * and wills (a restarted node's devices are not connected; ./restored-cards.ts marks their cards offline instead).
 *
 * Wrapped in place, like ./retained-index.ts and ./stored-sessions.ts: after indexRetained, before StoredSessions
 * (which then holds its bounds over these methods, so nothing past a limit is written either).
 */
import type { SubscriptionRow, QueuedRow, StateDb } from './state-db.ts';

interface ClientRef {
  id: string;
}

interface Packet {
  cmd?: string;
  topic?: string;
  payload?: Buffer;
  qos?: number;
  retain?: boolean;
  dup?: boolean;
  brokerId?: string;
  brokerCounter?: number;
  messageId?: number | null;
}

type Sub = { topic: string; qos: number; rh?: number; rap?: boolean; nl?: boolean };

/** The methods of Aedes' persistence interface (aedes-persistence 11, promise style) that change what is kept. */
export interface WritablePersistence {
  storeRetained(packet: { topic: string; payload: Buffer; qos?: number }, cb?: (err: Error | null) => void): Promise<void> | void;
  addSubscriptions(client: ClientRef, subs: Sub[]): Promise<unknown>;
  removeSubscriptions(client: ClientRef, topics: string[]): Promise<unknown>;
  cleanSubscriptions(client: ClientRef): Promise<unknown>;
  outgoingEnqueue(sub: { clientId: string }, packet: Packet): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: Packet): Promise<void>;
  outgoingUpdate(client: ClientRef, packet: Packet): Promise<unknown>;
  outgoingClearMessageId(client: ClientRef, packet: { messageId?: number | null }): Promise<Packet | undefined>;
}

/** What was read back: each session's queue size, for StoredSessions' bounds. */
export interface Restored {
  retained: number;
  subscriptions: number;
  queued: Map<string, { messages: number; bytes: number }>;
}

/**
 * Fills `persistence` from `db` (through its own methods, before they are wrapped: nothing is written back), then
 * wraps them so that every later change is written to `db` too. `brokerId` names the restored queued packets.
 */
export async function persistTo(persistence: WritablePersistence, db: StateDb, brokerId: string): Promise<Restored> {
  const p = persistence;
  const retained = db.retained();
  for (const row of retained) await p.storeRetained({ topic: row.topic, payload: row.payload, qos: row.qos, retain: true, cmd: 'publish' } as Parameters<typeof p.storeRetained>[0]);
  const subs = db.subscriptions();
  for (const [clientId, rows] of groupBy(subs, (s) => s.clientId)) await p.addSubscriptions({ id: clientId }, rows.map(toSub));
  const queued = new Map<string, { messages: number; bytes: number }>();
  for (const row of db.queued(`${brokerId}~restored`)) {
    const { clientId, ...packet } = row;
    await p.outgoingEnqueue({ clientId }, packet);
    // The memory store copies a packet without its message ID (aedes-packet): a packet sent before keeps it.
    if (row.messageId !== undefined) await p.outgoingUpdate({ id: clientId }, packet);
    const count = queued.get(clientId) ?? { messages: 0, bytes: 0 };
    if (row.cmd === 'publish') {
      count.messages++;
      count.bytes += row.payload?.length ?? 0;
    }
    queued.set(clientId, count);
  }

  const storeRetained = p.storeRetained.bind(p);
  p.storeRetained = (packet, cb) => {
    db.storeRetained(packet.topic, packet.payload, packet.qos ?? 0);
    return storeRetained(packet, cb);
  };
  const addSubscriptions = p.addSubscriptions.bind(p);
  p.addSubscriptions = async (client, list) => {
    const result = await addSubscriptions(client, list);
    db.addSubscriptions(client.id, list);
    return result;
  };
  const removeSubscriptions = p.removeSubscriptions.bind(p);
  p.removeSubscriptions = async (client, topics) => {
    const result = await removeSubscriptions(client, topics);
    db.removeSubscriptions(client.id, topics);
    return result;
  };
  const cleanSubscriptions = p.cleanSubscriptions.bind(p);
  p.cleanSubscriptions = async (client) => {
    const result = await cleanSubscriptions(client);
    db.cleanSubscriptions(client.id);
    return result;
  };
  const outgoingEnqueueCombi = p.outgoingEnqueueCombi.bind(p);
  p.outgoingEnqueueCombi = async (list, packet) => {
    await outgoingEnqueueCombi(list, packet);
    db.enqueue(list.map((s) => s.clientId), queuedRow(packet));
  };
  p.outgoingEnqueue = (sub, packet) => p.outgoingEnqueueCombi([sub], packet);
  const outgoingUpdate = p.outgoingUpdate.bind(p);
  p.outgoingUpdate = async (client, packet) => {
    const result = await outgoingUpdate(client, packet); // throws "no such packet" when it holds none: nothing to write
    db.updateQueued(client.id, queuedRow(packet));
    return result;
  };
  const outgoingClearMessageId = p.outgoingClearMessageId.bind(p);
  p.outgoingClearMessageId = async (client, packet) => {
    const removed = await outgoingClearMessageId(client, packet);
    if (removed !== undefined && typeof packet.messageId === 'number') db.clearQueued(client.id, packet.messageId);
    return removed;
  };
  return { retained: retained.length, subscriptions: subs.length, queued };
}

function queuedRow(packet: Packet): Omit<QueuedRow, 'clientId'> {
  return {
    cmd: packet.cmd ?? 'publish',
    ...(packet.topic !== undefined && { topic: packet.topic }),
    ...(packet.payload !== undefined && { payload: packet.payload }),
    qos: packet.qos ?? 0,
    retain: packet.retain ?? false,
    dup: packet.dup ?? false,
    ...(packet.brokerId !== undefined && { brokerId: packet.brokerId }),
    ...(packet.brokerCounter !== undefined && { brokerCounter: packet.brokerCounter }),
    ...(typeof packet.messageId === 'number' && { messageId: packet.messageId }),
  };
}

function toSub(row: SubscriptionRow): Sub {
  const { clientId: _, ...sub } = row;
  return sub;
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}
