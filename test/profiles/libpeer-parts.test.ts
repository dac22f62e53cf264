/**
 * The libpeer adapter's parts without a bridge: the JSON-RPC edge (one encoder, one decoder), the SDP rewrites
 * (offer: packetization-mode; answer: what libpeer can read, fitted to its 4096-byte buffer, checked against the test
 * device's reading of libpeer's parser), and LibpeerPeer's calls (a busy device, a trickled answer, the state check).
 */
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { readLibpeerAnswer } from '../../devices/libpeer/answer-reader.ts';
import { LIBPEER_MQTT_BUFFER, packetBytes } from '../../src/profiles/libpeer/adapter.ts';
import { decodeResponse, encodeRequest, RpcDecodeError } from '../../src/profiles/libpeer/json-rpc.ts';
import { LibpeerPeer } from '../../src/profiles/libpeer/libpeer-peer.ts';
import { RpcChannel } from '../../src/profiles/libpeer/rpc-channel.ts';
import { fromLibpeerOffer, LIBPEER_MAX_CANDIDATES, LibpeerSdpError, toLibpeerAnswer } from '../../src/profiles/libpeer/sdp.ts';
import { until } from '../helpers/wait.ts';

const log = pino({ level: 'silent' });
const bytes = (s: string) => new TextEncoder().encode(s);

describe('JSON-RPC edge', () => {
  it('requests in libpeer order, ids 1…INT_MAX', () => {
    expect(encodeRequest('offer', 1)).toBe('{"jsonrpc":"2.0","method":"offer","id":1}');
    expect(encodeRequest('answer', 7, 'v=0\r\n')).toBe('{"jsonrpc":"2.0","method":"answer","params":"v=0\\r\\n","id":7}');
    expect(() => encodeRequest('state', 0)).toThrow(RangeError);
    expect(() => encodeRequest('state', 2 ** 31)).toThrow(RangeError);
  });

  it('decodes what libpeer sends, refuses anything else with RpcDecodeError', () => {
    expect(decodeResponse(bytes('{"jsonrpc":"2.0","id":3,"result":"completed"}'), 100)).toEqual({ id: 3, result: 'completed' });
    expect(decodeResponse(bytes('{"jsonrpc":"2.0","id":-1,"error":{"code":-32700,"message":"Parse error"}}'), 100)).toEqual({ id: -1, error: { code: -32700, message: 'Parse error' } });
    for (const bad of ['', '[]', 'null', '{"jsonrpc":"1.0","id":1,"result":""}', '{"jsonrpc":"2.0","id":"1","result":""}', '{"jsonrpc":"2.0","id":1}',
      '{"jsonrpc":"2.0","id":1,"result":"","error":{"code":1,"message":""}}', '{"jsonrpc":"2.0","id":1,"result":5}', '{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":""}}', '\u00ff']) {
      expect(() => decodeResponse(bytes(bad), 1000), bad).toThrow(RpcDecodeError);
    }
    expect(() => decodeResponse(bytes('{"jsonrpc":"2.0","id":1,"result":"xxxx"}'), 10)).toThrow(/limit/);
  });

  it('any byte string decodes or throws RpcDecodeError, nothing else (property)', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.json().map(bytes)), (payload) => {
      try {
        decodeResponse(payload, 1000);
      } catch (err) {
        expect(err).toBeInstanceOf(RpcDecodeError);
      }
    }));
  });
});

