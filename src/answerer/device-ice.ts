/**
 * Each online device's own ICE servers (TURN credentials), in-band: an `ice-servers` message on its down topic when
 * its card says online, and a fresh one every half lifetime while it stays online, so that a device always holds
 * credentials with at least half their life left for its next offer. A running session is not touched: its TURN
 * allocation outlives the credentials it was made with.
 *
 *   card online ──► send ──► timer (ttl/2, minus up to 10 % jitter) ──► send ──► timer … ── card offline / close ──► ∅
 *
 * The jitter spreads a fleet that came online together (a bridge restart) over a tenth of the period.
 */
import type { Logger } from 'pino';
import type { IceServers } from '../protocol/messages.ts';
import type { IcePlan } from '../turn/ice-plan.ts';

export interface DeviceIceOptions {
  plan: IcePlan;
  send: (deviceId: string, message: IceServers) => void;
  /** Cluster mode: the device is connected to this node (only that node sends it credentials). */
  here?: ((deviceId: string) => boolean) | undefined;
  log: Logger;
}

export class DeviceIce {
  readonly #options: DeviceIceOptions;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #closed = false;

  constructor(options: DeviceIceOptions) {
    this.#options = options;
  }

  /** The device's card says online (a new connection): credentials now, and fresh ones before they expire. */
  online(deviceId: string): void {
    if (this.#closed || !this.#options.plan.perDevice) return;
    if (this.#options.here && !this.#options.here(deviceId)) return this.offline(deviceId);
    this.#send(deviceId);
  }

  offline(deviceId: string): void {
    clearTimeout(this.#timers.get(deviceId));
    this.#timers.delete(deviceId);
  }

  /** Devices being kept supplied now. */
  get size(): number {
    return this.#timers.size;
  }

  close(): void {
    this.#closed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  #send(deviceId: string): void {
    const message = this.#options.plan.forDevice(deviceId);
    if (message === undefined) return;
    try {
      this.#options.send(deviceId, message);
    } catch (err) {
      this.#options.log.error({ deviceId, err: (err as Error).message }, 'ice-servers not sent');
    }
    // User name and expiry only: the password never goes to a log.
    this.#options.log.debug({ deviceId, expiresAt: message.expiresAt, username: message.iceServers[0]?.username }, 'ice-servers sent');
    clearTimeout(this.#timers.get(deviceId));
    const ttlMs = this.#options.plan.ttlMs;
    if (ttlMs === undefined) return; // a policy only: nothing expires
    const delayMs = (ttlMs / 2) * (0.9 + 0.1 * Math.random());
    const timer = setTimeout(() => this.online(deviceId), delayMs);
    timer.unref();
    this.#timers.set(deviceId, timer);
  }
}
