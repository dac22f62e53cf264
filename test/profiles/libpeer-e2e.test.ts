/**
 * A libpeer device (devices/libpeer: libpeer's MQTT, JSON-RPC and SDP on the wire, werift underneath) against a real
 * bridge over MQTT/TLS: it streams H264 + PCMA through the same answerer, relay, recorder and metrics as a native
 * camera; a viewer receives its keyframes; its status card follows its connection; its calls end and start again
 * (three in a row, ended by the bridge and by the device) and it survives a reconnect.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { CameraSession as Session } from '../../src/answerer/session.ts';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { NodeViewer } from '../../src/viewer/node-viewer.ts';
import { probe, SKIP_WITHOUT_FFPROBE } from '../ops/ffprobe.ts';
import { parse } from '../ops/prometheus.ts';
import { until, waitFor, withTimeout } from '../helpers/wait.ts';
import { startLibpeerDevice, tlsBridge } from './helpers.ts';
import type { TestBridge } from '../helpers/bridge.ts';

const ID = 'cam-lp1';

async function watcher(tb: TestBridge): Promise<NodeViewer> {
  const secret = await tb.bridge.credentials.add('alice', 'viewer', { replace: true });
  const viewer = new NodeViewer({ url: tb.bridge.mqttsUrl as string, user: 'alice', password: secret, deviceId: ID, tls: { rejectUnauthorized: false } });
  onTestFinished(() => viewer.stop());
  await viewer.start();
  return viewer;
}

/** The answerer's next session of the device that reaches `streaming` (media arrives). */
function nextStreamingSession(tb: TestBridge, after?: string): Promise<Session> {
  return new Promise((resolve) => {
    const onSession = (session: Session) => {
      if (session.deviceId !== ID || session.sessionId === after) return;
      session.on('state', (state) => {
        if (state !== 'streaming') return;
        tb.bridge.answerer.off('session', onSession);
        resolve(session);
      });
    };
    tb.bridge.answerer.on('session', onSession);
    const live = tb.bridge.answerer.sessions.get(ID);
    if (live && live.sessionId !== after && live.state === 'streaming') {
      tb.bridge.answerer.off('session', onSession);
      resolve(live);
    }
  });
}

function videoKeyframes(viewer: NodeViewer): number {
  return viewer.summary().tracks.find((t) => t.kind === 'video')?.keyframes ?? 0;
}

async function cardStates(tb: TestBridge): Promise<string[]> {
  const secret = await tb.bridge.credentials.add('ops', 'admin');
  const client = await connectMqtt({ target: tb.bridge.mqttsUrl as string, clientId: 'ops', username: 'ops', password: secret, tls: { rejectUnauthorized: false } });
  onTestFinished(() => client.endAsync(true));
  const states: string[] = [];
  client.on('message', (_topic, payload) => payload.length > 0 && states.push((JSON.parse(payload.toString()) as { state: string }).state));
  await client.subscribeAsync(tb.bridge.topics.device(ID, 'status'), { qos: 1 });
  return states;
}

