/**
 * Per-role access rules as MQTT topic patterns, with `{id}` standing for the client's own identity. Everything not
 * listed is denied. The same table drives the embedded broker's hooks and the Mosquitto ACL template, so the
 * isolation is identical on either broker.
 *
 *   role     publish                         subscribe
 *   device   device/{id}/up, device/{id}/status   device/{id}/down, bridge/+/status
 *   viewer   viewer/{id}/up                  viewer/{id}/down, device/+/status, device/+/metrics, bridge/+/status
 *   admin    viewer/{id}/up                  everything under the root, $SYS/#
 *   bridge   everything                      everything
 *
 * (Paths are relative to `{root}/v1/`.) Only status cards (and the bridge's metrics) may be retained.
 *
 * A device with a profile (identity.ts) gets that profile's topics instead of the native ones, with `{id}` at the
 * same place, so the same isolation holds (the bridge speaks v1 for it on its native topics):
 *
 *   libpeer  <prefix>/{id}/result           <prefix>/{id}/invoke        (for each of libpeerPrefixes)
 */
import type { LibpeerTopics, Topics } from '../protocol/topics.ts';
import type { DeviceProfile, Identity, Role } from './identity.ts';

interface RoleRules {
  publish: readonly string[];
  subscribe: readonly string[];
}

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
    this.#rules = {
      device: {
        publish: [t.device(id, 'up'), t.device(id, 'status')],
        subscribe: [t.device(id, 'down'), t.allBridges()],
      },
      viewer: {
        publish: [t.viewer(id, 'up')],
        subscribe: [t.viewer(id, 'down'), t.allDevices('status'), t.allDevices('metrics'), t.allBridges()],
      },
      admin: {
        publish: [t.viewer(id, 'up')],
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
   * Where the broker tells a client about itself (e.g. TALI_ERR_RATE_LIMITED): a device's or viewer's down topic.
   * None for a device with a profile: it reads no v1 message.
   */
  replyTopic(identity: Identity): string | undefined {
    if (identity.role === 'device') return identity.profile === undefined ? this.#topics.device(identity.id, 'down') : undefined;
    if (identity.role === 'viewer' || identity.role === 'admin') return this.#topics.viewer(identity.id, 'down');
    return undefined;
  }

  /**
   * `payload` matters for one case only: a viewer token scoped to some devices may not ask to watch another one.
   * The device a watch is for is in the payload (protocol §16.1), so this is the one rule that reads it.
   */
  canPublish(identity: Identity, topic: string, retain: boolean, payload?: Buffer | string): boolean {
    if (retain && identity.role !== 'bridge') {
      const parsed = this.#topics.parse(topic);
      if (parsed?.channel !== 'status') return false;
    }
    if (!this.#rulesOf(identity).publish.some((pattern) => covers(expand(pattern, identity.id), topic))) return false;
    return identity.devices === undefined || payload === undefined || withinScope(identity.devices, payload);
  }

  canSubscribe(identity: Identity, filter: string): boolean {
    if (identity.role === 'viewer' && identity.devices !== undefined) {
      // A scoped viewer token reads only its devices' cards, never the wildcard.
      const t = this.#topics;
      const scoped = identity.devices.flatMap((d) => [t.device(d, 'status'), t.device(d, 'metrics')]);
      const own = [t.viewer(identity.id, 'down'), t.allBridges()];
      return [...own, ...scoped].some((pattern) => covers(pattern, filter));
    }
    return this.#rulesOf(identity).subscribe.some((pattern) => covers(expand(pattern, identity.id), filter));
  }

  #rulesOf(identity: Identity): RoleRules {
    return identity.role === 'device' && identity.profile !== undefined ? this.#profiles[identity.profile] : this.#rules[identity.role];
  }
}

/** False for a `watch` naming a device outside `devices`; anything else is the relay's to judge. */
function withinScope(devices: readonly string[], payload: Buffer | string): boolean {
  let message: unknown;
  try {
    message = JSON.parse(payload.toString());
  } catch {
    return true;
  }
  const m = message as { type?: unknown; deviceId?: unknown };
  return typeof m !== 'object' || m === null || m.type !== 'watch' || (typeof m.deviceId === 'string' && devices.includes(m.deviceId));
}

function expand(pattern: string, id: string): string {
  return pattern.replace('{id}', id);
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
