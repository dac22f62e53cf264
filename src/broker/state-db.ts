/**
 * The embedded broker's state on disk: retained messages, stored sessions (CleanSession 0: their subscriptions, their
 * queued QoS 1 messages, who owns them), in one SQLite file in the data directory, through Node's built-in
 * `node:sqlite` (no native build, no dependency: it ships with the Node that runs tali).
 *
 * Why SQLite: what must survive is a crash (SIGKILL, OOM, power cut of the process), not only a clean stop. Each
 * change is one transaction in a write-ahead log (WAL): a killed process leaves either the change or nothing, never
 * half a file, and the next open rolls the log forward. `synchronous = NORMAL` makes a commit safe against the
 * process dying (the OS has the write); a power loss can lose the last commits but not the database. A JSON snapshot
 * would have to be rewritten whole (or lose what changed since the last one); LevelDB/LMDB need native modules built
 * at install. docs/operations.md ("State on disk") says the same for operators.
 *
 * One process at a time: the file is opened in exclusive locking mode, so a second tali on the same file (same data
 * directory and bridge ID) stops with TALI_ERR_STATE_DB instead of both writing. A file that is not a database, or a
 * damaged one, also stops the start with TALI_ERR_STATE_DB: nothing is deleted or overwritten without the operator.
 *
 * Writes are synchronous and small (a row per change); a write that fails at run time (disk full) is reported through
 * `onError` and the broker carries on in memory.
 */
import { existsSync, rmSync } from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { TaliError } from '../errors.ts';
import type { Identity } from '../security/identity.ts';