describe('libpeer device end to end', () => {
  it.skipIf(SKIP_WITHOUT_FFPROBE)('streams H264 + PCMA for longer than its 10 s binding-request timeout; a viewer gets keyframes; it is recorded', async () => {
    const tb = await tlsBridge({ record: ID });
    const states = await cardStates(tb);
    const { device } = await startLibpeerDevice(tb, ID);
    const session = await withTimeout(nextStreamingSession(tb), 15_000, 'the libpeer session streaming');
    expect(session.codecs).toEqual([{ kind: 'video', codec: 'H264' }, { kind: 'audio', codec: 'PCMA' }]);
    expect(device.stats.requests.slice(0, 2)).toEqual(['offer', 'answer']);
    expect(states).toContain('online');

    const viewer = await watcher(tb);
    await until(() => videoKeyframes(viewer) >= 2 && (viewer.summary().tracks.find((t) => t.kind === 'audio')?.packets ?? 0) > 50, 15_000, 'keyframes and audio at the viewer');
    // libpeer closes a call that gets no STUN binding request for 10 s: the bridge's consent checks keep it up.
    const started = performance.now();
    await until(() => performance.now() - started > 12_000, 14_000, '12 s of streaming');
    expect(device.state).toBe('completed');
    expect(device.stats.states).not.toContain('closed');
    expect(tb.bridge.answerer.sessions.get(ID)).toBe(session);
    expect(device.stats.requests.filter((m) => m === 'state').length).toBeGreaterThanOrEqual(2); // the health check
    expect(device.stats.keyframeRequests).toBeGreaterThanOrEqual(1); // PLI on the session's first track, the recorder, the viewer

    const samples = parse(await tb.bridge.metrics.render());
    expect(samples.find((s) => s.name === 'tali_sessions' && s.labels.state === 'streaming')?.value).toBe(1);
    await device.stop();
    await viewer.stop();
    await tb.bridge.recorder.close();
    const dir = join(tb.dataDir, 'recordings', ID);
    const [name] = await readdir(dir);
    const info = await probe(join(dir, name as string));
    expect(info.startsOnKeyframe).toBe(true);
    expect(info.streams.map((s) => s.codec)).toEqual(['h264', 'pcm_s16le']);
    expect(info.streams[0]?.frames).toBeGreaterThan(200);
    await until(() => states.at(-1) === 'offline', 5000, 'the offline card');
  });

  it('three calls in a row (ended by the bridge, then by the device) and a reconnect: the viewer keeps receiving', async () => {
    const tb = await tlsBridge();
    const states = await cardStates(tb);
    const { device } = await startLibpeerDevice(tb, ID);
    const first = await withTimeout(nextStreamingSession(tb), 15_000, 'call 1');
    const viewer = await watcher(tb);
    await until(() => videoKeyframes(viewer) >= 1, 15_000, 'a keyframe at the viewer');

    // Call 2: the bridge ends call 1 (bye "timeout"): libpeer is told `close`, then asked for a new offer.
    const secondStreaming = nextStreamingSession(tb, first.sessionId);
    void first.close('timeout');
    const second = await withTimeout(secondStreaming, 15_000, 'call 2');
    expect(device.stats.requests).toEqual(expect.arrayContaining(['close']));
    let seen = videoKeyframes(viewer);
    await until(() => videoKeyframes(viewer) > seen, 10_000, 'a keyframe of call 2 at the viewer');

    // Call 3: the device ends call 2 on its own (as after 10 s without binding requests); the state check sees it.
    const thirdStreaming = nextStreamingSession(tb, second.sessionId);
    const ended = waitFor(second, 'closed', () => true, 10_000);
    device.pc.close();
    await ended;
    const third = await withTimeout(thirdStreaming, 15_000, 'call 3');
    seen = videoKeyframes(viewer);
    await until(() => videoKeyframes(viewer) > seen, 10_000, 'a keyframe of call 3 at the viewer');

    // The device's connection dies and it connects again: offline (its will), online, and call 4.
    const fourthStreaming = nextStreamingSession(tb, third.sessionId);
    expect(await device.reconnect()).toBe(0);
    await withTimeout(fourthStreaming, 15_000, 'call 4 after the reconnect');
    seen = videoKeyframes(viewer);
    await until(() => videoKeyframes(viewer) > seen, 10_000, 'a keyframe after the reconnect at the viewer');
    expect(states.slice(-2)).toEqual(['offline', 'online']);
    expect(viewer.summary().state).toBe('connected');
    expect(device.stats.calls).toBe(4);
    expect(device.signaling?.crashed).toBeUndefined();
  });

  it('with idleStopMs the bridge closes the call when its last viewer leaves (`close`) and asks for an offer when one comes', async () => {
    const tb = await tlsBridge({ idleStopMs: 300 });
    const { device } = await startLibpeerDevice(tb, ID);
    const first = await withTimeout(nextStreamingSession(tb), 15_000, 'call 1');
    const viewer = await watcher(tb);
    await until(() => videoKeyframes(viewer) >= 1, 10_000, 'a keyframe at the viewer');
    const ended = withTimeout(new Promise((resolve) => first.once('closed', resolve)), 10_000, 'the unwatched call to end');
    await viewer.stop();
    await ended;
    await withTimeout(device.until((d) => d.stats.requests.includes('close') && d.state === 'closed'), 10_000, 'libpeer told to close');
    const offers = device.stats.requests.filter((m) => m === 'offer').length;
    const second = nextStreamingSession(tb, first.sessionId);
    const again = await watcher(tb);
    await withTimeout(second, 15_000, 'call 2, for the new viewer');
    expect(device.stats.requests.filter((m) => m === 'offer').length).toBe(offers + 1);
    await until(() => videoKeyframes(again) >= 1, 10_000, 'a keyframe at the new viewer');
  });
});
