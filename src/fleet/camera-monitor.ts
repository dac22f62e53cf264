/**
 * What the bridge sees of one camera session, for the fleet view: frame rate and bitrate over the last few seconds,
 * since when it streams, and its latest keyframe (the still the dashboard shows). One RTP listener per session; per
 * packet it only counts, and it assembles a frame only when the session says a keyframe starts
 * (Session 'keyframe', ../webrtc/keyframe.ts), so a camera costs next to nothing between keyframes.
 */
import type { RtpPacket } from 'werift';
import type { CameraSession, Session } from '../answerer/session.ts';
import { VideoAssembler } from '../recording/frames.ts';
import type { RemoteTrack } from '../webrtc/peer.ts';

export interface Keyframe {
  deviceId: string;
  codec: 'VP8' | 'H264';
  /** A VP8 frame, or an H264 access unit in Annex-B form (SPS and PPS included, as cameras send them). */
  data: Buffer;
  /** When it arrived, ms since the epoch. */
  at: number;
}

export interface CameraRates {
  /** Video frames per second over the last window (frames end with the RTP marker bit: RFC 7741 §4.1, RFC 6184 §5.1). */
  fps: number;
  /** Payload bits per second, all tracks. */
  bitrate: number;
}

/** What the fleet reads of a camera session: the CameraMonitor, or its handle on the main thread. */
export interface CameraWatch {
  readonly session: CameraSession;
  /** When the session started streaming (first RTP), ms since the epoch. */
  readonly streamingSince: number | undefined;
  readonly rates: CameraRates;
  close(): void;
}

/** Rates are taken over this window, rolled every half of it. */
const WINDOW_MS = 4000;

export class CameraMonitor {
  readonly session: Session;
  /** When the session started streaming (first RTP), ms since the epoch. */
  streamingSince: number | undefined;
  readonly #onKeyframe: (keyframe: Keyframe) => void;
  readonly #onRtp = (track: RemoteTrack, packet: RtpPacket, at: number) => this.#packet(track, packet, at);
  readonly #onKeyStart = (track: RemoteTrack) => this.#startCapture(track);
  readonly #onState = () => {
    if (this.streamingSince === undefined && this.session.state === 'streaming') this.streamingSince = Date.now();
  };
  #capture: { ssrc: number; timestamp: number; codec: 'VP8' | 'H264'; assembler: VideoAssembler } | undefined;
  /** Counts of the current and the previous half-window. */
  #current = { frames: 0, bytes: 0, since: performance.now() };
  #previous = { frames: 0, bytes: 0, since: performance.now() };

  constructor(session: Session, onKeyframe: (keyframe: Keyframe) => void) {
    this.session = session;
    this.#onKeyframe = onKeyframe;
    session.on('rtp', this.#onRtp);
    session.on('keyframe', this.#onKeyStart);
    session.on('state', this.#onState);
    this.#onState();
  }

  get rates(): CameraRates {
    const now = performance.now();
    this.#roll(now);
    const ms = now - this.#previous.since;
    if (ms <= 0) return { fps: 0, bitrate: 0 };
    const frames = this.#previous.frames + this.#current.frames;
    const bytes = this.#previous.bytes + this.#current.bytes;
    return { fps: Math.round((frames * 10_000) / ms) / 10, bitrate: Math.round((bytes * 8000) / ms) };
  }

  close(): void {
    this.session.off('rtp', this.#onRtp);
    this.session.off('keyframe', this.#onKeyStart);
    this.session.off('state', this.#onState);
    this.#capture = undefined;
  }

  #startCapture(track: RemoteTrack): void {
    if (track.codec !== 'VP8' && track.codec !== 'H264') return;
    // The keyframe's first packet comes next, in the 'rtp' event that follows this one.
    this.#capture = { ssrc: track.ssrc, timestamp: -1, codec: track.codec, assembler: new VideoAssembler(track.codec) };
  }

  /** `at`: the packet's arrival (performance.now()), as the session read it: no clock read of its own per packet. */
  #packet(track: RemoteTrack, packet: RtpPacket, at: number): void {
    this.#roll(at);
    this.#current.bytes += packet.payload.length;
    if (track.kind === 'video' && packet.header.marker) this.#current.frames++;
    const capture = this.#capture;
    if (capture === undefined || capture.ssrc !== track.ssrc) return;
    if (capture.timestamp === -1) capture.timestamp = packet.header.timestamp;
    if (packet.header.timestamp !== capture.timestamp) {
      this.#capture = undefined; // the keyframe never completed (a lost last packet): wait for the next one
      return;
    }
    const { frame, lost } = capture.assembler.push(packet);
    if (lost) this.#capture = undefined;
    if (frame === undefined) return;
    this.#capture = undefined;
    if (frame.keyframe) this.#onKeyframe({ deviceId: this.session.deviceId, codec: capture.codec, data: frame.data, at: Date.now() });
  }

  #roll(now: number): void {
    if (now - this.#current.since < WINDOW_MS / 2) return;
    // A long quiet spell leaves nothing worth keeping from before it.
    this.#previous = now - this.#current.since > WINDOW_MS ? { frames: 0, bytes: 0, since: now - WINDOW_MS / 2 } : this.#current;
    this.#current = { frames: 0, bytes: 0, since: now };
  }
}
