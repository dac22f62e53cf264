/**
 * Media setup any peer can rely on (issue 12): an offer with a data channel streams (the bridge refuses the SCTP
 * section with port 0 instead of waiting for SCTP), trickled bridge candidates carry sdpMid and sdpMLineIndex, and
 * media addresses follow --media-addresses and --announce-addresses.
 */
import { networkInterfaces } from 'node:os';
import { RTCPeerConnection } from 'werift';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Session } from '../../src/answerer/session.ts';
import { codecParameters } from '../../src/webrtc/codecs.ts';
import { withoutDefaultStun } from '../../src/webrtc/default-stun.ts';
import { resolveMediaAddresses } from '../../src/webrtc/media-addresses.ts';
import { extractCandidates } from '../../src/webrtc/sdp.ts';
import { Bridge } from '../../src/bridge.ts';
import { startBridge, type TestBridge } from '../helpers/bridge.ts';
import { connectRawDevice } from '../helpers/raw-device.ts';
import { VideoSource } from '../../devices/camera/media/video-source.ts';
import { waitFor, withTimeout } from '../helpers/wait.ts';

/** A werift camera that offers VP8 and a data channel (before or after the video), streams once connected. */
async function offerWithDataChannel(
  tb: TestBridge,
  order: 'data-first' | 'media-first',
  options: { sctp: boolean },
): Promise<{ answer: string; session: Session }> {
  const cam = await connectRawDevice(tb, 'mqtt', `dc-${order}`);
  const pc = new RTCPeerConnection({ codecs: { video: [codecParameters('VP8')] } });
  onTestFinished(() => pc.close());
  if (order === 'data-first') pc.createDataChannel('telemetry');
  const video = pc.addTransceiver('video', { direction: 'sendonly' });
  if (order === 'media-first') pc.createDataChannel('telemetry');
  const offer = await pc.createOffer();
  withoutDefaultStun(pc);
  await pc.setLocalDescription(offer);
  const sessionId = `dc-${order}-0001`;
  const opened = waitFor<[Session]>(tb.bridge.answerer, 'session', (s) => s.sessionId === sessionId);
  await cam.send(cam.message('offer', sessionId, 1, { sdp: pc.localDescription?.sdp }));
  const [session] = await opened;
  const answer = await cam.down.next((m) => m.type === 'answer', 5000, 'answer');
  const connected = new Promise<void>((resolve) => pc.connectionStateChange.subscribe((s) => s === 'connected' && resolve()));
  if (!options.sctp) withoutSctp(pc);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp as string });
  await connected;
  const source = new VideoSource({ codec: 'VP8' });
  onTestFinished(() => source.stop());
  source.start((packet) => void video.sender.sendRtp(packet));
  return { answer: answer.sdp as string, session };
}

/**
 * Firmware that offers a data channel it never uses: no SCTP INIT from it, and no answer to the bridge's (werift
 * internals, for this test only: its data channel sends nothing).
 */
function withoutSctp(pc: RTCPeerConnection): void {
  const internals = pc as unknown as { sctpManager: { connectSctp: () => Promise<void> }; dtlsTransports: { sendData: (d: Buffer) => Promise<void> }[] };
  internals.sctpManager.connectSctp = async () => {};
  for (const transport of internals.dtlsTransports) transport.sendData = async () => {};
}

describe('an offer with a data channel', () => {
  // werift held `connected` until the SCTP association was up, which a camera that offers a data channel by
  // default (libpeer) may never bring up: tali dropped the session with bye "timeout" although media flowed. The
  // section is answered (no port 0: werift's and aiortc's offerers reject such answers) and not waited on.
  it.each(['media-first', 'data-first'] as const)('streams (%s), without waiting for SCTP', async (order) => {
    const tb = await startBridge();
    const { answer, session } = await offerWithDataChannel(tb, order, { sctp: false });
    if (session.state !== 'streaming') await waitFor(session, 'state', (s) => s === 'streaming');
    expect(session.state).toBe('streaming');
    const mlines = (answer.match(/^m=\S+ \d+/gm) ?? []).map((m) => m.slice(2)).sort();
    expect(mlines).toEqual(['application 9', 'video 9']);
  });
});

describe('bridge candidates', () => {
  it('trickled ones carry both sdpMid and sdpMLineIndex', () => {
    const sdp = 'v=0\r\nm=video 9 X 96\r\na=mid:v0\r\na=candidate:1 1 udp 1 192.0.2.1 4000 typ host\r\nm=audio 9 X 0\r\na=mid:a1\r\na=candidate:2 1 udp 1 192.0.2.1 4002 typ host\r\n';
    expect(extractCandidates(sdp).candidates).toEqual([
      { candidate: 'candidate:1 1 udp 1 192.0.2.1 4000 typ host', sdpMid: 'v0', sdpMLineIndex: 0 },
      { candidate: 'candidate:2 1 udp 1 192.0.2.1 4002 typ host', sdpMid: 'a1', sdpMLineIndex: 1 },
    ]);
  });
});

