/**
 * The credential store: `identities.json` in the data directory. Secrets are generated here (24 random bytes), shown
 * once, and kept only as salted hashes. Writers replace the file atomically; the running bridge notices the new
 * modification time on its next authentication and reloads, so `tali device add` works without a restart.
 *
 * Two hashes, by who types the secret (docs/security.md, "Secrets"):
 *  - users (viewers, admins): scrypt (RFC 7914), made for secrets a person may choose and type;
 *  - devices: HMAC-SHA256 under a key of this store (`hmacKey` in the file), over salt and secret. A device secret
 *    is 192 random bits, so no guessing rate matters and a slow hash buys nothing, while scrypt at tens of ms per
 *    check made a fleet's reconnect after a restart take minutes. Device entries from before (scrypt) still verify,
 *    and are re-hashed to HMAC after their next successful login.
 */
import { createHmac, randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Stats } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertValidId } from '../protocol/topics.ts';
import type { DeviceProfile, Role } from './identity.ts';
import { LoginThrottle } from './login-throttle.ts';

/** N=2^14, r=8, p=1: ~16 MiB and tens of ms per check, the interactive-login figure from RFC 7914 §2. */
const SCRYPT: ScryptOptions = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEY_BYTES = 32;

export interface StoredIdentity {
  id: string;
  role: Exclude<Role, 'bridge'>;
  /** How `hash` was made; absent: scrypt (every entry before HMAC device secrets). */
  kdf?: 'hmac-sha256';
  salt: string;
  hash: string;
  /** When the secret was set: the credential stamp that tokens and connections are checked against. */
  created: string;
  /** Devices that speak another wire protocol than v1 (see DeviceProfile); absent for native devices. */
  profile?: DeviceProfile;
}

interface StoreFile {
  version: 1;
  /** The key of device secrets' HMAC (32 random bytes, base64url); made with the first such entry. */
  hmacKey?: string;
  identities: StoredIdentity[];
}

/** Device entries still on scrypt are re-hashed this long after their first successful login, all in one write. */
const REHASH_DELAY_MS = 200;