/** Bumped when the tables change; a file from a newer tali is refused rather than misread. */
const SCHEMA_VERSION = 1;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL, stored_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS sessions (client_id TEXT PRIMARY KEY, owner TEXT NOT NULL, online INTEGER NOT NULL, left_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS subscriptions (client_id TEXT NOT NULL, topic TEXT NOT NULL, qos INTEGER NOT NULL, rh INTEGER, rap INTEGER, nl INTEGER, PRIMARY KEY (client_id, topic));
  CREATE TABLE IF NOT EXISTS outgoing (
    id INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, cmd TEXT NOT NULL, topic TEXT, payload BLOB,
    qos INTEGER NOT NULL, retain INTEGER NOT NULL, dup INTEGER NOT NULL, broker_id TEXT, broker_counter INTEGER, message_id INTEGER
  );
  CREATE INDEX IF NOT EXISTS outgoing_by_client ON outgoing (client_id, id);
`;

export interface RetainedRow {
  topic: string;
  payload: Buffer;
  qos: number;
  /** ms since the epoch. */
  storedAt: number;
}

export interface SessionRow {
  clientId: string;
  owner: Identity;
  /** Its client was connected when this was written (so it was, as far as is known, until the process ended). */
  online: boolean;
  /** ms since the epoch: when its client left (or the session was made). */
  leftAt: number;
}

export interface SubscriptionRow {
  clientId: string;
  topic: string;
  qos: number;
  rh?: number;
  rap?: boolean;
  nl?: boolean;
}

/** A queued packet as Aedes' memory persistence holds it (aedes-packet fields). */
export interface QueuedRow {
  clientId: string;
  cmd: string;
  topic?: string;
  payload?: Buffer;
  qos: number;
  retain: boolean;
  dup: boolean;
  brokerId?: string;
  brokerCounter?: number;
  messageId?: number;
}

export interface StateDbOptions {
  file: string;
  /** How often the "alive" time is written: a crash is dated to within this (default 5 000 ms). */
  heartbeatMs?: number;
  onError?: (err: Error) => void;
}

export class StateDb {
  readonly file: string;
  /** When the previous run was last known alive (ms since the epoch), if a previous run wrote this file. */
  readonly previousAliveAt: number | undefined;
  readonly #db: DatabaseSync;
  readonly #q: Record<string, StatementSync>;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #onError: (err: Error) => void;
  /** The file did not exist before this open. */
  readonly #made: boolean;
  #closed = false;

  private constructor(file: string, db: DatabaseSync, made: boolean, options: StateDbOptions) {
    this.file = file;
    this.#made = made;
    this.#db = db;
    this.#onError = options.onError ?? (() => {});
    const q = (sql: string) => db.prepare(sql);
    this.#q = {
      getMeta: q('SELECT value FROM meta WHERE key = ?'),
      setMeta: q('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      putRetained: q('INSERT INTO retained (topic, payload, qos, stored_at) VALUES (?, ?, ?, ?) ON CONFLICT (topic) DO UPDATE SET payload = excluded.payload, qos = excluded.qos, stored_at = excluded.stored_at'),
      delRetained: q('DELETE FROM retained WHERE topic = ?'),
      putSession: q('INSERT INTO sessions (client_id, owner, online, left_at) VALUES (?, ?, ?, ?) ON CONFLICT (client_id) DO UPDATE SET owner = excluded.owner, online = excluded.online, left_at = excluded.left_at'),
      delSession: q('DELETE FROM sessions WHERE client_id = ?'),
      putSub: q('INSERT INTO subscriptions (client_id, topic, qos, rh, rap, nl) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (client_id, topic) DO UPDATE SET qos = excluded.qos, rh = excluded.rh, rap = excluded.rap, nl = excluded.nl'),
      delSub: q('DELETE FROM subscriptions WHERE client_id = ? AND topic = ?'),
      delSubs: q('DELETE FROM subscriptions WHERE client_id = ?'),
      enqueue: q('INSERT INTO outgoing (client_id, cmd, topic, payload, qos, retain, dup, broker_id, broker_counter, message_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      setMessageId: q('UPDATE outgoing SET message_id = ? WHERE client_id = ? AND broker_id = ? AND broker_counter = ?'),
      replaceByMessageId: q(
        'UPDATE outgoing SET cmd = ?, topic = ?, payload = ?, qos = ?, retain = ?, dup = ?, broker_id = ?, broker_counter = ? WHERE id = (SELECT id FROM outgoing WHERE client_id = ? AND message_id = ? ORDER BY id LIMIT 1)',
      ),
      clearMessageId: q('DELETE FROM outgoing WHERE id = (SELECT id FROM outgoing WHERE client_id = ? AND message_id = ? ORDER BY id LIMIT 1)'),
    };
    const alive = Number(this.#getMeta('alive_at'));
    this.previousAliveAt = Number.isFinite(alive) && alive > 0 ? alive : undefined;
    this.#alive();
    this.#heartbeat = setInterval(() => this.#alive(), options.heartbeatMs ?? 5000).unref();
  }

  /**
   * Opens (or makes) the file and takes it for this process. Throws TaliError TALI_ERR_STATE_DB when it is held by
   * another process, is not a database or is damaged, or is from a newer tali.
   */
  static open(options: StateDbOptions): StateDb {
    const { file } = options;
    let db: DatabaseSync | undefined;
    const made = !existsSync(file);
    try {
      db = new DatabaseSync(file, { timeout: 1000 });
      // Exclusive before WAL: the lock is taken by the first write below and held until close; no shared memory.
      db.exec('PRAGMA locking_mode = EXCLUSIVE');
      const mode = db.prepare('PRAGMA journal_mode = WAL').get() as { journal_mode: string };
      if (mode.journal_mode !== 'wal') throw new Error(`journal mode is ${mode.journal_mode}, not wal`);
      db.exec('PRAGMA synchronous = NORMAL');
      const version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
      if (version > SCHEMA_VERSION) {
        throw new TaliError('TALI_ERR_STATE_DB', `state file ${file} was written by a newer tali (schema ${version}, this one knows ${SCHEMA_VERSION}). Hint: run that version, or move the file away to start with empty state`);
      }
      db.exec('BEGIN IMMEDIATE');
      db.exec(SCHEMA);
      db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      db.exec('COMMIT');
      return new StateDb(file, db, made, options);
    } catch (err) {
      try {
        db?.close();
      } catch {
        // already unusable
      }
      throw stateDbError(err, file);
    }
  }

  /** Every retained message, in topic order. */
  retained(): RetainedRow[] {
    return (this.#db.prepare('SELECT topic, payload, qos, stored_at FROM retained ORDER BY topic').all() as { topic: string; payload: Uint8Array; qos: number; stored_at: number }[]).map((r) => ({
      topic: r.topic,
      payload: Buffer.from(r.payload),
      qos: r.qos,
      storedAt: r.stored_at,
    }));
  }

  sessions(): SessionRow[] {
    return (this.#db.prepare('SELECT client_id, owner, online, left_at FROM sessions').all() as { client_id: string; owner: string; online: number; left_at: number }[]).map((r) => ({
      clientId: r.client_id,
      owner: JSON.parse(r.owner) as Identity,
      online: r.online === 1,
      leftAt: r.left_at,
    }));
  }

  subscriptions(): SubscriptionRow[] {
    return (this.#db.prepare('SELECT client_id, topic, qos, rh, rap, nl FROM subscriptions ORDER BY client_id').all() as { client_id: string; topic: string; qos: number; rh: number | null; rap: number | null; nl: number | null }[]).map((r) => ({
      clientId: r.client_id,
      topic: r.topic,
      qos: r.qos,
      ...(r.rh !== null && { rh: r.rh }),
      ...(r.rap !== null && { rap: r.rap === 1 }),
      ...(r.nl !== null && { nl: r.nl === 1 }),
    }));
  }

  /**
   * Every queued packet in queue order. Their broker IDs are rewritten first (in the file too) to `brokerId`, their
   * broker counters to their row numbers: a restarted Aedes counts from 0 again under the same ID, and its memory
   * store finds a queued packet by (broker ID, counter).
   */
  queued(brokerId: string): QueuedRow[] {
    this.#db.exec('BEGIN');
    try {
      this.#db.prepare('UPDATE outgoing SET broker_id = ?, broker_counter = id').run(brokerId);
      this.#db.exec('COMMIT');
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
    type Row = { client_id: string; cmd: string; topic: string | null; payload: Uint8Array | null; qos: number; retain: number; dup: number; broker_id: string | null; broker_counter: number | null; message_id: number | null };
    return (this.#db.prepare('SELECT * FROM outgoing ORDER BY id').all() as Row[]).map((r) => ({
      clientId: r.client_id,
      cmd: r.cmd,
      ...(r.topic !== null && { topic: r.topic }),
      ...(r.payload !== null && { payload: Buffer.from(r.payload) }),
      qos: r.qos,
      retain: r.retain === 1,
      dup: r.dup === 1,
      ...(r.broker_id !== null && { brokerId: r.broker_id }),
      ...(r.broker_counter !== null && { brokerCounter: r.broker_counter }),
      ...(r.message_id !== null && { messageId: r.message_id }),
    }));
  }

  /** An empty payload removes the topic's message (MQTT-3.3.1-10). */
  storeRetained(topic: string, payload: Buffer, qos: number): void {
    this.#write(() => (payload.length === 0 ? this.#q.delRetained!.run(topic) : this.#q.putRetained!.run(topic, payload, qos, Date.now())));
  }

  saveSession(clientId: string, owner: Identity, online: boolean, at = Date.now()): void {
    this.#write(() => this.#q.putSession!.run(clientId, JSON.stringify(owner), online ? 1 : 0, at));
  }

  deleteSession(clientId: string): void {
    this.#write(() => this.#q.delSession!.run(clientId));
  }

  addSubscriptions(clientId: string, subs: readonly { topic: string; qos: number; rh?: number; rap?: boolean; nl?: boolean }[]): void {
    this.#transaction(() => {
      for (const s of subs) this.#q.putSub!.run(clientId, s.topic, s.qos, s.rh ?? null, s.rap === undefined ? null : Number(s.rap), s.nl === undefined ? null : Number(s.nl));
    });
  }

  removeSubscriptions(clientId: string, topics: readonly string[]): void {
    this.#transaction(() => {
      for (const topic of topics) this.#q.delSub!.run(clientId, topic);
    });
  }

  cleanSubscriptions(clientId: string): void {
    this.#write(() => this.#q.delSubs!.run(clientId));
  }

  enqueue(clientIds: readonly string[], packet: Omit<QueuedRow, 'clientId'>): void {
    this.#transaction(() => {
      for (const clientId of clientIds) this.#q.enqueue!.run(clientId, ...packetColumns(packet), packet.messageId ?? null);
    });
  }

  /** As aedes-persistence's memory store: the packet of that broker ID and counter gets the ID, else the one with its ID is replaced. */
  updateQueued(clientId: string, packet: Omit<QueuedRow, 'clientId'>): void {
    this.#write(() => {
      const set = this.#q.setMessageId!.run(packet.messageId ?? null, clientId, packet.brokerId ?? null, packet.brokerCounter ?? null);
      if (set.changes === 0 && packet.messageId !== undefined) this.#q.replaceByMessageId!.run(...packetColumns(packet), clientId, packet.messageId);
    });
  }

  clearQueued(clientId: string, messageId: number): void {
    this.#write(() => this.#q.clearMessageId!.run(clientId, messageId));
  }

  /**
   * Writes the time it closes (so the next run knows when this one stopped) and closes the file. A file this open
   * made and nothing was kept in (a start that failed before the bridge published its card) is removed: a failed
   * start leaves the data directory as it found it. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    clearInterval(this.#heartbeat);
    this.#alive();
    let empty = false;
    try {
      empty = this.#made && (this.#db.prepare('SELECT (SELECT count(*) FROM retained) + (SELECT count(*) FROM sessions) + (SELECT count(*) FROM subscriptions) + (SELECT count(*) FROM outgoing) AS n').get() as { n: number }).n === 0;
    } catch {
      // unreadable now: kept as it is
    }
    this.#closed = true;
    try {
      this.#db.close();
      if (empty) for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${this.file}${suffix}`, { force: true });
    } catch (err) {
      this.#failed(err as Error);
    }
  }

  #getMeta(key: string): string | undefined {
    return (this.#q.getMeta!.get(key) as { value: string } | undefined)?.value;
  }

  #alive(): void {
    this.#write(() => this.#q.setMeta!.run('alive_at', String(Date.now())));
  }

  #write(run: () => unknown): void {
    if (this.#closed) return;
    try {
      run();
    } catch (err) {
      this.#failed(err as Error);
    }
  }

  #lastErrorAt = -Infinity;
  #suppressed = 0;

  /** At most one report per 10 s (a full disk fails every write), saying how many were not reported. */
  #failed(err: Error): void {
    const now = performance.now();
    if (now - this.#lastErrorAt < 10_000) {
      this.#suppressed++;
      return;
    }
    this.#lastErrorAt = now;
    if (this.#suppressed > 0) err.message += ` (and ${this.#suppressed} more failed writes)`;
    this.#suppressed = 0;
    this.#onError(err);
  }

  #transaction(run: () => void): void {
    this.#write(() => {
      this.#db.exec('BEGIN');
      try {
        run();
        this.#db.exec('COMMIT');
      } catch (err) {
        if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
        throw err;
      }
    });
  }
}

