/**
 * libpeer's PeerConnection (src/peer_connection.c, sdp.c, agent.c, ice.c, dtls_srtp.c at 9319aa4) as the network
 * sees it, with werift doing ICE, DTLS and SRTP underneath.
 *
 *   new/closed/failed ── create_offer ──► (same state; offer SDP in libpeer's shape, every candidate inside)
 *   ── set_remote_description(answer) ──► checking ── ICE pair ok ──► connected ── DTLS done ──► completed
 *   checking ── no pair left ──► failed          completed ── 10 s without a STUN binding request ──► closed
 *   any ── close ──► closed (libpeer only sets the state: its loop stops reading the socket, so no more media,
 *                     no STUN answers, no DTLS alert)
 *
 * What is libpeer's on the wire: the offer SDP text (session-level ice-ufrag/ice-pwd/fingerprint, `a=setup:passive`,
 * H264 `42e01f` without packetization-mode on UDP/TLS/RTP/SAVPF, G.711 on UDP/TLS/RTP/SAVP, mids video/audio/
 * datachannel, `m=application 50712`, one host candidate of the first up non-loopback IPv4 interface, foundation
 * "0", transport "UDP", libpeer's priority formula), the DTLS server role with a client certificate required, SRTP
 * AES128_CM_HMAC_SHA1_80 only, RSA certificate, the RTP packetization (rtp-encoder.ts), the 10 s binding-request
 * timeout, PLI/FIR handling, and how it reads an answer (answer-reader.ts). werift's own: ICE timing and pair order,
 * the RSA key size (2048, libpeer 1024), one certificate per device instead of one per offer.
 */
import { networkInterfaces } from 'node:os';
import {
  CipherContext,
  HashAlgorithm,
  PictureLossIndication,
  RTCPeerConnection,
  RTCRtpCodecParameters,
  RtcpPayloadSpecificFeedback,
  SignatureAlgorithm,
  type DtlsKeys,
  type RTCRtpSender,
  type RtcpPacket,
} from 'werift';
import { readLibpeerAnswer } from './answer-reader.ts';
import { LIBPEER_RTP, LibpeerRtpEncoder } from './rtp-encoder.ts';

export type LibpeerPcState = 'new' | 'checking' | 'connected' | 'completed' | 'failed' | 'closed' | 'disconnected';

/** CONFIG_KEEPALIVE_TIMEOUT: a completed call with no binding request for this long is closed. */
export const CONFIG_KEEPALIVE_TIMEOUT_MS = 10_000;
/** SRTP_PROFILE.SRTP_AES128_CM_HMAC_SHA1_80 (RFC 5764 §4.1.2): libpeer offers no AEAD profile. */
const SRTP_AES128_CM_HMAC_SHA1_80 = 1;
const FIR_FMT = 4;

export interface LibpeerPcConfig {
  video: 'H264' | undefined;
  audio: 'PCMA' | 'PCMU' | undefined;
  /** DATA_CHANNEL_STRING in the generic example: an m=application section. */
  datachannel: boolean;
  iceServers: { urls: string; username?: string; credential?: string }[];
  /** CONFIG_KEEPALIVE_TIMEOUT in ms (tests shorten it). */
  keepaliveTimeoutMs?: number | undefined;
}

export class LibpeerPeerConnection {
  state: LibpeerPcState = 'new';
  onStateChange: ((state: LibpeerPcState) => void) | undefined;
  /** config.on_request_keyframe: a PLI or FIR arrived. */
  onKeyframeRequest: (() => void) | undefined;
  keyframeRequests = 0;
  readonly config: LibpeerPcConfig;
  #keys: Promise<DtlsKeys> | undefined;
  #pc: RTCPeerConnection | undefined;
  #mids = new Map<string, string>();
  #video: { sender: RTCRtpSender; encoder: LibpeerRtpEncoder } | undefined;
  #audio: { sender: RTCRtpSender; encoder: LibpeerRtpEncoder } | undefined;
  /** agent.remote_ufrag and remote_upwd: kept across calls (is_update in peer_connection_set_remote_description). */
  #remoteIce = { ufrag: '', pwd: '' };
  /** The answer's fingerprint is one libpeer's strncmp can match. */
  #fingerprintOk = false;
  #lastBindingRequest = 0;
  #keepalive: NodeJS.Timeout | undefined;
  /** libpeer stopped reading its socket (closed): werift must not answer STUN any more either. */
  #deaf = false;

