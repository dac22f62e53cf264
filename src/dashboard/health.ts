/**
 * The bridge's view of its live cameras (`GET /api/cameras`: frame rate, bitrate, streaming since), polled every few
 * seconds while a page that shows it is open, and the connection's own health: while the MQTT connection to the bridge
 * is down, nothing the page knows about the cameras is current, so it says "unknown since …" instead.
 */
import { TypedEmitter } from '../client/emitter.ts';
import type { DashboardSession } from './session.ts';

export interface CameraHealth {
  deviceId: string;
  sessionId: string;
  state: string;
  streamingSince: number | undefined;
  codecs: string[];
  stillAt: number | undefined;
  fps: number;
  bitrate: number;
}

const POLL_MS = 3000;

export class HealthPoller extends TypedEmitter<{ update: [] }> {
  readonly cameras = new Map<string, CameraHealth>();
  /** Whether this bridge makes stills (ffmpegPath set); undefined before the first answer. */
  stills: boolean | undefined;
  /** Since when the bridge is unreachable (ms since the epoch); undefined while connected. */
  unreachableSince: number | undefined;
  readonly #session: DashboardSession;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #users = 0;

  constructor(session: DashboardSession) {
    super();
    this.#session = session;
  }

  /** Polls while at least one view uses it; call the returned function when that view goes. */
  use(): () => void {
    if (this.#users++ === 0) void this.#poll();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.#users === 0) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  connectionLost(): void {
    this.unreachableSince ??= Date.now();
    this.emit('update');
  }

  connectionBack(): void {
    this.unreachableSince = undefined;
    this.emit('update');
  }

  close(): void {
    this.#users = 0;
    clearTimeout(this.#timer);
  }

  async #poll(): Promise<void> {
    clearTimeout(this.#timer);
    try {
      const body = await this.#session.json<{ stills: boolean; cameras: CameraHealth[] }>('api/cameras');
      this.stills = body.stills;
      this.cameras.clear();
      for (const camera of body.cameras) this.cameras.set(camera.deviceId, camera);
      this.emit('update');
    } catch {
      // Unreachable or signed out: the MQTT connection's state is what the page shows.
    }
    if (this.#users > 0) this.#timer = setTimeout(() => void this.#poll(), POLL_MS);
  }
}

/** "12.5 fps · 480 kbit/s · up 3 min" */
export function rateLine(h: CameraHealth | undefined, now = Date.now()): string {
  if (h === undefined) return '';
  const parts = [`${h.fps.toFixed(1)} fps`, `${Math.round(h.bitrate / 1000)} kbit/s`];
  if (h.streamingSince !== undefined) parts.push(`up ${duration(now - h.streamingSince)}`);
  return parts.join(' · ');
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
