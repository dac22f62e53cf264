/**
 * Per-session counters and the negotiation timeline. The timeline is milliseconds since the bridge received the
 * offer, measured on the monotonic clock.
 */
import type { CodecName } from '../webrtc/codecs.ts';
import type { SelectedPair } from '../webrtc/peer.ts';

export const MILESTONES = ['answer', 'iceConnected', 'connected', 'firstRtp', 'firstKeyframe', 'closed'] as const;
export type Milestone = (typeof MILESTONES)[number];
export type Timeline = { offer: 0 } & Partial<Record<Milestone, number>>;

export interface TrackStats {
  kind: 'audio' | 'video';
  codec: CodecName;
  ssrc: number;
  packets: number;
  bytes: number;
  keyframes: number;
}

export interface SessionStats {
  deviceId: string;
  sessionId: string;
  state: string;
  timeline: Timeline;
  tracks: TrackStats[];
  closeReason?: string;
  /** Candidate types of the pair ICE selected (from connected on). */
  selectedPair?: SelectedPair;
}

export class TimelineClock {
  readonly #t0 = performance.now();
  readonly timeline: Timeline = { offer: 0 };

  /** Records a milestone the first time it happens; returns true then, false on later calls. */
  mark(milestone: Milestone): boolean {
    if (this.timeline[milestone] !== undefined) return false;
    this.timeline[milestone] = Math.round((performance.now() - this.#t0) * 10) / 10;
    return true;
  }
}
