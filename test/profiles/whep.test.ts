/**
 * WHEP playback (draft-ietf-wish-whep-03) with a werift player written from the draft alone (fetch + werift, no tali
 * client code): POST offer → 201 answer + Location + ETag, PATCH trickle with If-Match, DELETE; CORS preflight and
 * discovery; a Bearer viewer token scoped to the device (403 another camera, 401 expired or missing); the session
 * goes through the relay (keyframe on join, maxViewers, viewer metrics) and ends with its token or its user.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { RTCPeerConnection, RTCRtpCodecParameters } from 'werift';
import { parseSdpFragment, SdpFragmentError } from '../../src/profiles/whep/sdpfrag.ts';
import { startsKeyframe } from '../../src/webrtc/keyframe.ts';
import { parse } from '../ops/prometheus.ts';
import { startBridge, type TestBridge } from '../helpers/bridge.ts';
import { until, withTimeout } from '../helpers/wait.ts';
import { startCamera } from '../devices/helpers.ts';
import { viewerToken } from './helpers.ts';


/** A WHEP player: werift, a recvonly offer with everything gathered, fetch. */
async function player(codec: 'VP8' | 'H264' = 'VP8') {
  const pc = new RTCPeerConnection({
    codecs: {
      video: [new RTCRtpCodecParameters({ mimeType: `video/${codec}`, clockRate: 90000, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }], ...(codec === 'H264' && { parameters: 'packetization-mode=1;profile-level-id=42e01f;level-asymmetry-allowed=1' }) })],
      audio: [new RTCRtpCodecParameters({ mimeType: 'audio/PCMU', clockRate: 8000, channels: 1, payloadType: 0 })],
    },
  });
  onTestFinished(() => pc.close());
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const video: { keyframes: number; packets: number } = { keyframes: 0, packets: 0 };
  pc.onTrack.subscribe((track) => {
    if (track.kind !== 'video') return;
    track.onReceiveRtp.subscribe((rtp) => {
      video.packets++;
      if (startsKeyframe(codec, rtp.payload)) video.keyframes++;
    });
  });
  await pc.setLocalDescription(await pc.createOffer());
  const state = { current: pc.connectionState };
  pc.connectionStateChange.subscribe((s) => (state.current = s));
  return { pc, offer: pc.localDescription?.sdp ?? '', video, state };
}

