/**
 * Topic layout of protocol v1. Every topic string the project builds or parses goes through this module.
 *
 *   {root}/v1/device/{deviceId}/status    device → all     retained status card; also the device's last will
 *   {root}/v1/device/{deviceId}/up        device → bridge  offer, candidate, bye, error
 *   {root}/v1/device/{deviceId}/down      bridge → device  answer, candidate, bye, error, start
 *   {root}/v1/device/{deviceId}/metrics   bridge → all     retained: the last session's negotiation timeline
 *   {root}/v1/bridge/{bridgeId}/status    bridge → all     retained bridge card (ICE servers, limits); last will
 *   {root}/v1/viewer/{viewerId}/{connection}/up     viewer → bridge  watch requests and their signaling
 *   {root}/v1/viewer/{viewerId}/{connection}/down   bridge → viewer
 *
 * The identifier sits at a fixed level (3) and the direction is the last level, so an access rule is a pattern:
 * a device `cam1` may publish `tali/v1/device/cam1/up` and `.../status` and subscribe to `.../down`, nothing else.
 * A viewer's topics are per MQTT connection as well as per user: `{connection}` is that connection's client ID, so
 * one connection (a token scoped to cam1, say) reads and steers only its own viewer sessions, not those the same
 * user has on another connection.
 * The version is in the topic as well as in each payload so that a v2 can run beside v1 on one broker.
 */

export const PROTOCOL_VERSION = 1;
export const DEFAULT_ROOT = 'tali';

export const DEVICE_CHANNELS = ['status', 'up', 'down', 'metrics'] as const;
export type DeviceChannel = (typeof DEVICE_CHANNELS)[number];
export const VIEWER_CHANNELS = ['up', 'down'] as const;
export type ViewerChannel = (typeof VIEWER_CHANNELS)[number];

export type ParsedTopic =
  | { kind: 'device'; id: string; channel: DeviceChannel }
  | { kind: 'viewer'; id: string; connection: string; channel: ViewerChannel }
  | { kind: 'bridge'; id: string; channel: 'status' };

/**
 * A viewer connection's level in its topics: its MQTT client ID, which the bridge's broker requires to be the user
 * name or the user name, a separator and a suffix of ID characters. Any such ID is one safe topic level: no `/`, no
 * wildcard, no U+0000, no leading `$`.
 */
export const CONNECTION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:~-]{0,128}$/;

export function isValidConnection(connection: unknown): connection is string {
  return typeof connection === 'string' && CONNECTION_PATTERN.test(connection);
}

/**
 * Identifiers (device, viewer, bridge IDs) are one topic level: 1–64 characters from [A-Za-z0-9._-], starting with a
 * letter or digit. That excludes `/`, the wildcards `+` and `#` (MQTT-4.7.1), U+0000 (MQTT-1.5.3-2) and a leading
 * `$` (MQTT-4.7.2), and it keeps them usable as MQTT client IDs (MQTT-3.1.3-5 allows 23 characters at least; brokers
 * here accept 64).
 */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const MAX_ID_LENGTH = 64;

export function isValidId(id: unknown): id is string {
  return typeof id === 'string' && ID_PATTERN.test(id);
}

/** Throws with a message a CLI can print as is. */
export function assertValidId(id: unknown, what = 'ID'): asserts id is string {
  if (!isValidId(id)) {
    throw new TypeError(
      `invalid ${what} ${JSON.stringify(id)}: use 1–${MAX_ID_LENGTH} characters from A–Z a–z 0–9 . _ - starting with a letter or digit`,
    );
  }
}