const ANSWER_HEAD = [
  'v=0', 'o=- 79876811 0 IN IP4 0.0.0.0', 's=-', 't=0 0', 'a=group:BUNDLE video audio', 'a=extmap-allow-mixed', 'a=msid-semantic:WMS *',
  'm=video 9 UDP/TLS/RTP/SAVPF 96', 'c=IN IP4 0.0.0.0', 'a=ice-ufrag:6525', 'a=ice-pwd:c58d9f4b2ccdc8357ee3a1', 'a=ice-options:trickle',
  'a=fingerprint:sha-256 FA:CE:00:44:EA:95:A1:06:AE:40:48:6B:D9:0A:A6:2B:8B:1B:EF:BE:0B:37:75:6B:71:6E:1D:73:AC:F4:D9:7A', 'a=setup:active',
  'a=recvonly', 'a=mid:video',
];
const ANSWER_TAIL = [
  'a=rtcp:9 IN IP4 0.0.0.0', 'a=rtcp-mux', 'a=ssrc:3931309902 cname:950ad2ac-e93a-4c15-bd97-8b2ab51a43f5', 'a=rtpmap:96 H264/90000', 'a=rtcp-fb:96 nack',
  'a=rtcp-fb:96 nack pli', 'a=fmtp:96 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1',
  'm=audio 9 UDP/TLS/RTP/SAVPF 8', 'c=IN IP4 0.0.0.0', 'a=ice-ufrag:6525', 'a=ice-pwd:c58d9f4b2ccdc8357ee3a1', 'a=setup:active', 'a=recvonly', 'a=mid:audio', 'a=rtcp-mux', 'a=rtpmap:8 PCMA/8000',
];
const answer = (candidates: string[]) => `${[...ANSWER_HEAD, ...candidates, 'a=end-of-candidates', ...ANSWER_TAIL].join('\r\n')}\r\n`;
const topic = '/public/cam-lp1/invoke';
const fitsDevice = (sdp: string) => packetBytes(topic, encodeRequest('answer', 2 ** 31 - 1, sdp)) <= LIBPEER_MQTT_BUFFER;

describe('SDP across the edge', () => {
  it('the offer gets packetization-mode=1 on H264 only, once', () => {
    const offer = 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=fmtp:96 profile-level-id=42e01f;level-asymmetry-allowed=1\r\na=rtpmap:96 H264/90000\r\na=rtpmap:97 VP8/90000\r\na=fmtp:97 x=1\r\n';
    const out = fromLibpeerOffer(offer);
    expect(out).toContain('a=fmtp:96 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1\r\n');
    expect(out).toContain('a=fmtp:97 x=1\r\n');
    expect(fromLibpeerOffer(out)).toBe(out);
  });

  it('the answer keeps at most 10 UDP IPv4 candidates, best first, distinct foundations', () => {
    const candidates = [
      ...Array.from({ length: 14 }, (_, i) => `a=candidate:${i} 1 udp ${2130706431 - i} 10.0.0.${i + 1} ${40000 + i} typ host`),
      'a=candidate:99 1 udp 2130706500 2001:db8::1 40100 typ host',
      'a=candidate:98 1 tcp 2130706600 10.0.1.1 9 typ host tcptype passive',
      'a=candidate:0 1 udp 2130706700 10.9.9.9 40200 typ host',
    ];
    const out = toLibpeerAnswer(answer(candidates), fitsDevice);
    const kept = out.match(/^a=candidate:.*$/gm) ?? [];
    expect(kept).toHaveLength(LIBPEER_MAX_CANDIDATES);
    expect(kept[0]).toBe('a=candidate:0 1 udp 2130706700 10.9.9.9 40200 typ host'); // best first: foundation 0 is this one
    expect(kept.join()).not.toMatch(/2001:db8|tcp|10\.0\.0\.1 |10\.0\.0\.11 /);
    expect(readLibpeerAnswer(out, { ufrag: '', pwd: '' })).toMatchObject({ candidates: 10, fingerprintOk: true, iceMangled: false });
  });

  it('a large answer is trimmed to fit libpeer\'s 4096-byte buffer; one that cannot fit is refused', () => {
    const big = answer(Array.from({ length: 10 }, (_, i) => `a=candidate:${i} 1 udp ${2130706431 - i} 10.0.0.${i + 1} ${40000 + i} typ host ${'x y '.repeat(25)}`))
      .replace('a=mid:audio', `a=mid:audio\r\n${Array.from({ length: 12 }, (_, i) => `a=extmap:${i} urn:ietf:params:rtp-hdrext:${'z'.repeat(150)}`).join('\r\n')}`);
    expect(fitsDevice(big)).toBe(false);
    const out = toLibpeerAnswer(big, fitsDevice);
    expect(fitsDevice(out)).toBe(true);
    expect(out).not.toMatch(/a=extmap/);
    expect(out).toMatch(/^a=candidate:0 /m);
    expect(() => toLibpeerAnswer(big, () => false)).toThrow(LibpeerSdpError);
    expect(() => toLibpeerAnswer(answer(['a=candidate:1 1 udp 1 2001:db8::1 1 typ host']), fitsDevice)).toThrow(/no UDP IPv4/);
  });

  it('whatever candidates the bridge has, what libpeer gets fits and never hits its parser\'s overflows (property)', () => {
    const ip4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
    const ip6 = fc.constantFrom('2001:db8::1', 'fe80::1', '::1');
    const candidate = fc.tuple(fc.stringMatching(/^[A-Za-z0-9+/]{1,32}$/), fc.constantFrom('udp', 'UDP', 'tcp'), fc.nat(2 ** 32 - 1), fc.oneof(ip4, ip6), fc.nat(65535), fc.constantFrom('host', 'srflx', 'relay', 'prflx'))
      .map(([f, t, p, a, port, type]) => `a=candidate:${f} 1 ${t} ${p} ${a} ${port} typ ${type}${type === 'host' ? '' : ' raddr 0.0.0.0 rport 0'}`);
    fc.assert(fc.property(fc.array(candidate, { minLength: 1, maxLength: 40 }), (candidates) => {
      let out: string;
      try {
        out = toLibpeerAnswer(answer(candidates), fitsDevice);
      } catch (err) {
        expect(err).toBeInstanceOf(LibpeerSdpError);
        return;
      }
      expect(fitsDevice(out)).toBe(true);
      const read = readLibpeerAnswer(out, { ufrag: '', pwd: '' }); // throws LibpeerCrash where libpeer would crash
      expect(read.candidates).toBeGreaterThanOrEqual(1);
    }));
  });
});

