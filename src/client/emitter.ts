/**
 * A tiny typed event emitter. The device SDK also runs in browser camera pages, where node:events does not exist,
 * and EventTarget would lose the payload types; this is the few lines both need.
 */

// `any` only in the storage type: each listener is stored under its own key and called with that key's arguments.
type AnyListener = (...args: any[]) => void;

export type Listener<Args extends unknown[]> = (...args: Args) => void;

export class TypedEmitter<Events extends { [K in keyof Events]: unknown[] }> {
  readonly #listeners = new Map<keyof Events, Set<AnyListener>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Adds a listener that runs at most once; returns a function that removes it. */
  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(event, (...args) => {
      off();
      listener(...args);
    });
    return off;
  }

  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.#listeners.get(event)?.delete(listener);
  }

  removeAllListeners(): void {
    this.#listeners.clear();
  }

  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  /**
   * Calls the listeners in the order they were added. A listener that throws must not leave the emitter's own state
   * machine half-updated, so its exception is re-thrown on a fresh task: it still surfaces (an uncaught exception in
   * Node, a console error in a browser) instead of being swallowed.
   */
  protected emit<K extends keyof Events>(event: K, ...args: Events[K]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (err) {
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  }
}
