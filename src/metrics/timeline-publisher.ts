/**
 * Publishes each camera session's negotiation timeline, retained, on `{root}/v1/device/{id}/metrics`: at DTLS
 * connected, first RTP, first keyframe and close (a handful of messages per session, never per packet). The last
 * one stays on the broker, so a dashboard or `mosquitto_sub` sees how the device's latest session went.
 */
import type { Answerer } from '../answerer/answerer.ts';
import type { Session } from '../answerer/session.ts';
import type { SessionMetrics } from '../protocol/messages.ts';
import { PROTOCOL_VERSION } from '../protocol/topics.ts';

export function publishTimelines(answerer: Answerer, bridgeId: string): void {
  answerer.on('session', (session) => {
    const publish = () => answerer.publishMetrics(session.deviceId, toMessage(session, bridgeId));
    session.on('state', (state) => {
      if (state === 'connected' || state === 'streaming' || state === 'closed') publish();
    });
    session.once('keyframe', publish);
  });
}

export function toMessage(session: Session, bridgeId: string): SessionMetrics {
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
  return message;
}