export function scrypt(secret: string | Buffer, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCallback(secret, salt, KEY_BYTES, SCRYPT, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export function generateSecret(): string {
  return randomBytes(24).toString('base64url');
}

export class CredentialStore {
  readonly file: string;
  /** Throttles the bridge's credential checks from outside (./login-throttle.ts); one per store, so one per bridge. */
  readonly logins = new LoginThrottle();
  #cache: Map<string, StoredIdentity> = new Map();
  #hmacKey: Buffer | undefined;
  /** Device entries verified with scrypt, to re-hash: id → the entry as verified and its secret (briefly). */
  readonly #rehash = new Map<string, { entry: StoredIdentity; secret: Buffer }>();
  #rehashTimer: NodeJS.Timeout | undefined;
  /** mtime, inode and size of the file last read: a rename always brings a new inode, however close two writes are. */
  #version = '';

  constructor(dataDir: string) {
    this.file = join(dataDir, 'identities.json');
  }

  /** Changes whenever the file does; empty before the first read or when there is no file. */
  get version(): string {
    return this.#version;
  }

  /**
   * Re-reads the file if it changed since the last read. Cheap: one stat. One at a time with updates in this
   * process (see #exclusive).
   */
  refresh(): Promise<void> {
    return this.#exclusive(() => this.#refresh());
  }

  async #refresh(): Promise<void> {
    let version: string;
    try {
      version = versionOf(await stat(this.file));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.#cache = new Map();
      this.#hmacKey = undefined;
      this.#version = '';
      return;
    }
    if (version === this.#version) return;
    const parsed = JSON.parse(await readFile(this.file, 'utf8')) as StoreFile;
    if (parsed.version !== 1 || !Array.isArray(parsed.identities)) throw new Error(`${this.file}: unknown format`);
    this.#cache = new Map(parsed.identities.map((i) => [i.id, i]));
    this.#hmacKey = parsed.hmacKey === undefined ? undefined : Buffer.from(parsed.hmacKey, 'base64url');
    this.#version = version;
  }

  async list(): Promise<StoredIdentity[]> {
    await this.refresh();
    return [...this.#cache.values()];
  }

  /** As of the last read (refresh() first when it matters). */
  lookup(id: string): StoredIdentity | undefined {
    return this.#cache.get(id);
  }

  async get(id: string): Promise<StoredIdentity | undefined> {
    await this.refresh();
    return this.#cache.get(id);
  }

  /**
   * Adds (or, with replace, re-keys) an identity and returns its new secret, the only time it exists in clear. A
   * device's profile is `options.profile` when given (null: native), else what it was (re-keying keeps it).
   */
  async add(id: string, role: StoredIdentity['role'], options: { replace?: boolean; profile?: DeviceProfile | null } = {}): Promise<string> {
    assertValidId(id, role === 'device' ? 'device ID' : 'user name');
    const secret = generateSecret();
    const salt = randomBytes(16);
    // The slow part (scrypt) before taking the lock, so other writers wait only for the file itself.
    const slow = role === 'device' ? undefined : await scrypt(secret, salt);
    await this.#update(() => {
      const existing = this.#cache.get(id);
      if (existing && !options.replace) throw new Error(`${id} already exists (remove it first)`);
      if (existing && existing.role !== role) throw new Error(`${id} exists with role ${existing.role}`);
      const profile = options.profile === undefined ? existing?.profile : (options.profile ?? undefined);
      const hash = slow ?? this.#hmac(salt, secret);
      this.#cache.set(id, {
        id,
        role,
        ...(slow === undefined && { kdf: 'hmac-sha256' as const }),
        salt: salt.toString('base64'),
        hash: hash.toString('base64'),
        created: new Date().toISOString(),
        ...(role === 'device' && profile !== undefined && { profile }),
      });
      return true;
    });
    return secret;
  }

  /** Whether checking a secret for `id` runs scrypt (a user, an unknown name, a device entry from before HMAC). */
  isSlowCheck(id: string): boolean {
    return this.#cache.get(id)?.kdf !== 'hmac-sha256';
  }

  async remove(id: string): Promise<boolean> {
    return this.#update(() => this.#cache.delete(id));
  }

  /**
   * Read, change, write under a lock file, so two processes (a `tali device add` and a `tali camera` registering
   * itself) cannot each write the file from their own stale copy and lose the other's entry.
   */
  #update(change: () => boolean): Promise<boolean> {
    return this.#exclusive(async () => {
      await mkdir(join(this.file, '..'), { recursive: true });
      const release = await lockFile(`${this.file}.lock`);
      try {
        this.#version = ''; // read again whatever the stat says: we hold the lock now
        await this.#refresh();
        const changed = change();
        if (changed) await this.#write();
        return changed;
      } finally {
        await release();
      }
    });
  }

  /**
   * Runs reads and updates of this process one after the other. Concurrently, a read that began before an update's
   * write and ended after it put the old entries back under the new file's version: an identity just added was
   * then refused ("bad user name or password") until the file changed again (seen with devices added while others
   * logged in; test/security/credentials.test.ts).
   */
  #exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => {});
    return run;
  }

  #queue: Promise<unknown> = Promise.resolve();

  /** The stored identity if `secret` is its secret; constant-time comparison. */
  async verify(id: string, secret: Buffer): Promise<StoredIdentity | undefined> {
    const entry = await this.get(id);
    if (entry === undefined) {
      // Spend the same work for unknown names, so timing does not reveal which user names exist.
      await scrypt(secret, Buffer.alloc(16));
      return undefined;
    }
    const salt = Buffer.from(entry.salt, 'base64');
    const expected = Buffer.from(entry.hash, 'base64');
    if (entry.kdf === 'hmac-sha256') {
      if (this.#hmacKey === undefined) return undefined;
      const given = this.#hmac(salt, secret);
      return given.length === expected.length && timingSafeEqual(given, expected) ? entry : undefined;
    }
    const key = await scrypt(secret, salt);
    if (key.length !== expected.length || !timingSafeEqual(key, expected)) return undefined;
    if (entry.role === 'device') this.#queueRehash(entry, secret);
    return entry;
  }

  /** Writes what is queued for re-hashing now (normally REHASH_DELAY_MS after the first login queued). */
  async flushRehash(): Promise<void> {
    clearTimeout(this.#rehashTimer);
    this.#rehashTimer = undefined;
    if (this.#rehash.size === 0) return;
    const pending = [...this.#rehash.values()];
    this.#rehash.clear();
    await this.#update(() => {
      let changed = false;
      for (const { entry, secret } of pending) {
        const current = this.#cache.get(entry.id);
        // Only the entry as it was verified: a re-key or removal since then wins.
        if (current?.hash !== entry.hash || current.created !== entry.created || current.kdf !== undefined) continue;
        const salt = randomBytes(16);
        this.#cache.set(entry.id, { ...current, kdf: 'hmac-sha256', salt: salt.toString('base64'), hash: this.#hmac(salt, secret).toString('base64') });
        changed = true;
      }
      return changed;
    }).catch(() => {}); // an optimisation: a failed write is retried at the next successful login
  }

  #queueRehash(entry: StoredIdentity, secret: Buffer): void {
    this.#rehash.set(entry.id, { entry, secret: Buffer.from(secret) });
    this.#rehashTimer ??= setTimeout(() => void this.flushRehash(), REHASH_DELAY_MS).unref();
  }

  /** HMAC-SHA256 of salt and secret under the store's key; only inside #update when the key may not exist yet. */
  #hmac(salt: Buffer, secret: string | Buffer): Buffer {
    this.#hmacKey ??= randomBytes(32);
    return createHmac('sha256', this.#hmacKey).update(salt).update(secret).digest();
  }

  async #write(): Promise<void> {
    const body: StoreFile = {
      version: 1,
      ...(this.#hmacKey !== undefined && { hmacKey: this.#hmacKey.toString('base64url') }),
      identities: [...this.#cache.values()],
    };
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, this.file);
    this.#version = versionOf(await stat(this.file));
  }
}

const LOCK_WAIT_MS = 10_000;
/** A lock older than this was left by a process that died while holding it (writes take milliseconds). */
const LOCK_STALE_MS = 30_000;

/** Creates `path` exclusively (O_EXCL), retrying while another process holds it; resolves with the release. */
async function lockFile(path: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.close();
      return () => unlink(path).catch(() => {});
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const age = await stat(path).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age > LOCK_STALE_MS) await unlink(path).catch(() => {});
    else if (Date.now() > deadline) throw new Error(`${path} is held by another tali process; remove it if none is running`);
    else await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 20));
  }
}

function versionOf(s: Stats): string {
  return `${s.mtimeMs}:${s.ino}:${s.size}`;
}
