/**
 * Connection limits checked when a connection is accepted, before any byte is read: total connections, connections
 * per remote address, and connections that have not completed CONNECT and authentication yet ("pending"), in all and
 * per address. Pending connections are the cheap ones for an attacker (open a socket, say nothing) and the costly
 * ones for us (a password check each when they do send one), so they get their own, smaller bounds; the one per
 * address keeps a single address from filling the pending pool and locking everyone else out.
 */

export interface AdmissionLimits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  maxPendingConnections: number;
  maxPendingConnectionsPerAddress: number;
}

export type AdmissionVerdict = { ok: true; ticket: Ticket } | { ok: false; limit: keyof AdmissionLimits; value: number };

/** One admitted connection; `ready()` when it completed CONNECT, `release()` when it closed. Both idempotent. */
export interface Ticket {
  ready(): void;
  release(): void;
}

export class Admission {
  readonly #limits: AdmissionLimits;
  /** Connections per address: all of them, and those still pending. */
  readonly #perAddress = new Map<string, { total: number; pending: number }>();
  #total = 0;
  #pending = 0;

  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
  }

  get total(): number {
    return this.#total;
  }

  get pending(): number {
    return this.#pending;
  }

  admit(address: string): AdmissionVerdict {
    const l = this.#limits;
    if (this.#total >= l.maxConnections) return { ok: false, limit: 'maxConnections', value: l.maxConnections };
    if (this.#pending >= l.maxPendingConnections) return { ok: false, limit: 'maxPendingConnections', value: l.maxPendingConnections };
    const fromAddress = this.#perAddress.get(address) ?? { total: 0, pending: 0 };
    if (fromAddress.total >= l.maxConnectionsPerAddress) {
      return { ok: false, limit: 'maxConnectionsPerAddress', value: l.maxConnectionsPerAddress };
    }
    if (fromAddress.pending >= l.maxPendingConnectionsPerAddress) {
      return { ok: false, limit: 'maxPendingConnectionsPerAddress', value: l.maxPendingConnectionsPerAddress };
    }
    this.#total++;
    this.#pending++;
    fromAddress.total++;
    fromAddress.pending++;
    this.#perAddress.set(address, fromAddress);
    let pending = true;
    let released = false;
    return {
      ok: true,
      ticket: {
        ready: () => {
          if (!pending || released) return;
          pending = false;
          this.#pending--;
          fromAddress.pending--;
        },
        release: () => {
          if (released) return;
          released = true;
          if (pending) {
            this.#pending--;
            fromAddress.pending--;
          }
          this.#total--;
          if (--fromAddress.total === 0) this.#perAddress.delete(address);
        },
      },
    };
  }
}
