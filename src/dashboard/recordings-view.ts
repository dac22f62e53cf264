/**
 * Recordings (admins): the finished files, per camera or all, newest first, with start, duration and size; a file
 * plays in the page (the file route answers byte ranges, so the browser seeks) and downloads. Start and duration
 * come from the file: the recorder names it by its start time, and finalises it (mtime) when it ends.
 */
import { byId, el } from './dom.ts';
import { duration } from './health.ts';
import type { DashboardSession } from './session.ts';

interface RecordingFile {
  deviceId: string;
  name: string;
  bytes: number;
  modified: string;
}

export class RecordingsView {
  readonly #session: DashboardSession;
  readonly #deviceId: string | undefined;
  readonly #video = byId<HTMLVideoElement>('recording-video');

  constructor(session: DashboardSession, deviceId: string | undefined) {
    this.#session = session;
    this.#deviceId = deviceId;
    byId('recordings-device').textContent = deviceId ? `of ${deviceId}` : '';
    byId('recordings-error').textContent = '';
    byId('recording-playing').textContent = '';
    this.#video.hidden = true;
    void this.#load();
  }

  close(): void {
    this.#video.pause();
    this.#video.removeAttribute('src');
    this.#video.load();
  }

  async #load(): Promise<void> {
    const path = this.#deviceId ? `api/recordings/${encodeURIComponent(this.#deviceId)}` : 'api/recordings';
    let files: RecordingFile[];
    try {
      files = (await this.#session.json<{ files: RecordingFile[] }>(path)).files;
    } catch (err) {
      byId('recordings-error').textContent = (err as Error).message;
      return;
    }
    files.sort((a, b) => Date.parse(b.modified) - Date.parse(a.modified));
    byId('no-recordings').hidden = files.length > 0;
    byId('recordings-table').querySelector('tbody')?.replaceChildren(...files.map((f) => this.#row(f)));
  }

  #row(f: RecordingFile): HTMLElement {
    const start = startOf(f.name);
    const end = Date.parse(f.modified);
    const play = el('button', { type: 'button', class: 'play' }, 'Play');
    play.addEventListener('click', () => this.#play(f));
    const download = el('a', { href: this.#fileUrl(f, true), download: f.name, class: 'download' }, 'Download');
    return el(
      'tr',
      { 'data-file': f.name, 'data-device': f.deviceId },
      el('td', {}, f.deviceId),
      el('td', {}, start === undefined ? '?' : new Date(start).toLocaleString()),
      el('td', {}, start === undefined ? '?' : duration(end - start)),
      el('td', {}, `${(f.bytes / 1e6).toFixed(f.bytes < 1e7 ? 2 : 0)} MB`),
      el('td', {}, play, ' ', download),
    );
  }

  /** The file's URL with the session's token in it: a <video src> and a download link cannot send headers. */
  #fileUrl(f: RecordingFile, download = false): string {
    const query = new URLSearchParams({ access_token: this.#session.token, ...(download && { download: '1' }) });
    return `api/recordings/${encodeURIComponent(f.deviceId)}/files/${encodeURIComponent(f.name)}?${query}`;
  }

  /** Plays a file in the page; the browser fetches byte ranges as it plays and seeks (206 Partial Content). */
  #play(f: RecordingFile): void {
    byId('recordings-error').textContent = '';
    this.#video.hidden = false;
    this.#video.src = this.#fileUrl(f);
    this.#video.dataset.file = f.name;
    byId('recording-playing').textContent = `${f.deviceId}: ${f.name}`;
    this.#video.onerror = () => void (byId('recordings-error').textContent = `cannot play ${f.name}: ${this.#video.error?.message ?? 'error'}`);
    void this.#video.play().catch(() => {});
  }
}

/** The recorder names files by their start, "cam1-20261206T123456789Z.webm" (ISO 8601 without separators). */
export function startOf(name: string): number | undefined {
  const m = /(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)(\d{3})?Z\.(webm|mkv)$/.exec(name);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, ms] = m;
  return Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}.${ms ?? '000'}Z`);
}
