/**
 * Publishes each camera session's negotiation timeline, retained, on `{root}/v1/device/{id}/metrics`: at DTLS
 * connected, first RTP, first keyframe and close (a handful of messages per session, never per packet), and whenever
 * the number of viewers watching the camera changes. The last one stays on the broker, so a dashboard or
 * `mosquitto_sub` sees how the device's latest session went and how many watch it.
 *
 * This is the one publisher of that retained topic: the session's milestones and the relay's viewer count are
 * merged here into one message, so two publishers never overwrite each other's fields.
 */
import type { Answerer } from '../answerer/answerer.ts';
import type { CameraSession } from '../answerer/session.ts';
import type { SessionMetrics } from '../protocol/messages.ts';
import { PROTOCOL_VERSION } from '../protocol/topics.ts';
import type { Relay } from '../relay/relay.ts';

export function publishTimelines(answerer: Answerer, bridgeId: string, relay?: Relay): void {
  /** Each device's latest session (one per device: what its retained message describes). */
  const latest = new Map<string, CameraSession>();
  const viewers = new Map<string, number>();
  const publish = (deviceId: string) => {
    const session = latest.get(deviceId);
    if (session !== undefined) answerer.publishMetrics(deviceId, toMessage(session, bridgeId, relay ? (viewers.get(deviceId) ?? 0) : undefined));
  };
  answerer.on('session', (session) => {
    latest.set(session.deviceId, session);
    // A replaced session closing after its successor started must not overwrite the successor's message.
    const publishIfLatest = () => {
      if (latest.get(session.deviceId) === session) publish(session.deviceId);
    };
    session.on('state', (state) => {
      if (state === 'connected' || state === 'streaming' || state === 'closed') publishIfLatest();
    });
    session.once('keyframe', publishIfLatest);
  });
  relay?.on('viewer', (viewer) => {
    const { deviceId } = viewer;
    viewers.set(deviceId, (viewers.get(deviceId) ?? 0) + 1);
    publish(deviceId);
    viewer.once('closed', () => {
      const left = (viewers.get(deviceId) ?? 1) - 1;
      if (left > 0) viewers.set(deviceId, left);
      else viewers.delete(deviceId);
      publish(deviceId);
    });
  });
}

export function toMessage(session: CameraSession, bridgeId: string, viewers?: number): SessionMetrics {
  const stats = session.stats;
  const message: SessionMetrics = {
    v: PROTOCOL_VERSION,
    type: 'metrics',
    ts: Date.now(),
    sessionId: stats.sessionId,
    bridgeId,
    state: stats.state as SessionMetrics['state'],
    timeline: stats.timeline,
    // At most one audio and one video track per session (the protocol's offer rules); four leaves room.
    tracks: stats.tracks.slice(0, 4).map(({ kind, codec, packets, bytes, keyframes }) => ({ kind, codec, packets, bytes, keyframes })),
  };
  if (stats.closeReason !== undefined) message.closeReason = stats.closeReason;
  if (stats.selectedPair !== undefined) message.selectedPair = stats.selectedPair;
  if (viewers !== undefined) message.viewers = viewers;
  return message;
}