/** What a browser sends before a cross-origin DELETE with a Bearer token (Fetch: CORS-preflight fetch); an ok status passes. */
async function expectDeletePreflight(location: string) {
  const preflight = await fetch(location, { method: 'OPTIONS', headers: { origin: 'https://player.example', 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'authorization' } });
  expect(preflight.status).toBe(204);
  expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
  expect(preflight.headers.get('access-control-allow-methods')).toMatch(/DELETE/);
  expect(preflight.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
  expect(preflight.headers.get('allow')).toBe('GET, HEAD, PATCH, DELETE, OPTIONS');
  expect(preflight.headers.get('accept-patch')).toBe('application/trickle-ice-sdpfrag');
}

function post(tb: TestBridge, deviceId: string, body: string, headers: Record<string, string>) {
  return fetch(`http://127.0.0.1:${tb.bridge.httpPort}/whep/${deviceId}`, { method: 'POST', headers: { 'content-type': 'application/sdp', ...headers }, body });
}

async function watching(tb: TestBridge, bearer: string, deviceId = 'cam1') {
  const p = await player();
  const res = await post(tb, deviceId, p.offer, { authorization: `Bearer ${bearer}` });
  expect(res.status, await res.clone().text()).toBe(201);
  const answer = await res.text();
  await p.pc.setRemoteDescription({ type: 'answer', sdp: answer });
  const location = new URL(res.headers.get('location') as string, `http://127.0.0.1:${tb.bridge.httpPort}`).toString();
  return { ...p, res, answer, location, etag: res.headers.get('etag') as string };
}

describe('trickle-ice-sdpfrag (RFC 8840 §4.4)', () => {
  it('candidates with their m-line and mid, credentials, end of candidates; unusable candidates dropped, malformed refused', () => {
    const frag = parseSdpFragment('a=ice-options:trickle ice2\r\na=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n'
      + 'a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\na=candidate:3 1 udp 1 host.example 1 typ host\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n'
      + 'a=candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active\r\na=end-of-candidates\r\n');
    expect(frag).toEqual({
      ufrag: 'EsAw',
      pwd: 'P2uYro0UCOQ4zxjKXaWCBui1',
      candidates: [
        { candidate: 'candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1', sdpMid: '0', sdpMLineIndex: 0 },
        { candidate: 'candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active', sdpMid: '1', sdpMLineIndex: 1 },
      ],
      endOfCandidates: true,
    });
    for (const bad of ['hello', 'a=candidate:x', `a=candidate:1 1 udp 1 192.0.2.1 1 typ host ${'x'.repeat(600)}`]) expect(() => parseSdpFragment(bad), bad).toThrow(SdpFragmentError);
  });
});

describe('WHEP', () => {
  it('plays a camera: 201 with a sendonly answer (every candidate inside), Location, ETag; keyframes from the relay; DELETE ends it', async () => {
    const tb = await startBridge({ iceServers: 'stun:stun.example.net:3478' });
    await startCamera(tb, 'mqtt', { codec: 'VP8' });
    await tb.bridge.credentials.add('alice', 'viewer');
    const w = await watching(tb, await viewerToken(tb, 'alice', ['cam1']));
    expect(w.res.headers.get('content-type')).toBe('application/sdp');
    expect(w.location).toMatch(/\/whep\/cam1\/[A-Za-z0-9_-]{22}$/);
    expect(w.etag).toMatch(/^"[^"]+"$/);
    expect(w.res.headers.get('link')).toBe('<stun:stun.example.net:3478>; rel="ice-server"');
    expect(w.res.headers.get('access-control-allow-origin')).toBe('*');
    expect(w.res.headers.get('access-control-expose-headers')).toMatch(/Location.*ETag/);
    expect(w.answer).toMatch(/^a=sendonly/m);
    expect(w.answer).toMatch(/^a=candidate:/m);
    await withTimeout(until(() => w.video.keyframes >= 1, 10_000, 'a keyframe'), 11_000, 'a keyframe at the WHEP player');
    expect(tb.bridge.relay.viewers.size).toBe(1);
    const samples = parse(await tb.bridge.metrics.render());
    expect(samples.find((s) => s.name === 'tali_viewers')?.value).toBe(1);

    await expectDeletePreflight(w.location);
    const deleted = await fetch(w.location, { method: 'DELETE', headers: { authorization: `Bearer ${await viewerToken(tb, 'alice', ['cam1'])}` } });
    expect(deleted.status).toBe(200);
    await until(() => tb.bridge.relay.viewers.size === 0, 5000, 'the viewer session to end');
    // A browser player cleaning up a session that already ended: its preflight still passes, the DELETE gets a
    // 404 it can read (CORS headers on it), not a CORS failure.
    await expectDeletePreflight(w.location);
    const again = await fetch(w.location, { method: 'DELETE', headers: { origin: 'https://player.example', authorization: `Bearer ${await viewerToken(tb, 'alice', ['cam1'])}` } });
    expect(again.status).toBe(404);
    expect(again.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('a token for another camera: 403; expired, forged or missing: 401 with WWW-Authenticate: Bearer; Basic is not enough', async () => {
    const tb = await startBridge();
    await startCamera(tb, 'mqtt');
    const secret = await tb.bridge.credentials.add('alice', 'viewer');
    const { offer } = await player();
    const other = await post(tb, 'cam1', offer, { authorization: `Bearer ${await viewerToken(tb, 'alice', ['cam2'])}` });
    expect(other.status).toBe(403);
    expect(await other.json()).toMatchObject({ error: 'TALI_ERR_FORBIDDEN' });
    for (const authorization of [`Bearer ${await viewerToken(tb, 'alice', ['cam1'], -1)}`, `Bearer ${(await viewerToken(tb, 'alice', ['cam1'])).slice(0, -2)}xx`, undefined, `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}`]) {
      const res = await post(tb, 'cam1', offer, authorization ? { authorization } : {});
      expect(res.status, authorization).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    }
    expect(tb.bridge.relay.viewers.size).toBe(0);
  });

  it('refuses what is not an offer (415, 400), unknown cameras (404), offline ones (409 Retry-After)', async () => {
    const tb = await startBridge();
    await tb.bridge.credentials.add('cam2', 'device');
    await tb.bridge.credentials.add('alice', 'viewer');
    const auth = { authorization: `Bearer ${await viewerToken(tb, 'alice', '*')}` };
    const { offer } = await player();
    expect((await fetch(`http://127.0.0.1:${tb.bridge.httpPort}/whep/cam2`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' })).status).toBe(415);
    expect((await post(tb, 'cam2', 'hello', auth)).status).toBe(400);
    expect((await post(tb, 'nope', offer, auth)).status).toBe(404);
    const offline = await post(tb, 'cam2', offer, auth);
    expect(offline.status).toBe(409);
    expect(offline.headers.get('retry-after')).toBe('5');
  });

  it('OPTIONS answers the CORS preflight with Accept-Post; HEAD says it is a WHEP endpoint', async () => {
    const tb = await startBridge();
    const base = `http://127.0.0.1:${tb.bridge.httpPort}/whep/cam1`;
    const preflight = await fetch(base, { method: 'OPTIONS', headers: { origin: 'https://player.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
    expect(preflight.status).toBe(200);
    expect(preflight.headers.get('accept-post')).toBe('application/sdp');
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-methods')).toMatch(/POST.*PATCH.*DELETE/);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/Authorization.*Content-Type.*If-Match/);
    const head = await fetch(base, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('application/sdp');
  });

  it('PATCH: trickle with If-Match → 204; without → 428; another ETag → 412; an ICE restart → 422; another user → 403', async () => {
    const tb = await startBridge();
    await startCamera(tb, 'mqtt');
    await tb.bridge.credentials.add('alice', 'viewer');
    await tb.bridge.credentials.add('bob', 'viewer');
    const w = await watching(tb, await viewerToken(tb, 'alice', ['cam1']));
    const auth = { authorization: `Bearer ${await viewerToken(tb, 'alice', ['cam1'])}`, 'content-type': 'application/trickle-ice-sdpfrag' };
    const frag = 'a=group:BUNDLE 0 1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host\r\na=candidate:2 1 udp 2122260223 host.example 61764 typ host\r\na=end-of-candidates\r\n';
    const trickled = await fetch(w.location, { method: 'PATCH', headers: { ...auth, 'if-match': w.etag }, body: frag });
    expect(trickled.status).toBe(204);
    expect(trickled.headers.get('etag')).toBeNull();
    expect((await fetch(w.location, { method: 'PATCH', headers: auth, body: frag })).status).toBe(428);
    expect((await fetch(w.location, { method: 'PATCH', headers: { ...auth, 'if-match': '"other"' }, body: frag })).status).toBe(412);
    expect((await fetch(w.location, { method: 'PATCH', headers: { ...auth, 'if-match': '*' }, body: 'a=ice-ufrag:new1\r\na=ice-pwd:newpasswordnewpassword12\r\n' })).status).toBe(422);
    expect((await fetch(w.location, { method: 'PATCH', headers: { ...auth, 'if-match': w.etag }, body: 'a=candidate:nonsense\r\n' })).status).toBe(400);
    expect((await fetch(w.location, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/sdp', 'if-match': w.etag }, body: frag })).status).toBe(415);
    const bob = await fetch(w.location, { method: 'DELETE', headers: { authorization: `Bearer ${await viewerToken(tb, 'bob', ['cam1'])}` } });
    expect(bob.status).toBe(403);
    expect(tb.bridge.relay.viewers.size).toBe(1);
  });

  it('the session ends when its token expires, and when its user is removed', async () => {
    const tb = await startBridge();
    await startCamera(tb, 'mqtt');
    await tb.bridge.credentials.add('alice', 'viewer');
    await tb.bridge.credentials.add('bob', 'viewer');
    const short = await watching(tb, await viewerToken(tb, 'alice', ['cam1'], 3));
    const long = await watching(tb, await viewerToken(tb, 'bob', ['cam1'], 300));
    await until(() => short.video.keyframes >= 1 && long.video.keyframes >= 1, 10_000, 'both playing');
    // The WHEP resource goes first; the relay's viewer once its peer has closed (after its DTLS close_notify left).
    await until(() => tb.bridge.services.whep.get(short.location.split('/').pop() as string) === undefined && tb.bridge.relay.viewers.size === 1, 6000, 'the expired session to end');
    // Nothing more reaches the expired player while the other one keeps receiving (datagrams already in flight when
    // it ended are read during the first wait).
    const more = async (n: number) => {
      const from = long.video.packets;
      await until(() => long.video.packets > from + n, 10_000, 'the other player to keep receiving');
    };
    await more(30);
    const stoppedAt = short.video.packets;
    await more(60);
    expect(short.video.packets).toBe(stoppedAt);
    await tb.bridge.credentials.remove('bob');
    await until(() => tb.bridge.relay.viewers.size === 0, 10_000, 'the removed user\'s session to end');
    expect(tb.logs.some((l) => l.event === 'disconnected' && l.identity === 'bob')).toBe(true);
  });

  it('same limits as MQTT viewers: at maxViewers the POST gets 503 with Retry-After', async () => {
    const tb = await startBridge({ maxViewers: 1 });
    await startCamera(tb, 'mqtt');
    await tb.bridge.credentials.add('alice', 'viewer');
    await watching(tb, await viewerToken(tb, 'alice', ['cam1']));
    const { offer } = await player();
    const full = await post(tb, 'cam1', offer, { authorization: `Bearer ${await viewerToken(tb, 'alice', ['cam1'])}` });
    expect(full.status).toBe(503);
    expect(full.headers.get('retry-after')).toBeTruthy();
    expect(await full.json()).toMatchObject({ error: 'TALI_ERR_SESSION_LIMIT' });
  });
});