/** A device on the other end of an RpcChannel, answering as `respond` says. */
function fakeDevice(respond: (method: string, id: number) => string | undefined) {
  const requests: { method: string; id: number; params?: string }[] = [];
  const rpc: RpcChannel = new RpcChannel((payload) => {
    const req = JSON.parse(payload) as { method: string; id: number; params?: string };
    requests.push(req);
    const reply = respond(req.method, req.id);
    if (reply !== undefined) queueMicrotask(() => rpc.deliver(decodeResponse(bytes(reply), 100_000)));
  }, (payload) => packetBytes(topic, payload) <= LIBPEER_MQTT_BUFFER);
  return { rpc, requests };
}

describe('LibpeerPeer', () => {
  it('a device with a call in progress (−32603) is told to close, then asked again; end of candidates follows the offer', async () => {
    let busy = true;
    const { rpc, requests } = fakeDevice((method, id) => {
      if (method === 'offer' && busy) return `{"jsonrpc":"2.0","id":${id},"error":{"code":-32603,"message":"Internal error"}}`;
      if (method === 'close') busy = false;
      if (method === 'offer') return `{"jsonrpc":"2.0","id":${id},"result":"v=0\\r\\na=rtpmap:96 H264/90000\\r\\na=fmtp:96 profile-level-id=42e01f\\r\\n"}`;
      return `{"jsonrpc":"2.0","id":${id},"result":""}`;
    });
    const peer = new LibpeerPeer(rpc, log);
    const local: unknown[] = [];
    peer.onLocalCandidate = (c) => local.push(c);
    const sdp = await peer.createOffer();
    expect(requests.map((r) => r.method)).toEqual(['offer', 'close', 'offer']);
    expect(sdp).toContain('a=fmtp:96 profile-level-id=42e01f;packetization-mode=1');
    expect(local).toEqual([null]);
    await peer.close();
  });

  it('an answer without candidates waits for the trickled ones; the state check reports connected, then closed', async () => {
    let state = 'checking';
    const { rpc, requests } = fakeDevice((method, id) => (method === 'answer' ? undefined : `{"jsonrpc":"2.0","id":${id},"result":"${method === 'state' ? state : ''}"}`));
    const peer = new LibpeerPeer(rpc, log, { connecting: 20, connected: 50 });
    const states: string[] = [];
    peer.onStateChange = (s) => states.push(s);
    await peer.applyAnswer(answer([]));
    expect(requests).toEqual([]);
    peer.addRemoteCandidate({ candidate: 'candidate:1 1 udp 2130706431 10.0.0.1 40000 typ host' });
    peer.addRemoteCandidate(null);
    expect(requests[0]?.method).toBe('answer');
    expect(requests[0]?.params).toMatch(/^a=candidate:1 1 udp 2130706431 10\.0\.0\.1 40000 typ host\r$/m);
    state = 'completed';
    await until(() => states.includes('connected'), 5000, 'connected');
    state = 'closed';
    await until(() => states.includes('closed'), 10_000, 'closed');
    await peer.close();
    expect(requests.at(-1)?.method).toBe('close');
  });
});