function packetColumns(p: Omit<QueuedRow, 'clientId'>): [string, string | null, Buffer | null, number, number, number, string | null, number | null] {
  return [p.cmd, p.topic ?? null, p.payload ?? null, p.qos, p.retain ? 1 : 0, p.dup ? 1 : 0, p.brokerId ?? null, p.brokerCounter ?? null];
}

/** SQLite's answer as one line an operator can act on; nothing is deleted for them. */
function stateDbError(err: unknown, file: string): unknown {
  if (err instanceof TaliError) return err;
  const e = err as Error & { errcode?: number; code?: string };
  const primary = (e.errcode ?? -1) & 0xff;
  const keep = 'Nothing was changed; the bridge did not start';
  if (primary === 5 || primary === 6 || /locked|busy/i.test(e.message)) {
    return new TaliError('TALI_ERR_STATE_DB', `state file ${file} is in use by another process (${e.message}). ${keep}. Hint: stop the other tali using this data directory and bridge ID, or give this one another --bridge-id or --state-file`);
  }
  if (primary === 26 || primary === 11 || /not a database|malformed|corrupt/i.test(e.message)) {
    return new TaliError('TALI_ERR_STATE_DB', `state file ${file} is not a readable database (${e.message}). ${keep}. Hint: move the file away (retained cards and queued messages in it are then lost) and start again, or start with --persistence false`);
  }
  if (e.code === 'ERR_SQLITE_ERROR' || primary === 8 || primary === 10 || primary === 13 || primary === 14) {
    return new TaliError('TALI_ERR_STATE_DB', `state file ${file} cannot be opened or written (${e.message}). ${keep}. Hint: check the data directory's permissions and free space, or use another --state-file`);
  }
  return err;
}
