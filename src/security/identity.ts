/**
 * Who a connected client is. The broker attaches one Identity to each client at CONNECT, and every access decision
 * and every device ID the bridge uses comes from it, never from a payload or a topic the client chose.
 */
export const ROLES = ['device', 'viewer', 'admin', 'bridge'] as const;
export type Role = (typeof ROLES)[number];

/**
 * How a device signals. Native devices speak protocol v1 (docs/protocol.md); a profile names another wire protocol
 * that an edge adapter translates into the same messages (src/profiles/): `libpeer` is sepfy/libpeer's JSON-RPC over
 * MQTT. The profile decides the device's topics (src/security/access.ts), nothing else about it.
 */
export const DEVICE_PROFILES = ['libpeer'] as const;
export type DeviceProfile = (typeof DEVICE_PROFILES)[number];

export interface Identity {
  readonly role: Role;
  /** Device ID for devices, user name for viewers and admins, node ID for the bridge. */
  readonly id: string;
  /**
   * Viewers and admins: the MQTT client ID this login holds. Their topics are per connection
   * (`viewer/{id}/{clientId}/…`), so each connection reads and steers only its own viewer sessions.
   */
  readonly clientId?: string;
  /** Devices only: the wire protocol it speaks when it is not the native one. */
  readonly profile?: DeviceProfile;
  /** Viewer tokens may be limited to some devices; undefined means every device. */
  readonly devices?: readonly string[];
  /** How the client proved it: a stored secret, a signed token, nothing (--allow-anonymous), or in-process. */
  readonly source?: 'secret' | 'token' | 'anonymous' | 'internal';
  /** Stored identities: the `created` stamp of the secret it logged in with, so a re-keyed identity can be told apart. */
  readonly credential?: string;
  /** Tokens: when the login stops being valid (ms since the epoch); the broker closes the connection then. */
  readonly expiresAt?: number;
}

/** An authentication failure, with the MQTT 3.1.1 CONNACK return code it maps to (§3.2.2.3). */
export class AuthError extends Error {
  readonly returnCode: 2 | 3 | 4 | 5;
  constructor(returnCode: 2 | 3 | 4 | 5, message: string) {
    super(message);
    this.name = 'AuthError';
    this.returnCode = returnCode;
  }
}

export interface ConnectAttempt {
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  address: string;
  transport: string;
}

/** Decides who a client is. Throws AuthError to refuse. */
export type Authenticator = (attempt: ConnectAttempt) => Promise<Identity>;
