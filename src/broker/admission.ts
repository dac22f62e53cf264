/**
 * Connection limits checked when a connection is accepted, before any byte is read: total connections, connections
 * per remote address, and connections that have not completed CONNECT and authentication yet ("pending"). Pending
 * connections are the cheap ones for an attacker (open a socket, say nothing) and the costly ones for us (a scrypt
 * run each when they do send a password), so they get their own, smaller bound.
 */

export interface AdmissionLimits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  maxPendingConnections: number;
}

export type AdmissionVerdict = { ok: true; ticket: Ticket } | { ok: false; limit: keyof AdmissionLimits; value: number };

/** One admitted connection; `ready()` when it completed CONNECT, `release()` when it closed. Both idempotent. */
export interface Ticket {
  ready(): void;
  release(): void;
}

export class Admission {
  readonly #limits: AdmissionLimits;
  readonly #perAddress = new Map<string, number>();
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
    const fromAddress = this.#perAddress.get(address) ?? 0;
    if (fromAddress >= l.maxConnectionsPerAddress) {
      return { ok: false, limit: 'maxConnectionsPerAddress', value: l.maxConnectionsPerAddress };
    }
    this.#total++;
    this.#pending++;
    this.#perAddress.set(address, fromAddress + 1);
    let pending = true;
    let released = false;
    return {
      ok: true,
      ticket: {
        ready: () => {
          if (!pending || released) return;
          pending = false;
          this.#pending--;
        },
        release: () => {
          if (released) return;
          released = true;
          if (pending) this.#pending--;
          this.#total--;
          const left = (this.#perAddress.get(address) ?? 1) - 1;
          if (left === 0) this.#perAddress.delete(address);
          else this.#perAddress.set(address, left);
        },
      },
    };
  }
}
