/**
 * Who a connected client is. The broker attaches one Identity to each client at CONNECT, and every access decision
 * and every device ID the bridge uses comes from it, never from a payload or a topic the client chose.
 */
export const ROLES = ['device', 'viewer', 'admin', 'bridge'] as const;
export type Role = (typeof ROLES)[number];

export interface Identity {
  readonly role: Role;
  /** Device ID for devices, user name for viewers and admins, node ID for the bridge. */
  readonly id: string;
  /** Viewer tokens may be limited to some devices; undefined means every device. */
  readonly devices?: readonly string[];
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
