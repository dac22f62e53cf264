/**
 * Camera stills for the grid: `GET /api/snapshots/{id}.jpg` for each tile shown, every few seconds while the page is
 * visible, revalidated with the still's ETag (an unchanged still is a 304 and nothing to decode), shown through a
 * blob: URL (the request carries the session's token, which an <img src> could not).
 */
import type { DashboardSession } from './session.ts';

const REFRESH_MS = 4000;
const PARALLEL = 4;

interface Tile {
  img: HTMLImageElement;
  etag: string | undefined;
  url: string | undefined;
}

export class StillsLoader {
  readonly #session: DashboardSession;
  readonly #tiles = new Map<string, Tile>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #busy = false;

  /** False when the bridge makes no stills (no ffmpeg): nothing is asked for then. */
  readonly #enabled: () => boolean;

  constructor(session: DashboardSession, enabled: () => boolean = () => true) {
    this.#session = session;
    this.#enabled = enabled;
  }

  /** Shows `deviceId`'s still in `img` from now on (replacing an earlier img for it). */
  attach(deviceId: string, img: HTMLImageElement): void {
    const tile = this.#tiles.get(deviceId);
    if (tile) {
      if (tile.img !== img && tile.url) img.src = tile.url;
      tile.img = img;
      return;
    }
    this.#tiles.set(deviceId, { img, etag: undefined, url: undefined });
    this.#kick();
  }

  detach(deviceId: string): void {
    const tile = this.#tiles.get(deviceId);
    if (tile?.url) URL.revokeObjectURL(tile.url);
    this.#tiles.delete(deviceId);
  }

  /** Starts refreshing (again). */
  start(): void {
    this.#running = true;
    this.#kick();
  }

  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  close(): void {
    this.stop();
    for (const id of [...this.#tiles.keys()]) this.detach(id);
  }

  #kick(): void {
    if (!this.#running || this.#timer !== undefined || this.#busy) return;
    this.#timer = setTimeout(() => void this.#round(), 0);
  }

  /** One pass over every tile, then the next in REFRESH_MS (one loop at a time: #busy). */
  async #round(): Promise<void> {
    this.#timer = undefined;
    this.#busy = true;
    try {
      if (!document.hidden && this.#enabled()) {
        const queue = [...this.#tiles.keys()];
        const worker = async () => {
          for (let id = queue.shift(); id !== undefined; id = queue.shift()) await this.#load(id);
        };
        await Promise.all(Array.from({ length: PARALLEL }, worker));
      }
    } finally {
      this.#busy = false;
    }
    if (this.#running && this.#timer === undefined) this.#timer = setTimeout(() => void this.#round(), REFRESH_MS);
  }

  async #load(deviceId: string): Promise<void> {
    const tile = this.#tiles.get(deviceId);
    if (tile === undefined) return;
    let res: Response;
    try {
      res = await this.#session.api(`api/snapshots/${encodeURIComponent(deviceId)}.jpg`, { headers: tile.etag ? { 'if-none-match': tile.etag } : {} });
    } catch {
      return; // the bridge is unreachable: the page says so elsewhere
    }
    if (res.status === 304) return;
    if (res.status === 204) {
      tile.img.dataset.missing = res.headers.get('x-tali-still') ?? 'no picture yet';
      tile.img.title = tile.img.dataset.missing;
      return;
    }
    if (!res.ok) {
      const reason = ((await res.json().catch(() => ({}))) as { message?: string }).message ?? `HTTP ${res.status}`;
      tile.img.dataset.missing = reason;
      tile.img.title = reason;
      return;
    }
    const blob = await res.blob();
    if (this.#tiles.get(deviceId) !== tile) return;
    if (tile.url) URL.revokeObjectURL(tile.url);
    tile.url = URL.createObjectURL(blob);
    tile.etag = res.headers.get('etag') ?? undefined;
    tile.img.src = tile.url;
    tile.img.dataset.at = res.headers.get('last-modified') ?? '';
    delete tile.img.dataset.missing;
    tile.img.title = `still of ${res.headers.get('last-modified') ?? 'now'}`;
  }
}
