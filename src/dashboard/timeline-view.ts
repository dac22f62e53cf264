/**
 * The negotiation timeline, as two ordered lists: the dashboard's own (click → watch sent → answer → connected →
 * first frame, from WatchSession) and the camera session's, as the bridge measured it (the device's retained metrics).
 */
import type { SessionMetrics } from '../protocol/index.ts';
import type { WatchTimeline } from '../viewer/watch-session.ts';
import { el } from './dom.ts';

const WATCH_STEPS: [keyof WatchTimeline, string][] = [
  ['watchSent', 'watch sent'],
  ['waiting', 'camera asked to start'],
  ['answer', 'answer'],
  ['connected', 'connected (ICE + DTLS)'],
  ['firstFrame', 'first frame'],
];

const CAMERA_STEPS: [keyof SessionMetrics['timeline'], string][] = [
  ['offer', 'offer received'],
  ['answer', 'answer sent'],
  ['iceConnected', 'ICE connected'],
  ['connected', 'DTLS connected'],
  ['firstRtp', 'first RTP'],
  ['firstKeyframe', 'first keyframe'],
  ['closed', 'closed'],
];

function item(label: string, ms: number | undefined, key: string): HTMLElement {
  const node = el('li', { 'data-step': key }, `${label}: ${ms === undefined ? '…' : `${ms.toFixed(1)} ms`}`);
  if (ms !== undefined) node.dataset.ms = String(ms);
  return node;
}

export function renderWatchTimeline(list: HTMLElement, timeline: WatchTimeline): void {
  list.replaceChildren(...WATCH_STEPS.filter(([k]) => k !== 'waiting' || timeline.waiting !== undefined).map(([k, label]) => item(label, timeline[k], k)));
}

export function renderCameraTimeline(list: HTMLElement, metrics: SessionMetrics | undefined): void {
  if (metrics === undefined) {
    list.replaceChildren(el('li', {}, 'no session measured yet'));
    return;
  }
  const steps = CAMERA_STEPS.filter(([k]) => metrics.timeline[k] !== undefined).map(([k, label]) => item(label, metrics.timeline[k], k));
  list.replaceChildren(...steps, el('li', { class: 'hint' }, `session ${metrics.sessionId.slice(0, 8)}… ${metrics.state}${metrics.closeReason ? ` (${metrics.closeReason})` : ''}`));
}
