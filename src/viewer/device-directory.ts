/**
 * What a viewer knows about the cameras: each device's retained status card and the bridge's retained metrics of its
 * latest session, merged into one entry per device. Fed by ViewerClient; the dashboard's device list reads it.
 * Browser-safe.
 */
import type { SessionMetrics, Status } from '../protocol/index.ts';

export interface DeviceEntry {
  deviceId: string;
  status: Status | undefined;
  metrics: SessionMetrics | undefined;
  /** Local time (ms since the epoch) the entry last changed: for "last seen" when cards carry old timestamps. */
  updatedAt: number;
}

export class DeviceDirectory {
  readonly #entries = new Map<string, DeviceEntry>();

  get(deviceId: string): DeviceEntry | undefined {
    return this.#entries.get(deviceId);
  }

  /** Every known device, sorted by ID. */
  list(): DeviceEntry[] {
    return [...this.#entries.values()].sort((a, b) => a.deviceId.localeCompare(b.deviceId));
  }

  /** A status card, or undefined when the retained card was cleared (MQTT-3.3.1-10). Returns the entry. */
  setStatus(deviceId: string, status: Status | undefined, now: number): DeviceEntry | undefined {
    return this.#update(deviceId, { status }, now);
  }

  setMetrics(deviceId: string, metrics: SessionMetrics | undefined, now: number): DeviceEntry | undefined {
    return this.#update(deviceId, { metrics }, now);
  }

  #update(deviceId: string, change: Partial<Pick<DeviceEntry, 'status' | 'metrics'>>, now: number): DeviceEntry | undefined {
    const entry = { ...(this.#entries.get(deviceId) ?? { deviceId, status: undefined, metrics: undefined }), ...change, updatedAt: now };
    if (entry.status === undefined && entry.metrics === undefined) {
      this.#entries.delete(deviceId);
      return undefined;
    }
    this.#entries.set(deviceId, entry);
    return entry;
  }
}

/**
 * The best "last seen" time for an entry: the newest of the card's ts (a CONNECT time, also in the will), the metrics'
 * ts (published at session milestones and when the session closes, so close to when a camera left).
 */
export function lastSeen(entry: DeviceEntry): number | undefined {
  const times = [entry.status?.ts, entry.metrics?.ts].filter((t): t is number => t !== undefined);
  return times.length > 0 ? Math.max(...times) : undefined;
}
