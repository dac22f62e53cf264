/**
 * MQTT client IDs on a tali broker. A client ID names a session, and a new connection with a connected client's ID
 * takes that session over (MQTT-3.1.4-2), so each identity owns its own part of the ID space:
 *
 *   device   exactly its device ID                      cam1
 *   viewer   its user name, or name ":" suffix          alice, alice:tab1
 *
 * The separator is a character no identity ID can contain (IDs are A–Z a–z 0–9 . _ -), so one identity's IDs can
 * never be another's: with "-", `alice` could hold `alice-bob` and lock user `alice-bob` out of its own name. The
 * suffix keeps the ID alphabet, so a client ID is safe wherever an ID is (a topic level, an ACL's %c).
 */
import { isValidId } from './topics.ts';

export const CLIENT_ID_SEPARATOR = ':';

const SUFFIX = /^[A-Za-z0-9._-]{1,64}$/;

/** The identity ID a client ID belongs to, or undefined when it is not one tali accepts (CONNACK 2, MQTT-3.1.3-9). */
export function clientIdOwner(clientId: string): string | undefined {
  const at = clientId.indexOf(CLIENT_ID_SEPARATOR);
  const owner = at < 0 ? clientId : clientId.slice(0, at);
  if (!isValidId(owner)) return undefined;
  if (at >= 0 && !SUFFIX.test(clientId.slice(at + 1))) return undefined;
  return owner;
}

/** A viewer's client ID for one of its connections (a tab, a token refresh). */
export function viewerClientId(user: string, suffix: string): string {
  return `${user}${CLIENT_ID_SEPARATOR}${suffix}`;
}
