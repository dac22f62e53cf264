/**
 * Which devices are connected to this node, and when each was last seen, kept in the data directory so that
 * `tali device list` (another process, maybe while the bridge is down) can show it:
 * `presence-{bridgeId}.json` = {"version":1,"bridgeId","pid","updatedAt","devices":{"cam1":{"online":true,"lastSeen":ISO}}}.
 *
 * Written (atomically) at most once per `writeEveryMs` after a change, and at least every `heartbeatMs` so that a
 * reader can tell a running bridge from one that died without saying so: a file not updated for 3 heartbeats no
 * longer vouches for "online". On start, what the previous run left is read back (everyone offline, last seen kept).
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface DevicePresence {
  online: boolean;
  /** ms since the epoch: now while online, else when its last connection closed. */
  lastSeen: number;
}

interface PresenceFile {
  version: 1;
  bridgeId: string;
  pid: number;
  updatedAt: string;
  devices: Record<string, { online: boolean; lastSeen: string }>;
}

const FILE_PATTERN = /^presence-[A-Za-z0-9._-]+\.json$/;

export interface PresenceOptions {
  dataDir: string;
  bridgeId: string;
  writeEveryMs?: number;
  heartbeatMs?: number;
  onError?: (err: Error) => void;
}

export class PresenceBook {
  readonly file: string;
  readonly #options: PresenceOptions;
  readonly #connections = new Map<string, number>();
  readonly #lastSeen = new Map<string, number>();
  #writeTimer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #closed = false;
  #opened = false;

  constructor(options: PresenceOptions) {
    this.#options = options;
    this.file = join(options.dataDir, `presence-${options.bridgeId}.json`);
  }

  /** Reads back the last run's "last seen" times and starts the heartbeat. */
  async open(): Promise<void> {
    this.#opened = true;
    const previous = await readOne(this.file);
    for (const [id, p] of Object.entries(previous?.devices ?? {})) {
      const t = Date.parse(p.lastSeen);
      if (Number.isFinite(t) && !this.#lastSeen.has(id)) this.#lastSeen.set(id, t);
    }
    this.#heartbeat = setInterval(() => this.#schedule(0), this.#options.heartbeatMs ?? 10_000);
    this.#heartbeat.unref();
    this.#schedule(0);
  }

  connected(deviceId: string): void {
    this.#connections.set(deviceId, (this.#connections.get(deviceId) ?? 0) + 1);
    this.#lastSeen.set(deviceId, Date.now());
    this.#schedule();
  }

  disconnected(deviceId: string): void {
    const left = (this.#connections.get(deviceId) ?? 1) - 1;
    if (left > 0) this.#connections.set(deviceId, left);
    else this.#connections.delete(deviceId);
    this.#lastSeen.set(deviceId, Date.now());
    this.#schedule();
  }

  /** A removed device is forgotten. */
  forget(deviceId: string): void {
    this.#connections.delete(deviceId);
    this.#lastSeen.delete(deviceId);
    this.#schedule();
  }

  get(deviceId: string): DevicePresence | undefined {
    const online = this.#connections.has(deviceId);
    const lastSeen = online ? Date.now() : this.#lastSeen.get(deviceId);
    return lastSeen === undefined ? undefined : { online, lastSeen };
  }

  /** Writes what is known now; resolves once it is on disk. */
  flush(): Promise<void> {
    if (!this.#closed) this.#write();
    return this.#writing;
  }

  /** Everyone offline as of now, written once more. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed || !this.#opened) return this.#writing; // a start that failed before open() writes nothing
    clearInterval(this.#heartbeat);
    clearTimeout(this.#writeTimer);
    for (const id of this.#connections.keys()) this.#lastSeen.set(id, Date.now());
    this.#connections.clear();
    this.#write();
    this.#closed = true;
    return this.#writing;
  }

  #schedule(delayMs = this.#options.writeEveryMs ?? 2000): void {
    if (this.#closed || !this.#opened || (this.#writeTimer !== undefined && delayMs > 0)) return;
    clearTimeout(this.#writeTimer);
    this.#writeTimer = setTimeout(() => {
      this.#writeTimer = undefined;
      this.#write();
    }, delayMs);
    this.#writeTimer.unref();
  }

  #write(): void {
    const body: PresenceFile = {
      version: 1,
      bridgeId: this.#options.bridgeId,
      pid: process.pid,
      updatedAt: new Date().toISOString(),
      devices: Object.fromEntries([...this.#lastSeen.keys()].map((id) => {
        const p = this.get(id) as DevicePresence;
        return [id, { online: p.online, lastSeen: new Date(p.lastSeen).toISOString() }];
      })),
    };
    const tmp = `${this.file}.${randomBytes(4).toString('hex')}.tmp`;
    this.#writing = this.#writing
      .then(() => writeFile(tmp, `${JSON.stringify(body)}\n`, { mode: 0o600 }))
      .then(() => rename(tmp, this.file))
      .catch((err: Error) => this.#options.onError?.(err));
  }
}

/**
 * What every node's presence file in `dataDir` says, merged: online if a node that is still writing its file says
 * so (a file older than `staleMs` vouches only for "last seen"), last seen the latest of all. `running` is false
 * when no file is fresh (no bridge is running on this data directory, or none has started yet).
 */
export async function readPresence(dataDir: string, staleMs = 30_000, now = Date.now()): Promise<{ running: boolean; devices: Map<string, DevicePresence> }> {
  const names = (await readdir(dataDir).catch(() => [] as string[])).filter((n) => FILE_PATTERN.test(n));
  const devices = new Map<string, DevicePresence>();
  let running = false;
  for (const name of names) {
    const file = await readOne(join(dataDir, name));
    if (file === undefined) continue;
    const fresh = now - Date.parse(file.updatedAt) < staleMs;
    running ||= fresh;
    for (const [id, p] of Object.entries(file.devices)) {
      const seen = Date.parse(p.lastSeen);
      const before = devices.get(id);
      devices.set(id, { online: (before?.online ?? false) || (fresh && p.online), lastSeen: Math.max(before?.lastSeen ?? 0, Number.isFinite(seen) ? seen : 0) });
    }
  }
  return { running, devices };
}

async function readOne(path: string): Promise<PresenceFile | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as PresenceFile;
    return parsed.version === 1 && typeof parsed.devices === 'object' && parsed.devices !== null && typeof parsed.updatedAt === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}
