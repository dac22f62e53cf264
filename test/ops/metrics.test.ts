/**
 * /metrics, /healthz and /readyz on a real bridge, scraped during a real camera session (werift on both sides, a VP8
 * clip and a G.711 tone): every negotiation histogram filled, RTP counted, no per-device labels; and the session's
 * timeline published, retained, on the device's metrics topic.
 */
import { describe, expect, it } from 'vitest';
import type { Session } from '../../src/answerer/session.ts';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { decode } from '../../src/protocol/codec.ts';
import { NEGOTIATION_STAGES } from '../../src/metrics/bridge-metrics.ts';
import { startBridge } from '../helpers/bridge.ts';
import { connectRawDevice } from '../helpers/raw-device.ts';
import { Inbox, waitFor } from '../helpers/wait.ts';
import { startStreamingCamera } from './camera.ts';
import { scrape } from './prometheus.ts';

describe('operations endpoints', () => {
  it('histograms of every negotiation stage fill during a real session; counters and gauges follow it', async () => {
    const tb = await startBridge();
    const base = `http://127.0.0.1:${tb.bridge.httpPort}`;
    const before = await scrape(`${base}/metrics`);
    expect(before.value('tali_viewers')).toBe(0);
    expect(before.value('tali_rtp_sent_packets_total', { kind: 'video' })).toBe(0);
    for (const stage of NEGOTIATION_STAGES) expect(before.value('tali_negotiation_seconds_count', { stage })).toBe(0);

    const secret = await tb.bridge.credentials.add('cam1', 'device');
    const opened = waitFor<[Session]>(tb.bridge.answerer, 'session');
    const camera = await startStreamingCamera({ url: tb.bridge.mqttUrl, id: 'cam1', secret, codec: 'VP8', audio: 'PCMU' });
    const [session] = await opened;
    if (session.stats.timeline.firstKeyframe === undefined) await waitFor(session, 'keyframe');

    const during = await scrape(`${base}/metrics`);
    for (const stage of NEGOTIATION_STAGES) {
      expect(during.value('tali_negotiation_seconds_count', { stage }), stage).toBe(1);
      const seconds = during.value('tali_negotiation_seconds_sum', { stage }) as number;
      expect(seconds, stage).toBeGreaterThan(0);
      expect(seconds, stage).toBeLessThan(30);
    }
    // The stages happen in order, so their sums (one session each) do too.
    const sums = NEGOTIATION_STAGES.map((stage) => during.value('tali_negotiation_seconds_sum', { stage }) as number);
    expect([...sums].sort((a, b) => a - b)).toEqual(sums);
    expect(during.value('tali_negotiation_seconds_bucket', { stage: 'first_keyframe', le: '30' })).toBe(1);
    expect(during.value('tali_sessions', { state: 'streaming' })).toBe(1);
    expect(during.value('tali_sessions_opened_total')).toBe(1);
    expect(during.value('tali_mqtt_clients', { transport: 'tcp', role: 'device' })).toBe(1);
    expect(during.value('tali_mqtt_clients', { transport: 'internal', role: 'bridge' })).toBeGreaterThanOrEqual(1);
    expect(during.value('tali_signaling_messages_total', { direction: 'in', type: 'offer' })).toBe(1);
    expect(during.value('tali_signaling_messages_total', { direction: 'out', type: 'answer' })).toBe(1);
    expect(during.value('tali_rtp_received_packets_total', { kind: 'video' })).toBeGreaterThan(0);
    expect(during.value('tali_rtp_received_bytes_total', { kind: 'video' })).toBeGreaterThan(1000);
    expect(during.value('tali_keyframe_requests_total', { reason: 'session' })).toBe(1);
    expect(during.value('tali_keyframes_received_total')).toBeGreaterThanOrEqual(1);
    expect(during.value('tali_build_info', { bridge_id: tb.bridge.config.bridgeId })).toBe(1);
    // Bounded cardinality: no label carries a device or session ID.
    for (const sample of during.samples) {
      for (const value of Object.values(sample.labels)) expect([camera.id, camera.sessionId]).not.toContain(value);
    }

    const closed = waitFor(session, 'closed');
    await camera.client.publishAsync(
      tb.bridge.topics.device('cam1', 'up'),
      JSON.stringify({ v: 1, type: 'bye', sessionId: camera.sessionId, seq: 2, ts: Date.now(), reason: 'normal' }),
      { qos: 1 },
    );
    await closed;
    const after = await scrape(`${base}/metrics`);
    expect(after.value('tali_sessions', { state: 'streaming' })).toBe(0);
    expect(after.value('tali_sessions_closed_total', { reason: 'normal' })).toBe(1);
    const audioPackets = after.value('tali_rtp_received_packets_total', { kind: 'audio' }) as number;
    expect(audioPackets).toBeGreaterThan(0);
    expect(audioPackets).toBeLessThanOrEqual(session.stats.tracks.find((t) => t.kind === 'audio')!.packets);
  });

  it('the session timeline is published, retained, on the device metrics topic at milestones and on close', async () => {
    const tb = await startBridge();
    const secret = await tb.bridge.credentials.add('cam1', 'device');
    const opened = waitFor<[Session]>(tb.bridge.answerer, 'session');
    const camera = await startStreamingCamera({ url: tb.bridge.mqttUrl, id: 'cam1', secret });
    const [session] = await opened;
    if (session.stats.timeline.firstKeyframe === undefined) await waitFor(session, 'keyframe');
    const closed = waitFor(session, 'closed');
    await camera.stop();
    await session.close('normal'); // as the bridge would on its bye; no need to wait for the media timeout
    await closed;

    // A viewer that subscribes afterwards still gets the last timeline: it is retained.
    const viewerSecret = await tb.bridge.credentials.add('dash', 'viewer');
    const viewer = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'dash', username: 'dash', password: viewerSecret });
    const inbox = new Inbox(viewer);
    try {
      await viewer.subscribeAsync(tb.bridge.topics.allDevices('metrics'), { qos: 1 });
      const json = await inbox.next((m) => m.type === 'metrics' && m.state === 'closed', 5000, 'retained metrics');
      const message = decode('metrics', JSON.stringify(json));
      expect(message).toMatchObject({ sessionId: camera.sessionId, bridgeId: tb.bridge.config.bridgeId, closeReason: 'normal' });
      expect(Object.keys(message.timeline)).toEqual(
        expect.arrayContaining(['offer', 'answer', 'iceConnected', 'connected', 'firstRtp', 'firstKeyframe', 'closed']),
      );
      expect(message.tracks).toEqual([expect.objectContaining({ kind: 'video', codec: 'VP8', keyframes: expect.any(Number) })]);
      expect(message.tracks[0]!.packets).toBeGreaterThan(0);
    } finally {
      await viewer.endAsync(true);
    }
  });

  it('counts authentication failures and refused messages by code', async () => {
    const tb = await startBridge();
    await tb.bridge.credentials.add('cam1', 'device');
    await expect(connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'cam1', username: 'cam1', password: 'wrong' })).rejects.toThrow();
    const cam = await connectRawDevice(tb, 'mqtt', 'cam2');
    const rejected = waitFor(tb.bridge.answerer, 'rejected');
    await cam.send('not json');
    await rejected;
    const metrics = await scrape(`http://127.0.0.1:${tb.bridge.httpPort}/metrics`);
    expect(metrics.value('tali_auth_failures_total', { transport: 'tcp' })).toBe(1);
    expect(metrics.value('tali_errors_total', { code: 'TALI_ERR_MALFORMED_JSON' })).toBe(1);
    expect(metrics.value('tali_signaling_messages_total', { direction: 'out', type: 'error' })).toBe(1);
  });

  it('/healthz answers; /readyz is 200 when ready and 503 with a reason when at the session limit', async () => {
    const tb = await startBridge({ maxSessions: 1 });
    const base = `http://127.0.0.1:${tb.bridge.httpPort}`;
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('ok\n');
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, checks: { broker: 'ok', answerer: 'ok', shutdown: 'ok' } });

    const secret = await tb.bridge.credentials.add('cam1', 'device');
    await startStreamingCamera({ url: tb.bridge.mqttUrl, id: 'cam1', secret });
    const full = await fetch(`${base}/readyz`);
    expect(full.status).toBe(503);
    expect(await full.json()).toMatchObject({ ready: false, reason: 'sessions: at maxSessions (1)' });
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
  });
});
