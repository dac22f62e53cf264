/**
 * Who a viewer session belongs to and where its messages go. An MQTT connection owns the sessions it watched (or
 * adopted) and they end when it does (`leave`); another front end (a WHEP resource, say) can own sessions the same
 * way through Relay.watch.
 */
import type { Message } from '../protocol/messages.ts';

export interface ViewerOwner {
  /** The user the sessions are watched for (per-user limits, logs). */
  readonly user: string;
  /** Unique among live owners: an owner's sessions are found, and end, by it. */
  readonly key: string;
  /** Sends one of the bridge's messages of a session to the owner. */
  send(message: Message): void;
}

/** The owner of a viewer's MQTT connection: `connection` is its client ID, the level of its topics. */
export function connectionOwner(user: string, connection: string, publish: (message: Message) => void): ViewerOwner {
  return { user, key: `mqtt:${user}/${connection}`, send: publish };
}
