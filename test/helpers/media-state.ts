/**
 * What a media timeout should say: which side stopped. The bridge's media as it is now (its media workers' mirrors
 * brought up to date first, if they answer): each camera stream (state, viewers, keyframe requests), each camera session (state,
 * packets and keyframes received) and each viewer session (state, packets sent).
 */
import type { TestBridge } from './bridge.ts';
import { withTimeout } from './wait.ts';

export async function mediaState(tb: TestBridge): Promise<Record<string, unknown>> {
  // A worker too busy to answer in 2 s is itself the finding: its mirrors are then up to a tick (1 s) older.
  const refreshed = await withTimeout(tb.bridge.services.media.refresh(), 2000, 'the media workers').then(() => true, () => false);
  return {
    refreshed,
    streams: [...tb.bridge.relay.streams.values()].map((s) => ({
      deviceId: s.deviceId,
      state: s.state,
      upstream: s.upstream?.state,
      viewers: s.viewers.size,
      keyframeRequests: { state: s.keyframes.state, sent: s.keyframes.sent, coalesced: s.keyframes.coalesced, retried: s.keyframes.retried },
    })),
    sessions: [...tb.bridge.answerer.sessions.values()].map((s) => ({
      deviceId: s.deviceId,
      state: s.state,
      tracks: s.stats.tracks.map((t) => ({ kind: t.kind, packets: t.packets, keyframes: t.keyframes })),
    })),
    viewers: [...tb.bridge.relay.viewers.values()].map((v) => ({ sessionId: v.sessionId, state: v.state, packetsSent: v.packetsSent })),
  };
}

/** `promise`; if it rejects (a timeout), the same failure with the bridge's media state and `more` in its message. */
export async function explained<T>(tb: TestBridge, promise: Promise<T>, more: () => Record<string, unknown> = () => ({})): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    const bridge = await mediaState(tb).catch((e: Error) => ({ unavailable: e.message }));
    throw new Error(`${(err as Error).message}: ${JSON.stringify({ ...more(), bridge })}`);
  }
}
