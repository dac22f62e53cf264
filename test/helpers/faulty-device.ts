/**
 * Deliberately broken test devices for `tali check-device`: the simulated camera (the device SDK, which behaves) with
 * one fault each, injected where firmware goes wrong: on the wire (its MQTT client's CONNECT, publishes and received
 * messages are rewritten) or in its media (keyframe requests ignored). Each fault breaks exactly one rule of
 * src/check/rules.ts, as a firmware bug would.
 */
import type { MqttClient } from 'mqtt';
import type { RtpPacket } from 'werift';
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import { DeviceClient } from '../../devices/sdk/device-client.ts';
import { SessionKeeper } from '../../devices/sdk/session-keeper.ts';
import { WeriftPeer } from '../../devices/sdk/werift-peer.ts';
import { VideoSource } from '../../devices/camera/media/video-source.ts';
import type { MqttConnector } from '../../src/client/mqtt-link.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import { startsKeyframe } from '../../src/webrtc/keyframe.ts';

/** Each fault, and the rule it breaks. */
export const FAULTS = {
  'no-will': 'connect.will',
  'keepalive-off': 'connect.keepalive',
  'card-before-subscribe': 'connect.subscribe-first',
  'card-not-retained': 'connect.card',
  'unknown-type': 'messages.valid',
  'oversized-offer': 'limits.size',
  'clock-off': 'clock.window',
  'counter-session-ids': 'session.id',
  'seq-gap': 'session.seq',
  'no-end-of-candidates': 'trickle.candidates',
  'ignore-keyframe-requests': 'keyframe.request',
  'no-reoffer-after-timeout': 'reoffer.timeout',
  'no-backoff': 'reoffer.ice-failed',
  'ignore-start': 'start.honoured',
  'no-bye-on-stop': 'bye.disconnect',
} as const;
export type Fault = keyof typeof FAULTS;

