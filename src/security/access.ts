/**
 * Per-role access rules as MQTT topic patterns, with `{id}` standing for the client's own identity. Everything not
 * listed is denied. The same table drives the embedded broker's hooks and the Mosquitto ACL template, so the
 * isolation is identical on either broker.
 *
 *   role     publish                         subscribe
 *   device   device/{id}/up, device/{id}/status   device/{id}/down, bridge/+/status
 *   viewer   viewer/{id}/{conn}/up           viewer/{id}/{conn}/down, device/+/status, device/+/metrics, bridge/+/status
 *   admin    viewer/{id}/{conn}/up           everything under the root, $SYS/#
 *   bridge   everything                      everything
 *
 * (Paths are relative to `{root}/v1/`; `{conn}` is the connection's client ID.) Only status cards (and the bridge's
 * metrics) may be retained.
 *
 * A viewer token limited to some devices also has each message it publishes read, with the relay's own decoder
 * (`decode()`), and every decision fails closed: a message that does not decode, or a `watch` or `adopt` for a
 * device outside the token, is not delivered. Such a refusal is a protocol error the client is told about on its
 * down topic (TALI_ERR_FORBIDDEN, or the decoder's code), not a reason to close its connection.
 *
 * A device with a profile (identity.ts) gets that profile's topics instead of the native ones, with `{id}` at the
 * same place, so the same isolation holds (the bridge speaks v1 for it on its native topics):
 *
 *   libpeer  <prefix>/{id}/result           <prefix>/{id}/invoke        (for each of libpeerPrefixes)
 */
import { decode } from '../protocol/codec.ts';
import { ProtocolError } from '../protocol/errors.ts';
import { isValidConnection, type LibpeerTopics, type Topics } from '../protocol/topics.ts';
import type { DeviceProfile, Identity, Role } from './identity.ts';

interface RoleRules {
  publish: readonly string[];
  subscribe: readonly string[];
}

/**
 * What the broker does with a PUBLISH: pass it on; refuse it (MQTT 3.1.1 has no negative PUBACK, so the connection
 * closes); or drop it and tell the client why, with this error on its down topic (the connection stays up).
 */
export type PublishDecision = 'allow' | 'deny' | ProtocolError;

export interface AccessPolicyOptions {
  /** Where libpeer devices signal; without it a libpeer device may publish and subscribe nothing. */
  libpeer?: LibpeerTopics | undefined;
}

export class AccessPolicy {
  readonly #topics: Topics;
  readonly #rules: Record<Role, RoleRules>;
  readonly #profiles: Record<DeviceProfile, RoleRules>;