describe('media addresses', () => {
  const hostCandidates = (sdp: string) => [...sdp.matchAll(/^a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ host/gm)].map((m) => m[1]);

  it('--media-addresses limits the candidates, --announce-addresses adds some on the same ports, media flows', async () => {
    // werift never gathers loopback addresses: use this machine's first other IPv4 address.
    const local = Object.values(networkInterfaces()).flat().find((info) => info?.family === 'IPv4' && !info.internal)?.address;
    expect(local).toBeDefined();
    const tb = await startBridge({ mediaAddresses: [local], announceAddresses: ['203.0.113.7'] });
    const { answer, session } = await offerWithDataChannel(tb, 'media-first', { sctp: true });
    expect(new Set(hostCandidates(answer))).toEqual(new Set([local, '203.0.113.7']));
    if (session.state !== 'streaming') await waitFor(session, 'state', (s) => s === 'streaming');
  });

  it('resolves interface names and addresses to one address per family, and says what is wrong', () => {
    const ifaces = {
      lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }, { address: '::1', family: 'IPv6', internal: true }],
      eth0: [{ address: '192.0.2.10', family: 'IPv4' }, { address: 'fe80::1', family: 'IPv6' }, { address: '2001:db8::10', family: 'IPv6' }],
      eth1: [{ address: '198.51.100.5', family: 'IPv4' }],
    } as unknown as Parameters<typeof resolveMediaAddresses>[1];
    expect(resolveMediaAddresses([], ifaces)).toBeUndefined();
    expect(resolveMediaAddresses(['eth0'], ifaces)).toEqual({ udp4: '192.0.2.10', udp6: '2001:db8::10' });
    expect(resolveMediaAddresses(['198.51.100.5'], ifaces)).toEqual({ udp4: '198.51.100.5' });
    expect(() => resolveMediaAddresses(['wlan0'], ifaces)).toThrow(/no network interface named wlan0/);
    expect(() => resolveMediaAddresses(['192.0.2.99'], ifaces)).toThrow(/not an address of this machine/);
    expect(() => resolveMediaAddresses(['127.0.0.1'], ifaces)).toThrow(/loopback/);
    expect(() => resolveMediaAddresses(['eth0', 'eth1'], ifaces)).toThrow(/one IPv4 address, got 192.0.2.10, 198.51.100.5/);
  });

  it('a bridge whose media address does not exist does not start', async () => {
    await expect(Bridge.start({ config: { host: '127.0.0.1', mqttPort: 0, httpPort: 0, mediaAddresses: ['no-such-if0'] } })).rejects.toThrow(
      /no network interface named no-such-if0/,
    );
  });
});

describe('a werift DTLS client (a werift camera, the Node viewer)', () => {
  /** A DTLS record carrying a ClientHello: content type 22 (handshake), msg_type 1 after the 13-byte header (RFC 6347 §4.1, §4.2.2). */
  const isClientHello = (data: Buffer) => data[0] === 22 && data[13] === 1;

  it('sends its ClientHello as soon as DTLS starts, not after a fixed wait ([werift-dtls-hello-now])', async () => {
    const tb = await startBridge();
    const cam = await connectRawDevice(tb, 'mqtt', 'hello-now');
    const pc = new RTCPeerConnection({ codecs: { video: [codecParameters('VP8')] } });
    onTestFinished(() => pc.close());
    const video = pc.addTransceiver('video', { direction: 'sendonly' });
    const offer = await pc.createOffer();
    withoutDefaultStun(pc);
    await pc.setLocalDescription(offer);
    const dtls = video.dtlsTransport;
    const ice = dtls.iceTransport.connection as unknown as { send: (data: Buffer) => Promise<void> };
    let helloSent = false;
    const send = ice.send.bind(ice);
    ice.send = (data) => {
      if (isClientHello(data)) helloSent = true;
      return send(data);
    };
    // Whether the ClientHello was out by the end of the turn in which DTLS started (checked before any timer or I/O).
    const sentInTurn = new Promise<boolean>((resolve) => {
      dtls.onStateChange.subscribe((state) => state === 'connecting' && setImmediate(() => resolve(helloSent)));
    });
    const connected = new Promise<void>((resolve) => pc.connectionStateChange.subscribe((s) => s === 'connected' && resolve()));
    await cam.send(cam.message('offer', 'hello-now-0001', 1, { sdp: pc.localDescription?.sdp }));
    const answer = await cam.down.next((m) => m.type === 'answer', 5000, 'answer');
    // The bridge answers a:setup:passive (src/webrtc/peer.ts): the camera is the DTLS client.
    expect(answer.sdp as string).toMatch(/^a=setup:passive/m);
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp as string });
    expect(await withTimeout(sentInTurn, 10_000, 'DTLS to start')).toBe(true);
    await withTimeout(connected, 10_000, 'connected');
  });
});