/** A root is one or more levels without wildcards, empty levels, U+0000 or a leading `$`. */
export function assertValidRoot(root: string): void {
  const levels = root.split('/');
  const ok =
    root.length > 0 &&
    root.length <= 128 &&
    !root.startsWith('$') &&
    levels.every((level) => level.length > 0 && !/[+#\u0000]/.test(level));
  if (!ok) throw new TypeError(`invalid topic root ${JSON.stringify(root)}: use levels like "tali" or "acme/cams"`);
}

/** Builds and parses the topics under one root. Create once; every method is a string concatenation or a split. */
export class Topics {
  readonly root: string;
  readonly #prefix: string;
  readonly #depth: number;

  constructor(root: string = DEFAULT_ROOT) {
    assertValidRoot(root);
    this.root = root;
    this.#prefix = `${root}/v${PROTOCOL_VERSION}/`;
    this.#depth = root.split('/').length + 1;
  }

  device(id: string, channel: DeviceChannel): string {
    return `${this.#prefix}device/${id}/${channel}`;
  }

  /** A viewer connection's topic: `connection` is its MQTT client ID. */
  viewer(id: string, connection: string, channel: ViewerChannel): string {
    return `${this.#prefix}viewer/${id}/${connection}/${channel}`;
  }

  /** Every connection of one viewer (what a broker's ACL grants a user where it cannot bind client IDs). */
  viewerConnections(id: string, channel: ViewerChannel): string {
    return `${this.#prefix}viewer/${id}/+/${channel}`;
  }

  bridge(id: string): string {
    return `${this.#prefix}bridge/${id}/status`;
  }

  /** Subscription filter for one channel of every device, e.g. all `up` topics for the answerer. */
  allDevices(channel: DeviceChannel): string {
    return `${this.#prefix}device/+/${channel}`;
  }

  allViewers(channel: ViewerChannel): string {
    return `${this.#prefix}viewer/+/+/${channel}`;
  }

  allBridges(): string {
    return `${this.#prefix}bridge/+/status`;
  }

  /** Returns undefined for any topic that is not exactly one of ours (wrong root, version, level count or ID). */
  parse(topic: string): ParsedTopic | undefined {
    if (!topic.startsWith(this.#prefix)) return undefined;
    const levels = topic.slice(this.#prefix.length).split('/');
    if (levels.length === 4 && levels[0] === 'viewer') {
      const [, id, connection, channel] = levels as [string, string, string, string];
      if (!isValidId(id) || !isValidConnection(connection) || !(VIEWER_CHANNELS as readonly string[]).includes(channel)) return undefined;
      return { kind: 'viewer', id, connection, channel: channel as ViewerChannel };
    }
    if (levels.length !== 3) return undefined;
    const [kind, id, channel] = levels as [string, string, string];
    if (!isValidId(id)) return undefined;
    switch (kind) {
      case 'device':
        return (DEVICE_CHANNELS as readonly string[]).includes(channel)
          ? { kind, id, channel: channel as DeviceChannel }
          : undefined;
      case 'bridge':
        return channel === 'status' ? { kind, id, channel } : undefined;
      default:
        return undefined;
    }
  }

  /** Number of levels before the ID (the root's levels plus the version level); used by access rules. */
  get idLevel(): number {
    return this.#depth + 1;
  }
}

/**
 * The topics of the libpeer profile (github.com/sepfy/libpeer, src/peer_signaling.c): a libpeer device is given a URL
 * `mqtts://host:port/<path>`, subscribes to `<path>/invoke` and publishes to `<path>/result`, and uses the last level
 * of `<path>` as its client ID. tali expects `<path>` = `<prefix>/<deviceId>` for one of the configured prefixes, so
 * the device level sits right after the prefix, as in the native topics. A prefix keeps libpeer's leading `/`
 * (`/public/cam-lp1/invoke` has an empty first level).
 *
 *   <prefix>/{deviceId}/invoke   bridge → device   JSON-RPC 2.0 requests: offer, answer, state, close
 *   <prefix>/{deviceId}/result   device → bridge   their responses
 */
export const LIBPEER_CHANNELS = ['invoke', 'result'] as const;
export type LibpeerChannel = (typeof LIBPEER_CHANNELS)[number];

/** libpeer copies the client ID into a 32-byte buffer (snprintf): IDs longer than 31 characters arrive truncated. */
export const LIBPEER_MAX_ID_LENGTH = 31;

/** A prefix: one or more levels (the first may be empty, as in `/public`), no wildcards, U+0000 or leading `$`. */
export function assertValidLibpeerPrefix(prefix: string): void {
  const levels = prefix.split('/');
  const ok =
    prefix.length > 0 &&
    prefix.length <= 128 &&
    !prefix.startsWith('$') &&
    !prefix.endsWith('/') &&
    levels.slice(1).every((level) => level.length > 0) &&
    levels.every((level) => !/[+#,\u0000]/.test(level));
  if (!ok) throw new TypeError(`invalid libpeer topic prefix ${JSON.stringify(prefix)}: use levels like "/public" or "acme/cams"`);
}

export class LibpeerTopics {
  readonly prefixes: readonly string[];

  /** `prefixes`: where libpeer devices signal, e.g. ["/public"]; none disables the profile's topics. */
  constructor(prefixes: readonly string[]) {
    for (const prefix of prefixes) assertValidLibpeerPrefix(prefix);
    this.prefixes = [...new Set(prefixes)];
  }

  topic(prefix: string, deviceId: string, channel: LibpeerChannel): string {
    return `${prefix}/${deviceId}/${channel}`;
  }

  /** Subscription filters for one channel of every device, one per prefix. */
  allDevices(channel: LibpeerChannel): string[] {
    return this.prefixes.map((prefix) => `${prefix}/+/${channel}`);
  }

  /** Returns undefined for any topic that is not exactly `<prefix>/<valid ID>/<channel>` under a configured prefix. */
  parse(topic: string): { prefix: string; id: string; channel: LibpeerChannel } | undefined {
    for (const prefix of this.prefixes) {
      if (!topic.startsWith(`${prefix}/`)) continue;
      const levels = topic.slice(prefix.length + 1).split('/');
      if (levels.length !== 2) continue;
      const [id, channel] = levels as [string, string];
      if (isValidId(id) && (LIBPEER_CHANNELS as readonly string[]).includes(channel)) return { prefix, id, channel: channel as LibpeerChannel };
    }
    return undefined;
  }
}