  constructor(topics: Topics, options: AccessPolicyOptions = {}) {
    this.#topics = topics;
    const t = topics;
    const id = '{id}';
    const conn = '{conn}';
    this.#rules = {
      device: {
        publish: [t.device(id, 'up'), t.device(id, 'status')],
        subscribe: [t.device(id, 'down'), t.allBridges()],
      },
      viewer: {
        publish: [t.viewer(id, conn, 'up')],
        subscribe: [t.viewer(id, conn, 'down'), t.allDevices('status'), t.allDevices('metrics'), t.allBridges()],
      },
      admin: {
        publish: [t.viewer(id, conn, 'up')],
        subscribe: [`${t.root}/#`, '$SYS/#'],
      },
      bridge: { publish: ['#', '$SYS/#'], subscribe: ['#', '$SYS/#'] },
    };
    const libpeer = options.libpeer;
    this.#profiles = {
      libpeer: {
        publish: libpeer?.prefixes.map((p) => libpeer.topic(p, id, 'result')) ?? [],
        subscribe: libpeer?.prefixes.map((p) => libpeer.topic(p, id, 'invoke')) ?? [],
      },
    };
  }

  /** The table, for documentation and for generating other brokers' ACLs. */
  rules(role: Role): RoleRules {
    return this.#rules[role];
  }

  /** The rules of a device profile (libpeer), for documentation. */
  profileRules(profile: DeviceProfile): RoleRules {
    return this.#profiles[profile];
  }

  /**
   * Where the broker tells a client about itself (e.g. TALI_ERR_RATE_LIMITED): a device's down topic, or a viewer
   * connection's. None for a device with a profile (it reads no v1 message) or a viewer without a valid client ID.
   */
  replyTopic(identity: Identity): string | undefined {
    if (identity.role === 'device') return identity.profile === undefined ? this.#topics.device(identity.id, 'down') : undefined;
    if ((identity.role === 'viewer' || identity.role === 'admin') && isValidConnection(identity.clientId)) {
      return this.#topics.viewer(identity.id, identity.clientId, 'down');
    }
    return undefined;
  }

  canPublish(identity: Identity, topic: string, retain: boolean, payload?: Buffer | string): boolean {
    return this.decidePublish(identity, topic, retain, payload) === 'allow';
  }

  /**
   * The topic rules, and for a viewer token limited to some devices the payload too: the one rule that reads it,
   * since the device a `watch` or `adopt` is for is in the payload (protocol §16). It reads it with the relay's
   * decoder, so what is judged is what the relay would act on (a byte order mark, say, is skipped by both), and a
   * payload it cannot read is refused, never waved through.
   */
  decidePublish(identity: Identity, topic: string, retain: boolean, payload?: Buffer | string): PublishDecision {
    if (retain && identity.role !== 'bridge') {
      const parsed = this.#topics.parse(topic);
      if (parsed?.channel !== 'status') return 'deny';
    }
    if (!anyCovers(this.#rulesOf(identity).publish, identity, topic)) return 'deny';
    if (identity.devices === undefined) return 'allow';
    if (payload === undefined) return 'deny';
    return scopeDecision(identity.devices, payload);
  }

  canSubscribe(identity: Identity, filter: string): boolean {
    if (identity.role === 'viewer' && identity.devices !== undefined) {
      // A scoped viewer token reads only its devices' cards, never the wildcard.
      const t = this.#topics;
      const scoped = identity.devices.flatMap((d) => [t.device(d, 'status'), t.device(d, 'metrics')]);
      return anyCovers([t.viewer('{id}', '{conn}', 'down'), t.allBridges(), ...scoped], identity, filter);
    }
    return anyCovers(this.#rulesOf(identity).subscribe, identity, filter);
  }

  #rulesOf(identity: Identity): RoleRules {
    return identity.role === 'device' && identity.profile !== undefined ? this.#profiles[identity.profile] : this.#rules[identity.role];
  }
}

/**
 * A scoped token's message on its up topic: refused with the decoder's own error if the relay could not read it
 * either, with TALI_ERR_FORBIDDEN if it names a device outside the token; allowed otherwise (a `candidate`, `bye` or
 * `leave` acts only on this connection's sessions, each made by a `watch` or `adopt` that passed here).
 */
function scopeDecision(devices: readonly string[], payload: Buffer | string): PublishDecision {
  let message;
  try {
    message = decode('viewer-up', payload);
  } catch (err) {
    return err instanceof ProtocolError ? err : 'deny';
  }
  if ((message.type === 'watch' || message.type === 'adopt') && !devices.includes(message.deviceId)) {
    const ref = { sessionId: message.sessionId, seq: message.seq, type: message.type };
    return new ProtocolError('TALI_ERR_FORBIDDEN', `this login may not watch ${message.deviceId}`, ref);
  }
  return 'allow';
}

/**
 * A rule for this identity: `{id}` is its ID, `{conn}` its client ID. A rule that needs a client ID the identity
 * does not have (or one that is not a single safe topic level, where `+` or `#` would widen it) applies to nothing.
 */
function expand(pattern: string, identity: Identity): string | undefined {
  const withId = pattern.replace('{id}', identity.id);
  if (!withId.includes('{conn}')) return withId;
  return isValidConnection(identity.clientId) ? withId.replace('{conn}', identity.clientId) : undefined;
}

/** Whether one of `patterns`, expanded for `identity`, covers `filter`. */
function anyCovers(patterns: readonly string[], identity: Identity, filter: string): boolean {
  return patterns.some((pattern) => {
    const rule = expand(pattern, identity);
    return rule !== undefined && covers(rule, filter);
  });
}

/**
 * True when every topic that `filter` can match is also matched by `pattern` (MQTT-4.7.1). A topic name is a
 * filter without wildcards, so this also answers "does pattern match topic". Topics starting with `$` are only
 * matched by patterns that start with the same literal level (MQTT-4.7.2-1).
 */
export function covers(pattern: string, filter: string): boolean {
  const p = pattern.split('/');
  const f = filter.split('/');
  if (f[0]?.startsWith('$') && p[0] !== f[0]) return false;
  for (let i = 0; i < p.length; i++) {
    const pl = p[i];
    const fl = f[i];
    if (pl === '#') return true;
    if (fl === undefined) return false;
    if (fl === '#') return false;
    if (pl === '+') continue;
    if (fl === '+' || pl !== fl) return false;
  }
  return p.length === f.length;
}
