/**
 * Removing (or re-keying) an identity takes effect on live connections too: the data directory is watched, and on
 * each change of identities.json the store is re-read and every client whose identity is gone, changed role or
 * logged in with a secret that was replaced is disconnected. Tokens of a removed or re-keyed user go the same way.
 *
 * fs.watch on the directory sees the atomic rename the store writes with; a slow poll (one stat) covers file systems
 * where watching does not work (some network and container mounts).
 */
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import type { CredentialStore } from './credentials.ts';
import type { Identity } from './identity.ts';

export interface Disconnector {
  disconnectWhere(predicate: (identity: Identity, clientId: string) => boolean, reason: string): number;
}

export interface RevocationOptions {
  store: CredentialStore;
  dataDir: string;
  broker: Disconnector;
  logger: Logger;
  /** Poll period, ms (default 5000). */
  pollMs?: number;
}

/** Whether a connected client's identity still stands, as of the store's last read. */
export function stillValid(store: CredentialStore, identity: Identity): boolean {
  if (identity.role === 'bridge' || identity.source === 'anonymous' || identity.source === 'internal') return true;
  const stored = store.lookup(identity.id);
  if (stored === undefined) return false;
  // A token carries the stamp of the credential it was issued under (`cred`): re-keying the user voids it.
  if (identity.source === 'token') return stored.role !== 'device' && stored.created === identity.credential;
  return stored.role === identity.role && (identity.credential === undefined || stored.created === identity.credential);
}

export class RevocationWatcher {
  readonly #options: RevocationOptions;
  /** The broker, and whatever else holds sessions of identities (WHEP sessions, src/profiles/whep/). */
  readonly #targets: Disconnector[];
  readonly #watcher: FSWatcher | undefined;
  readonly #poll: NodeJS.Timeout;
  #version: string;
  #checking: Promise<void> | undefined;
  #again = false;
  #closed = false;

  constructor(options: RevocationOptions) {
    this.#options = options;
    this.#targets = [options.broker];
    this.#version = options.store.version;
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(options.dataDir, { persistent: false }, (_event, file) => {
        if (file === null || file === 'identities.json') this.check();
      });
      watcher.on('error', () => {});
    } catch (err) {
      options.logger.warn({ err: (err as Error).message, dataDir: options.dataDir }, 'cannot watch the data directory; polling it');
    }
    this.#watcher = watcher;
    this.#poll = setInterval(() => this.check(), options.pollMs ?? 5000).unref();
  }

  /** Checks `target`'s sessions too at each change of the store. */
  add(target: Disconnector): void {
    this.#targets.push(target);
  }

  /** Re-reads the store if it changed and disconnects what no longer stands. Resolves when done. */
  check(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#checking) {
      this.#again = true;
      return this.#checking;
    }
    this.#checking = (async () => {
      do {
        this.#again = false;
        const { store, logger } = this.#options;
        try {
          await store.refresh();
        } catch (err) {
          logger.error({ err: (err as Error).message, file: store.file }, 'cannot read the credential store');
          continue;
        }
        if (store.version === this.#version) continue;
        this.#version = store.version;
        for (const target of this.#targets) target.disconnectWhere((identity) => !stillValid(store, identity), 'identity removed or re-keyed');
      } while (this.#again && !this.#closed);
    })().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  /** Idempotent. */
  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    clearInterval(this.#poll);
  }
}