  constructor(config: LibpeerPcConfig) {
    this.config = config;
  }

  /** peer_connection_create_offer(): a new call (new ICE credentials and candidates), gathered before returning. */
  async createOffer(): Promise<string> {
    await this.#dispose();
    this.#deaf = false;
    this.#keys ??= CipherContext.createSelfSignedCertificateWithKey({ signature: SignatureAlgorithm.rsa_1, hash: HashAlgorithm.sha256_4 });
    const pc = new RTCPeerConnection({
      codecs: {
        // werift matches codecs by their parameters; the offer text below is libpeer's (no packetization-mode).
        video: this.config.video ? [new RTCRtpCodecParameters({ mimeType: 'video/H264', clockRate: 90000, payloadType: 96, parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f', rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] })] : [],
        audio: this.config.audio ? [new RTCRtpCodecParameters({ mimeType: `audio/${this.config.audio}`, clockRate: 8000, channels: 1, payloadType: LIBPEER_RTP[this.config.audio].payloadType })] : [],
      },
      headerExtensions: { video: [], audio: [] },
      iceServers: this.config.iceServers,
      iceUseIpv6: false,
      bundlePolicy: 'max-bundle',
      dtls: { keys: await this.#keys },
      iceFilterStunResponse: () => {
        if (this.#deaf) return false;
        this.#lastBindingRequest = performance.now();
        return true;
      },
    });
    this.#pc = pc;
    if (this.config.video) this.#video = { sender: pc.addTransceiver('video', { direction: 'sendrecv' }).sender, encoder: new LibpeerRtpEncoder('H264') };
    if (this.config.audio) this.#audio = { sender: pc.addTransceiver('audio', { direction: 'sendrecv' }).sender, encoder: new LibpeerRtpEncoder(this.config.audio) };
    if (this.config.datachannel) pc.createDataChannel('datachannel');
    pc.iceConnectionStateChange.subscribe((s) => s === 'connected' && this.#setState('connected'));
    pc.connectionStateChange.subscribe((s) => {
      // dtls_srtp_handshake compares the fingerprints with strncmp: a mismatch keeps the call in `connected`.
      if (s === 'connected' && this.#fingerprintOk) this.#setState('completed');
      else if (s === 'connected') this.#deaf = true;
      else if (s === 'failed' && this.state === 'checking') this.#setState('failed');
    });
    await pc.setLocalDescription(await pc.createOffer());
    for (const t of pc.getTransceivers()) {
      if (t.kind === 'video' && this.#video) (this.#video.sender as { ssrc: number }).ssrc = LIBPEER_RTP.H264.ssrc;
      if (t.kind === 'audio' && this.#audio) (this.#audio.sender as { ssrc: number }).ssrc = LIBPEER_RTP[this.#audio.encoder.codec].ssrc;
      if (t.dtlsTransport) (t.dtlsTransport as unknown as { srtpProfiles: number[] }).srtpProfiles = [SRTP_AES128_CM_HMAC_SHA1_80];
    }
    pc.dtlsTransports[0]?.onRtcp.subscribe((rtcp) => this.#onRtcp(rtcp));
    return this.#renderOffer(pc.localDescription?.sdp ?? '');
  }

  /**
   * peer_connection_set_remote_description(answer). Throws LibpeerCrash where libpeer would overwrite memory (a line
   * of 256+ characters, an 11th candidate).
   */
  async setRemoteDescription(sdp: string): Promise<void> {
    const answer = readLibpeerAnswer(sdp, this.#remoteIce);
    if (answer.isUpdate) return; // same ice-ufrag as before: libpeer ignores it
    this.#remoteIce = answer.ice;
    this.#fingerprintOk = answer.fingerprintOk;
    const pc = this.#pc;
    this.#setState('checking');
    if (pc === undefined || answer.candidates === 0 || answer.iceMangled) {
      this.#deaf = true;
      this.#setState('failed'); // no pair to check, or every check fails (agent_select_candidate_pair)
      return;
    }
    let text = sdp;
    for (const [libpeerMid, mid] of this.#mids) text = text.replaceAll(`a=mid:${libpeerMid}\r\n`, `a=mid:${mid}\r\n`).replace(new RegExp(`(a=group:BUNDLE[^\\r\\n]*) ${libpeerMid}(?=[ \\r])`), `$1 ${mid}`);
    await pc.setRemoteDescription({ type: 'answer', sdp: text });
    this.#lastBindingRequest = performance.now();
    clearInterval(this.#keepalive);
    this.#keepalive = setInterval(() => this.#checkKeepalive(), 100);
  }

  /** peer_connection_close(): only the state changes. */
  close(): void {
    this.state = 'closed';
    this.#deaf = true;
    clearInterval(this.#keepalive);
  }

  /** peer_connection_send_video(): dropped unless completed. */
  sendVideo(frame: Uint8Array): void {
    if (this.state !== 'completed' || this.#video === undefined) return;
    for (const packet of this.#video.encoder.encode(frame)) this.#video.sender.sendRtp(packet).catch(() => {});
  }

  sendAudio(frame: Uint8Array): void {
    if (this.state !== 'completed' || this.#audio === undefined) return;
    for (const packet of this.#audio.encoder.encode(frame)) this.#audio.sender.sendRtp(packet).catch(() => {});
  }

  /** peer_connection_destroy(). */
  async destroy(): Promise<void> {
    this.close();
    await this.#dispose();
  }

  async #dispose(): Promise<void> {
    clearInterval(this.#keepalive);
    const pc = this.#pc;
    this.#pc = undefined;
    this.#video = this.#audio = undefined;
    this.#mids.clear();
    await pc?.close().catch(() => {});
  }

  #checkKeepalive(): void {
    if (this.state !== 'completed') return;
    if (performance.now() - this.#lastBindingRequest > (this.config.keepaliveTimeoutMs ?? CONFIG_KEEPALIVE_TIMEOUT_MS)) {
      this.#deaf = true;
      this.#setState('closed'); // "binding request timeout"
    }
  }

  #onRtcp(rtcp: RtcpPacket): void {
    if (this.#deaf || rtcp.type !== RtcpPayloadSpecificFeedback.type) return;
    const fmt = (rtcp as RtcpPayloadSpecificFeedback).feedback.count;
    // peer_connection_incoming_rtcp: PSFB FMT 1 (PLI) or 4 (FIR), whatever SSRC it names.
    if (fmt !== PictureLossIndication.count && fmt !== FIR_FMT) return;
    this.keyframeRequests++;
    this.onKeyframeRequest?.();
  }

  #setState(state: LibpeerPcState): void {
    if (this.state === state) return;
    this.state = state;
    this.onStateChange?.(state);
  }

  /** sdp_create + peer_connection_create_sdp, with werift's ICE credentials, fingerprint and port. */
  #renderOffer(weriftSdp: string): string {
    const ufrag = /^a=ice-ufrag:(\S+)/m.exec(weriftSdp)?.[1];
    const pwd = /^a=ice-pwd:(\S+)/m.exec(weriftSdp)?.[1];
    const fingerprint = /^a=fingerprint:sha-256 (\S+)/m.exec(weriftSdp)?.[1];
    if (!ufrag || !pwd || !fingerprint) throw new Error('werift offer lacks ICE credentials or a fingerprint');
    const sections = weriftSdp.split(/(?=^m=)/m).slice(1);
    const midOf = (kind: string) => sections.map((s) => ({ kind: /^m=(\w+)/.exec(s)?.[1], mid: /^a=mid:(\S+)/m.exec(s)?.[1] })).find((s) => s.kind === kind)?.mid;
    const bundle: string[] = [];
    const lines = ['v=0', 'o=- 1495799811084970 1495799811084970 IN IP4 0.0.0.0', 's=-', 't=0 0', 'a=msid-semantic: iot'];
    const media: string[] = [];
    if (this.config.video) {
      bundle.push('video');
      this.#mids.set('video', midOf('video') ?? '0');
      media.push('m=video 9 UDP/TLS/RTP/SAVPF 96', 'c=IN IP4 0.0.0.0', 'a=rtcp-fb:96 nack', 'a=rtcp-fb:96 nack pli',
        'a=fmtp:96 profile-level-id=42e01f;level-asymmetry-allowed=1', 'a=rtpmap:96 H264/90000', 'a=ssrc:1 cname:webrtc-h264',
        'a=sendrecv', 'a=mid:video', 'a=rtcp-mux');
    }
    if (this.config.audio) {
      const { payloadType, ssrc } = LIBPEER_RTP[this.config.audio];
      bundle.push('audio');
      this.#mids.set('audio', midOf('audio') ?? '1');
      media.push(`m=audio 9 UDP/TLS/RTP/SAVP ${payloadType}`, 'c=IN IP4 0.0.0.0', `a=rtpmap:${payloadType} ${this.config.audio}/8000`,
        `a=ssrc:${ssrc} cname:webrtc-${this.config.audio.toLowerCase()}`, 'a=sendrecv', 'a=mid:audio', 'a=rtcp-mux');
    }
    if (this.config.datachannel) {
      bundle.push('datachannel');
      this.#mids.set('datachannel', midOf('application') ?? '2');
      media.push('m=application 50712 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 0.0.0.0', 'a=mid:datachannel', 'a=sctp-port:5000', 'a=max-message-size:262144');
    }
    lines.push(`a=group:BUNDLE ${bundle.join(' ')}`, `a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`, `a=fingerprint:sha-256 ${fingerprint}`, 'a=setup:passive', ...media);
    return `${lines.join('\r\n')}\r\n${candidateLines(weriftSdp).join('')}`;
  }
}

/**
 * agent_gather_candidate + agent_get_local_description: the host candidate of the first up, running, non-loopback
 * IPv4 interface (ports_get_host_addr), foundation "0", then server-reflexive ones (foundation = count), priority
 * (2^24)·type preference + (2^8)·port + (256 − 1), transport "UDP", and `raddr 0.0.0.0 rport 0` (never filled in).
 */
function candidateLines(weriftSdp: string): string[] {
  const found = [...weriftSdp.matchAll(/^a=candidate:\S+ 1 udp \d+ (\d+\.\d+\.\d+\.\d+) (\d+) typ (host|srflx)/gim)].map((m) => ({
    address: m[1] as string, port: Number(m[2]), type: m[3] as 'host' | 'srflx',
  }));
  const first = Object.values(networkInterfaces()).flat().find((i) => i?.family === 'IPv4' && !i.internal)?.address;
  const host = found.find((c) => c.type === 'host' && c.address === first) ?? found.find((c) => c.type === 'host' && !c.address.startsWith('127.'));
  const lines: string[] = [];
  if (host) lines.push(`a=candidate:0 1 UDP ${priority(126, host.port)} ${host.address} ${host.port} typ host\r\n`);
  for (const srflx of found.filter((c) => c.type === 'srflx')) {
    lines.push(`a=candidate:${lines.length + 1} 1 UDP ${priority(100, srflx.port)} ${srflx.address} ${srflx.port} typ srflx raddr 0.0.0.0 rport 0\r\n`);
  }
  return lines;
}

function priority(typePreference: number, port: number): number {
  return 2 ** 24 * typePreference + 2 ** 8 * port + (256 - 1);
}

