/**
 * One camera session as the device sees it: its peer, its phase, its timeline, and the candidates that arrive at
 * the wrong moment (local ones gathered before the offer went out, remote ones before the answer was applied).
 * SessionKeeper decides when sessions start and end; this file only keeps one session's books. Browser-safe.
 */
import type { BridgeStatus } from '../../src/protocol/index.ts';
import type { DevicePeer, IceCandidateInit } from './device-peer.ts';

export type SessionPhase = 'offering' | 'answered' | 'connected' | 'closed';

/** Milliseconds since the keeper decided to offer (before creating the offer). */
export interface SessionTimeline {
  /** The offer was created and handed to MQTT. */
  offerSent?: number;
  answerReceived?: number;
  /** ICE and DTLS connected. */
  connected?: number;
  closed?: number;
}

export interface SessionInfo {
  sessionId: string;
  /** The bridge whose card was current when the offer went out; once answered, the node that answered (if named). */
  bridgeId: string;
  /** Wall-clock time the session opened (ms since the epoch, device clock). */
  openedAt: number;
  phase: SessionPhase;
  timeline: SessionTimeline;
  closeReason?: string;
}

export class CameraSession {
  readonly id: string;
  readonly peer: DevicePeer;
  /** The bridge whose card was current at the offer, then the node that answered (it names itself in a cluster). */
  bridge: BridgeStatus;
  readonly openedAt = Date.now();
  phase: SessionPhase = 'offering';
  closeReason: string | undefined;
  readonly timeline: SessionTimeline = {};
  /** Answer or connect deadline, whichever applies now. */
  timer: ReturnType<typeof setTimeout> | undefined;
  readonly #t0 = performance.now();
  #offerSdp: string | undefined;
  /** Local candidates gathered before the offer was sent; undefined once it was. */
  #earlyLocal: (IceCandidateInit | null)[] | undefined = [];
  /** Remote candidates received before the answer was applied; undefined once it was. */
  #earlyRemote: (IceCandidateInit | null)[] | undefined = [];
  #endOfCandidatesSent = false;

  constructor(id: string, peer: DevicePeer, bridge: BridgeStatus) {
    this.id = id;
    this.peer = peer;
    this.bridge = bridge;
  }

  mark(event: keyof SessionTimeline): void {
    this.timeline[event] ??= Math.round((performance.now() - this.#t0) * 10) / 10;
  }

  get info(): SessionInfo {
    const info: SessionInfo = {
      sessionId: this.id,
      bridgeId: this.bridge.bridgeId,
      openedAt: this.openedAt,
      phase: this.phase,
      timeline: { ...this.timeline },
    };
    if (this.closeReason !== undefined) info.closeReason = this.closeReason;
    return info;
  }

  /**
   * A local candidate to trickle now, or undefined when there is nothing to send: before the offer it is held
   * back (seq 1 must be the offer), and a candidate the offer SDP already carries is not sent twice.
   */
  localCandidate(candidate: IceCandidateInit | null): IceCandidateInit | null | undefined {
    if (this.#earlyLocal !== undefined) {
      this.#earlyLocal.push(candidate);
      return undefined;
    }
    if (candidate === null) {
      if (this.#endOfCandidatesSent) return undefined;
      this.#endOfCandidatesSent = true;
      return null;
    }
    const attribute = candidate.candidate.replace(/^a=/, '');
    if (this.#offerSdp?.includes(`a=${attribute}\r\n`) || this.#offerSdp?.includes(`a=${attribute}\n`)) return undefined;
    return candidate;
  }

  /** Records the offer and returns the held-back local candidates that still need trickling, in order. */
  offerSent(sdp: string): (IceCandidateInit | null)[] {
    this.#offerSdp = sdp;
    const early = this.#earlyLocal ?? [];
    this.#earlyLocal = undefined;
    const toSend: (IceCandidateInit | null)[] = [];
    for (const candidate of early) {
      const send = this.localCandidate(candidate);
      if (send !== undefined) toSend.push(send);
    }
    return toSend;
  }

  /** Passes a remote candidate to the peer, or holds it until the answer is applied. */
  remoteCandidate(candidate: IceCandidateInit | null): void {
    if (this.#earlyRemote !== undefined) this.#earlyRemote.push(candidate);
    else this.peer.addRemoteCandidate(candidate);
  }

  answerApplied(): void {
    const early = this.#earlyRemote ?? [];
    this.#earlyRemote = undefined;
    for (const candidate of early) this.peer.addRemoteCandidate(candidate);
  }

  clearTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** 22 characters from [A-Za-z0-9_-], 132 random bits (the protocol allows 8–64 of those characters). */
export function randomSessionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(22));
  return Array.from(bytes, (b) => ID_ALPHABET[b & 63]).join('');
}
