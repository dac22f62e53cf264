/**
 * Cards kept from the last run (./state-db.ts), told as they are now, before any client connects: no device is
 * connected to a node that just started, so every device card reads `offline`, with `lastSeen` (docs/protocol.md
 * §5.7): for a card that said online, when the last run was last known alive (its end, or its last heartbeat before
 * a crash); for an offline card (its will), when that was stored. A device that comes back publishes its online card
 * on connecting (§3), which replaces this one. This node's own bridge card reads `offline` too until the bridge
 * publishes its online card (a device must not offer to a bridge that is not listening yet).
 *
 * The cards of devices no longer registered are cleared (with their metrics): a removed identity's card is not kept
 * and served forever. `removedDeviceCards` does the same while the node runs, when an identity is removed. With
 * allowAnonymous every device ID may connect, so nothing is cleared.
 */
import { decode, encode } from '../protocol/codec.ts';
import type { Topics } from '../protocol/topics.ts';
import type { Identity } from '../security/identity.ts';
import type { Disconnector } from '../security/revocation.ts';
import type { Broker } from './broker.ts';
import type { RetainedRow } from './state-db.ts';

export interface RestoredCardsOptions {
  topics: Topics;
  /** This node's bridge ID (its own card). */
  bridgeId: string;
  /** Whether a device ID is (still) registered; undefined: every ID may connect (allowAnonymous). */
  isRegistered: ((deviceId: string) => boolean) | undefined;
}

/** Rewrites the restored cards as above; resolves with what it changed. */
export async function reviseRestoredCards(broker: Broker, options: RestoredCardsOptions): Promise<{ offline: number; cleared: number }> {
  const state = broker.state;
  if (state === undefined) return { offline: 0, cleared: 0 };
  const { topics } = options;
  const publish = (topic: string, payload: string) => broker.publish({ topic, payload, qos: 1, retain: true });
  let offline = 0;
  let cleared = 0;
  for (const row of state.retained()) {
    const parsed = topics.parse(row.topic);
    if (parsed?.kind === 'bridge' && parsed.id === options.bridgeId) {
      const card = tryDecode(() => decode('bridge', row.payload));
      if (card?.type === 'bridge-status' && card.state === 'online') await publish(row.topic, encode({ ...card, state: 'offline' }));
      continue;
    }
    const device = deviceCard(row, topics);
    if (device === undefined) continue;
    if (options.isRegistered !== undefined && !options.isRegistered(device.id)) {
      await clear(broker, row.topic);
      cleared++;
      continue;
    }
    if (device.channel !== 'status') continue;
    const card = tryDecode(() => decode('status', row.payload));
    if (card?.type !== 'status' || (card.state === 'offline' && card.lastSeen !== undefined)) continue;
    const lastSeen = card.state === 'online' ? (state.previousAliveAt ?? row.storedAt) : row.storedAt;
    await publish(row.topic, encode({ ...card, state: 'offline', lastSeen }));
    offline++;
  }
  return { offline, cleared };
}

/**
 * For the RevocationWatcher (src/security/revocation.ts), which asks each of its targets to drop what belongs to
 * identities no longer valid: clears the kept cards and metrics of removed devices. Counts what it cleared.
 */
export function removedDeviceCards(broker: Broker, topics: Topics): Disconnector {
  return {
    disconnectWhere(predicate: (identity: Identity, clientId: string) => boolean): number {
      let cleared = 0;
      for (const row of broker.state?.retained() ?? []) {
        const device = deviceCard(row, topics);
        if (device === undefined || !predicate({ role: 'device', id: device.id }, device.id)) continue;
        void clear(broker, row.topic).catch(() => {});
        cleared++;
      }
      return cleared;
    },
  };
}

/** The device a kept status card or metrics message belongs to. */
function deviceCard(row: RetainedRow, topics: Topics): { id: string; channel: 'status' | 'metrics' } | undefined {
  const parsed = topics.parse(row.topic);
  if (parsed?.kind !== 'device' || (parsed.channel !== 'status' && parsed.channel !== 'metrics')) return undefined;
  return { id: parsed.id, channel: parsed.channel };
}

/** MQTT-3.3.1-10: an empty retained message removes the topic's. */
function clear(broker: Broker, topic: string): Promise<void> {
  return broker.publish({ topic, payload: '', qos: 1, retain: true });
}

function tryDecode<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined; // not a card this version understands: left as it is
  }
}
