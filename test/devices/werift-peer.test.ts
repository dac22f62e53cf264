/**
 * WeriftPeer against a plain werift answerer on loopback: it connects, and reports keyframe requests for its video
 * stream, whether PLI (RFC 4585 §6.3.1) or FIR (RFC 5104 §4.3.1), once per FIR sequence number.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { PictureLossIndication, RTCPeerConnection, RtcpPayloadSpecificFeedback, type RtcpPacket } from 'werift';
import { WeriftPeer } from '../../devices/sdk/werift-peer.ts';
import { codecParameters } from '../../src/webrtc/codecs.ts';
import { withTimeout } from '../helpers/wait.ts';
import { withoutDefaultStun } from '../../src/webrtc/default-stun.ts';

/** An RTCP FIR (PSFB, FMT 4): media SSRC 0 and the target in the FCI, as RFC 5104 §4.3.1.2 says. */
function fir(ssrc: number, sequenceNumber: number): RtcpPacket {
  const bytes = Buffer.alloc(20);
  bytes.writeUInt8(0x80 | 4, 0); // V=2, FMT=4
  bytes.writeUInt8(206, 1); // PT=PSFB
  bytes.writeUInt16BE(20 / 4 - 1, 2);
  bytes.writeUInt32BE(1, 4); // packet sender SSRC
  bytes.writeUInt32BE(0, 8); // media source SSRC: unused
  bytes.writeUInt32BE(ssrc, 12);
  bytes.writeUInt8(sequenceNumber, 16);
  return { serialize: () => bytes } as unknown as RtcpPacket; // werift's FIR class is not exported
}

function pli(ssrc: number): RtcpPacket {
  return new RtcpPayloadSpecificFeedback({ feedback: new PictureLossIndication({ senderSsrc: 1, mediaSsrc: ssrc }) });
}

async function connectedPair(): Promise<{ camera: WeriftPeer; bridge: RTCPeerConnection }> {
  const camera = new WeriftPeer({ iceServers: [], video: 'H264', audio: 'PCMA' });
  onTestFinished(() => camera.close());
  const bridge = new RTCPeerConnection({ codecs: { video: [codecParameters('H264')], audio: [codecParameters('PCMA')] } });
  onTestFinished(() => bridge.close());
  const connected = new Promise<void>((resolve) => {
    camera.onStateChange = (state) => state === 'connected' && resolve();
  });
  const bridgeConnected = new Promise<void>((resolve) => {
    bridge.connectionStateChange.subscribe((state) => state === 'connected' && resolve());
  });
  await bridge.setRemoteDescription({ type: 'offer', sdp: await camera.createOffer() });
  const answer = await bridge.createAnswer();
  withoutDefaultStun(bridge);
  await bridge.setLocalDescription(answer);
  await camera.applyAnswer(bridge.localDescription?.sdp ?? '');
  await withTimeout(Promise.all([connected, bridgeConnected]), 10_000, 'both peers connected');
  return { camera, bridge };
}

describe('WeriftPeer', () => {
  it('reports PLI and FIR for its video stream, and a repeated FIR only once', async () => {
    const { camera, bridge } = await connectedPair();
    const rtcp = bridge.dtlsTransports[0];
    if (rtcp === undefined) throw new Error('no DTLS transport');
    let requests = 0;
    let wake: () => void = () => {};
    camera.onKeyframeRequest = () => {
      requests++;
      wake();
    };
    // Each step waits for the request it causes; RTCP on loopback arrives in order, so by then any request that
    // an earlier (ignored) packet wrongly caused has been counted too.
    const request = (what: string) => withTimeout(new Promise<void>((resolve) => (wake = resolve)), 5000, what);

    let next = request('FIR 1');
    await rtcp.sendRtcp([fir(camera.videoSsrc, 1)]);
    await next;
    next = request('FIR 2');
    await rtcp.sendRtcp([fir(camera.videoSsrc, 1)]); // retransmission of FIR 1: no new keyframe
    await rtcp.sendRtcp([pli(camera.videoSsrc + 1)]); // another stream's PLI
    await rtcp.sendRtcp([fir(camera.videoSsrc, 2)]);
    await next;
    next = request('PLI');
    await rtcp.sendRtcp([pli(camera.videoSsrc)]);
    await next;

    expect(requests).toBe(3);
    expect(camera.keyframeRequests).toBe(3);
  });

  it('adds remote candidates without waiting, even unresolvable mDNS ones', async () => {
    const camera = new WeriftPeer({ iceServers: [], video: 'VP8' });
    onTestFinished(() => camera.close());
    await camera.createOffer();
    const returned = camera.addRemoteCandidate({ candidate: 'candidate:1 1 udp 2130706431 0b5ae4e0-aaaa.local 50000 typ host', sdpMid: '0' });
    expect(returned).toBeUndefined(); // not a promise: nothing to wait for
    camera.addRemoteCandidate(null);
    await camera.close();
    await camera.close(); // idempotent
    expect(camera.state).toBe('closed');
  });
});
