/**
 * The protocol's channels as the generated documents describe them: address (built by src/protocol/topics.ts with
 * `{placeholders}` for the IDs), who publishes to whom, QoS and retain. docs/protocol.schema.json (per-type
 * descriptions) and docs/protocol.asyncapi.yaml (channels, operations, MQTT bindings) both read this table, and the
 * message types per channel come from CHANNEL_TYPES, so neither document can list a channel the other lacks.
 */
import type { Channel } from '../src/protocol/messages.ts';
import { Topics } from '../src/protocol/topics.ts';

export interface ChannelSpec {
  address: string;
  /** Who publishes, and who subscribes. */
  from: 'device' | 'bridge' | 'viewer';
  to: string;
  qos: 1;
  retain: boolean;
  /** One line for the documents; the protocol section it is specified in. */
  summary: string;
  section: string;
}

const t = new Topics('{root}');

export const CHANNELS: Record<Channel, ChannelSpec> = {
  status: {
    address: t.device('{deviceId}', 'status'),
    from: 'device',
    to: 'bridge, viewers',
    qos: 1,
    retain: true,
    summary: "the device's status card: `online` after every CONNACK, and the `offline` card as the device's MQTT last will",
    section: '§3, §5.7',
  },
  up: {
    address: t.device('{deviceId}', 'up'),
    from: 'device',
    to: 'bridge',
    qos: 1,
    retain: false,
    summary: "the device's signaling: an offer per session, its trickled candidates, bye and error",
    section: '§5',
  },
  down: {
    address: t.device('{deviceId}', 'down'),
    from: 'bridge',
    to: 'device',
    qos: 1,
    retain: false,
    summary: "the bridge's signaling to one device: answer, candidates, bye, error, and start when it wants media",
    section: '§5',
  },
  metrics: {
    address: t.device('{deviceId}', 'metrics'),
    from: 'bridge',
    to: 'viewers',
    qos: 1,
    retain: true,
    summary: "the negotiation timeline of the device's latest session (not for devices)",
    section: '§5.9',
  },
  bridge: {
    address: t.bridge('{bridgeId}'),
    from: 'bridge',
    to: 'devices, viewers',
    qos: 1,
    retain: true,
    summary: "the bridge node's card (ICE servers, limits); `offline` is its last will",
    section: '§5.8',
  },
  'viewer-up': {
    address: t.viewer('{viewerId}', '{clientId}', 'up'),
    from: 'viewer',
    to: 'bridge',
    qos: 1,
    retain: false,
    summary: "one viewer connection's signaling (`{clientId}` is its MQTT client ID): watch a camera, adopt a session, trickled candidates, bye; `leave` is its last will (not for devices)",
    section: '§16',
  },
  'viewer-down': {
    address: t.viewer('{viewerId}', '{clientId}', 'down'),
    from: 'bridge',
    to: 'viewer',
    qos: 1,
    retain: false,
    summary: "the bridge's signaling to one viewer connection: answer, candidates, stream state, bye, error",
    section: '§16',
  },
};

/** "device → bridge on {root}/v1/device/{deviceId}/up (QoS 1, not retained)". */
export function whereSent(channel: Channel): string {
  const c = CHANNELS[channel];
  return `${c.from} → ${c.to} on ${c.address} (QoS ${c.qos}, ${c.retain ? 'retained' : 'not retained'})`;
}
