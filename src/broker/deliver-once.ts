/**
 * Each message once per client, in whatever order it arrives.
 *
 * Aedes drops a duplicate by keeping, per client and per publishing node, only the highest brokerCounter delivered
 * (lib/client.js dedupe()): a message that arrives after a later one from the same node is dropped as if it had
 * been delivered. In cluster mode a node's messages do arrive out of order: ioredis sends a PUBLISH (it has no key)
 * to a random node of a Redis Cluster, which broadcasts it on the cluster bus, and a PUBLISH sent to a primary that
 * just died is sent again 200 ms later (retryDelayOnFailover), behind the ones published meanwhile. Every such
 * message was lost for every client: a camera's offer, a viewer's watch, the answerer's bye (measured in
 * test/cluster/redis-cluster.test.ts: a primary killed under a streaming camera).
 *
 * The duplicates Aedes' check is for come from one client's overlapping subscriptions, each of which delivers the
 * same packet (same brokerId and brokerCounter) within one emit: the last RECENT packets seen are enough to drop
 * them. A retained message sent on SUBSCRIBE has no brokerId and is never a duplicate (lib/handlers/subscribe.js).
 */
import type { AedesPublishPacket, Client } from 'aedes';

const RECENT = 64;

type Deliver = (packet: AedesPublishPacket, cb: () => void) => void;

/**
 * Wraps the client's two delivery functions. Install it after ./broker.ts deliverAtHighestQos (which then calls the
 * unwrapped functions, so that no packet is counted twice); only ./retained-first.ts, which holds packets back, goes
 * outside it (a held packet is counted when it goes out).
 */
export function deliverOnce(client: Client): void {
  const c = client as unknown as { deliver0: Deliver; deliverQoS: Deliver; duplicates: Record<string, number> };
  const recent = new Set<string>(); // in insertion order: the oldest first
  // Aedes' deliverQoS hands a QoS 0 packet to the client's deliver0 (the wrapped one) at once: not a second delivery.
  let inside = false;
  for (const kind of ['deliver0', 'deliverQoS'] as const) {
    const deliver = c[kind];
    c[kind] = (packet, cb) => {
      if (inside) return deliver(packet, cb);
      const { brokerId, brokerCounter } = packet as unknown as { brokerId?: string | null; brokerCounter: number };
      if (brokerId) {
        const key = `${brokerId} ${brokerCounter}`;
        if (recent.has(key)) return void setImmediate(cb);
        recent.add(key);
        if (recent.size > RECENT) recent.delete(recent.values().next().value as string);
        c.duplicates[brokerId] = brokerCounter - 1; // Aedes' own check passes: this packet was not delivered yet
      }
      inside = true;
      try {
        deliver(packet, cb);
      } finally {
        inside = false;
      }
    };
  }
}
