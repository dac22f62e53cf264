/**
 * The signaling log of the watched camera: what went over MQTT, newest last. Admins see the camera's own up/down
 * topics too (the broker lets them read every topic); viewers see their own sessions' messages.
 */
import type { SignalRecord } from '../viewer/viewer-client.ts';
import { el } from './dom.ts';

const MAX_ROWS = 200;

export class SignalLog {
  readonly #list: HTMLElement;

  constructor(list: HTMLElement) {
    this.#list = list;
  }

  clear(): void {
    this.#list.replaceChildren();
  }

  add(record: SignalRecord): void {
    const m = record.message as unknown as Record<string, unknown>;
    const channel = record.topic.split('/').slice(-3).join('/');
    const arrow = record.direction === 'out' ? '→' : '←';
    const time = new Date(record.at).toISOString().slice(11, 23);
    const detail = summarize(m);
    const row = el('li', { class: record.direction, 'data-type': String(m.type), 'data-topic': record.topic }, `${time} ${arrow} ${channel} ${String(m.type)}${detail ? ` ${detail}` : ''}`);
    row.title = JSON.stringify(redacted(m), null, 1);
    const atBottom = this.#list.scrollTop + this.#list.clientHeight >= this.#list.scrollHeight - 4;
    this.#list.append(row);
    while (this.#list.childElementCount > MAX_ROWS) this.#list.firstElementChild?.remove();
    if (atBottom) this.#list.scrollTop = this.#list.scrollHeight;
  }
}

/** The interesting field of a message, shortened; SDPs show their size, not their text. */
function summarize(m: Record<string, unknown>): string {
  const parts: string[] = [];
  if (typeof m.seq === 'number') parts.push(`#${m.seq}`);
  if (typeof m.sdp === 'string') parts.push(`(${m.sdp.length} chars of SDP)`);
  if (typeof m.candidate === 'string') parts.push(m.candidate.replace(/^candidate:/, '').split(' ').slice(4, 8).join(' '));
  if (m.endOfCandidates === true) parts.push('end of candidates');
  for (const key of ['state', 'reason', 'code', 'deviceId'] as const) if (typeof m[key] === 'string') parts.push(`${key}=${m[key]}`);
  return parts.join(' ');
}

/**
 * The message as the log shows it: an `ice-servers` message without its TURN passwords. They are the viewer's own,
 * but a log is what people copy into bug reports and screenshots.
 */
export function redacted(m: Record<string, unknown>): Record<string, unknown> {
  if (!Array.isArray(m.iceServers)) return m;
  const iceServers = (m.iceServers as Record<string, unknown>[]).map((s) => ('credential' in s ? { ...s, credential: '(hidden)' } : s));
  return { ...m, iceServers };
}