export interface FaultyDevice {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function faultyDevice(fault: Fault, options: { deviceId: string; secret: string; url: string }): FaultyDevice {
  const connect = faultyConnector(nodeConnector(options.url), fault, options.deviceId);
  if (fault === 'ignore-keyframe-requests') return keyframeIgnorer(options.deviceId, options.secret, connect);
  return new SimulatedCamera({ deviceId: options.deviceId, secret: options.secret, connect, backoff: { initialMs: 1000, maxMs: 2000 } });
}

type Json = Record<string, unknown>;

/** The device's MQTT client, with the fault applied to what it says and hears. */
function faultyConnector(inner: MqttConnector, fault: Fault, deviceId: string): MqttConnector {
  const status = `tali/v1/device/${deviceId}/status`;
  const up = `tali/v1/device/${deviceId}/up`;
  // counter-session-ids: the real (random) ID → the counter the bridge sees, and back.
  const toCounter = new Map<string, string>();
  const fromCounter = new Map<string, string>();
  const counterOf = (id: string) => {
    if (!toCounter.has(id)) {
      const counter = `sess-${String(toCounter.size + 1).padStart(8, '0')}`;
      toCounter.set(id, counter);
      fromCounter.set(counter, id);
    }
    return toCounter.get(id)!;
  };

  const outgoing = (topic: string, message: Json): Json | undefined => {
    if (topic !== up) return message;
    switch (fault) {
      case 'counter-session-ids':
        return typeof message.sessionId === 'string' ? { ...message, sessionId: counterOf(message.sessionId) } : message;
      case 'seq-gap':
        return message.type === 'candidate' ? { ...message, seq: (message.seq as number) + 1 } : message;
      case 'no-end-of-candidates':
        return message.endOfCandidates === true ? undefined : message;
      case 'no-bye-on-stop':
        return message.type === 'bye' ? undefined : message;
      case 'oversized-offer':
        return message.type === 'offer' ? { ...message, sdp: `${message.sdp as string}a=x-padding:${'x'.repeat(20_000)}\r\n` } : message;
      case 'clock-off':
        return { ...message, ts: (message.ts as number) - 600_000 };
      default:
        return message;
    }
  };
  const incoming = (message: Json): Json | undefined => {
    switch (fault) {
      case 'counter-session-ids':
        return typeof message.sessionId === 'string' ? { ...message, sessionId: fromCounter.get(message.sessionId) ?? message.sessionId } : message;
      case 'no-reoffer-after-timeout':
        return message.type === 'bye' && message.reason === 'timeout' ? { ...message, reason: 'normal' } : message;
      case 'ignore-start':
        return message.type === 'start' ? undefined : message;
      default:
        return message;
    }
  };

  // no-backoff: the last offer, sent again (as a new session) the moment the first bye that asks for a backoff comes.
  let lastOffer: Json | undefined;
  let reoffered = false;
  const reofferAtOnce = (client: MqttClient, message: Json) => {
    if (fault !== 'no-backoff' || reoffered || message.type !== 'bye' || !['timeout', 'ice-failed', 'error'].includes(message.reason as string)) return;
    if (lastOffer === undefined) return;
    reoffered = true;
    const again = { ...lastOffer, sessionId: `x${crypto.randomUUID().replace(/-/g, '')}`, seq: 1, ts: Date.now() };
    client.publish(up, JSON.stringify(again), { qos: 1 });
  };

  return (o) => {
    const client = inner({
      ...o,
      ...(fault === 'no-will' && { will: undefined }),
      ...(fault === 'keepalive-off' && { keepaliveS: 0 }),
    });
    if (fault === 'card-before-subscribe') {
      // Before the SDK's own 'connect' listener subscribes: the card goes first.
      client.on('connect', () => client.publish(status, JSON.stringify({ v: 1, type: 'status', ts: Date.now(), state: 'online' }), { qos: 1, retain: true }));
    }
    rewrite(client, {
      publish: (topic, payload, retain) => {
        if (fault === 'card-not-retained' && topic === status) return { payload, retain: false };
        const message = outgoing(topic, JSON.parse(payload) as Json);
        if (message?.type === 'offer') lastOffer = message;
        if (fault === 'unknown-type' && topic === status && payload.includes('"online"')) {
          client.publish(up, JSON.stringify({ v: 1, type: 'hello', ts: Date.now() }), { qos: 1 });
        }
        return message && { payload: JSON.stringify(message), retain };
      },
      message: (topic, payload) => {
        if (!topic.endsWith('/down')) return payload;
        reofferAtOnce(client, JSON.parse(payload.toString()) as Json);
        const message = incoming(JSON.parse(payload.toString()) as Json);
        return message && Buffer.from(JSON.stringify(message));
      },
    });
    return client;
  };
}

/** Replaces the client's publish and its 'message' listeners' view; a dropped message is acknowledged at once. */
function rewrite(
  client: MqttClient,
  change: {
    publish(topic: string, payload: string, retain: boolean): { payload: string; retain: boolean } | undefined;
    message(topic: string, payload: Buffer): Buffer | undefined;
  },
): void {
  const publish = client.publish.bind(client) as (topic: string, payload: string, opts: { qos: 0 | 1; retain?: boolean }, cb?: (err?: Error) => void) => MqttClient;
  client.publish = ((topic: string, payload: string, opts: { qos: 0 | 1; retain?: boolean }, cb?: (err?: Error) => void) => {
    const changed = change.publish(topic, String(payload), opts.retain === true);
    if (changed === undefined) {
      queueMicrotask(() => cb?.());
      return client;
    }
    return publish(topic, changed.payload, { ...opts, retain: changed.retain }, cb);
  }) as MqttClient['publish'];
  const on = client.on.bind(client) as (event: string, listener: (...args: unknown[]) => void) => MqttClient;
  client.on = ((event: string, listener: (...args: unknown[]) => void) => {
    if (event !== 'message') return on(event, listener);
    return on('message', (topic: unknown, payload: unknown, packet: unknown) => {
      const changed = change.message(topic as string, payload as Buffer);
      if (changed !== undefined) listener(topic, changed, packet);
    });
  }) as MqttClient['on'];
}

/**
 * A camera that ignores keyframe requests and sends one keyframe only, at the start of each session: its encoder's
 * periodic keyframes are dropped too, so that only a keyframe a request produced could reach a viewer.
 */
function keyframeIgnorer(deviceId: string, secret: string, connect: MqttConnector): FaultyDevice {
  const client = new DeviceClient({ deviceId, secret, connect });
  const video = new VideoSource({ codec: 'VP8' });
  let peer: WeriftPeer | undefined;
  const keeper = new SessionKeeper({
    client,
    createPeer: (iceServers) => (peer = new WeriftPeer({ iceServers, video: 'VP8' })), // no onKeyframeRequest
  });
  let sentKeyframe = false;
  let dropping: number | undefined;
  const send = (packet: RtpPacket) => {
    if (startsKeyframe('VP8', packet.payload)) {
      if (sentKeyframe) dropping = packet.header.timestamp;
      sentKeyframe = true;
    }
    if (packet.header.timestamp !== dropping) peer?.sendVideoRtp(packet);
  };
  keeper.on('session-connected', () => {
    sentKeyframe = false;
    if (!video.running) video.start(send);
  });
  keeper.on('session-closed', () => video.stop());
  return {
    async start() {
      keeper.start();
      await client.start();
    },
    async stop() {
      video.stop();
      await keeper.stop();
      await client.stop();
    },
  };
}
