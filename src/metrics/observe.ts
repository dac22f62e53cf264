/**
 * Feeds BridgeMetrics from the events the broker, the answerer and each session already emit: nothing in those
 * components knows about Prometheus.
 */
import type { Answerer } from '../answerer/answerer.ts';
import type { CameraSession } from '../answerer/session.ts';
import type { Timeline } from '../answerer/stats.ts';
import type { Broker } from '../broker/broker.ts';
import type { RedisBackend } from '../broker/cluster.ts';
import type { Relay } from '../relay/relay.ts';
import type { BridgeMetrics, NegotiationStage } from './bridge-metrics.ts';

export function observeBroker(metrics: BridgeMetrics, broker: Broker): void {
  broker.on('clientReady', (_id, identity, transport) => metrics.clientConnected(transport, identity.role));
  broker.on('clientGone', (_id, identity, transport) => metrics.clientGone(transport, identity?.role ?? 'none'));
  broker.on('authFailed', (transport) => metrics.authFailed(transport));
  broker.on('denied', (action, role) => metrics.denied(action, role ?? 'none'));
  broker.on('rejected', (code) => metrics.error(code));
  metrics.countGate(() => broker.gate.counters);
}

/** Cluster mode: whether the node can route through Redis, and the publishes it could not acknowledge. */
export function observeCluster(metrics: BridgeMetrics, backend: RedisBackend): void {
  metrics.clusterAvailable(backend.available);
  backend.on('available', () => metrics.clusterAvailable(true));
  backend.on('unavailable', () => metrics.clusterAvailable(false));
  backend.on('unacknowledged', () => metrics.unacknowledged());
}

export function observeAnswerer(metrics: BridgeMetrics, answerer: Answerer): void {
  metrics.countSessions({ sessionStates: () => [...answerer.sessions.values()].map((s) => s.state) });
  answerer.on('signal', (direction, _deviceId, type) => metrics.signal(direction, type));
  answerer.on('rejected', (_deviceId, code) => metrics.error(code));
  answerer.on('session', (session) => observeSession(metrics, session));
}

/** Which timeline milestone each negotiation stage reads (the timeline counts from the offer). */
const STAGE_MILESTONE: Record<NegotiationStage, keyof Timeline> = {
  answer: 'answer',
  ice_connected: 'iceConnected',
  dtls_connected: 'connected',
  first_rtp: 'firstRtp',
  first_keyframe: 'firstKeyframe',
};

/** Session state reached → the stages it completes. */
const STATE_STAGES: Record<string, NegotiationStage[]> = {
  connecting: ['answer'],
  connected: ['ice_connected', 'dtls_connected'],
  streaming: ['first_rtp'],
};

function observeSession(metrics: BridgeMetrics, session: CameraSession): void {
  metrics.sessionOpened();
  const observe = (stages: NegotiationStage[]) => {
    const { timeline } = session.stats;
    for (const stage of stages) {
      const ms = timeline[STAGE_MILESTONE[stage]];
      if (ms !== undefined) metrics.negotiation(stage, ms);
    }
  };
  session.on('state', (state) => {
    const stages = STATE_STAGES[state];
    if (stages) observe(stages);
  });
  // The session asks for a keyframe as soon as it learns of a video track (the first picture is what users wait for).
  session.on('track', (track) => {
    if (track.kind === 'video') metrics.keyframeRequested('session');
  });
  let firstKeyframe = true;
  session.on('keyframe', () => {
    metrics.keyframeReceived();
    if (firstKeyframe) {
      firstKeyframe = false;
      observe(['first_keyframe']);
    }
  });
  session.once('closed', (reason) => metrics.sessionClosed(reason));
}

/** Viewers and keyframe requests from the relay (RTP in and out is counted by the media plane, src/media/). */
export function observeRelay(metrics: BridgeMetrics, relay: Relay): void {
  relay.on('viewer', (viewer) => {
    metrics.setViewers(relay.viewers.size);
    viewer.once('closed', () => metrics.setViewers(relay.viewers.size));
  });
  relay.on('stream', (stream) => stream.on('keyframeRequested', () => metrics.keyframeRequested('viewer')));
}
