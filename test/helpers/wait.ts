/**
 * Waiting on events, never on time: each helper resolves on the event it names and fails after a timeout with a
 * message that says what did not happen.
 */
import type { MqttClient } from 'mqtt';

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

type Listener<A extends unknown[]> = (...args: A) => void;
interface Emitter<A extends unknown[]> {
  on(event: string, listener: Listener<A>): unknown;
  off(event: string, listener: Listener<A>): unknown;
}

/** Resolves with the arguments of the first `event` whose arguments satisfy `predicate`. */
export function waitFor<A extends unknown[]>(
  emitter: Emitter<A>,
  event: string,
  predicate: (...args: A) => boolean = () => true,
  ms = 10_000,
): Promise<A> {
  let listener!: Listener<A>;
  const seen = new Promise<A>((resolve) => {
    listener = (...args: A) => {
      if (predicate(...args)) resolve(args);
    };
    emitter.on(event, listener);
  });
  return withTimeout(seen, ms, `"${event}"`).finally(() => emitter.off(event, listener));
}

/** Collects every message a client receives, and lets a test wait for the first one that matches. */
export class Inbox {
  readonly messages: { topic: string; payload: Buffer; json: Record<string, unknown> | undefined }[] = [];
  readonly #waiters = new Set<() => void>();

  constructor(client: MqttClient) {
    client.on('message', (topic, payload) => {
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(payload.toString()) as Record<string, unknown>;
      } catch {
        json = undefined;
      }
      this.messages.push({ topic, payload, json });
      for (const wake of this.#waiters) wake();
    });
  }

  /** Takes the first message (already received or arriving later) whose parsed JSON matches. */
  async next(match: (json: Record<string, unknown>, topic: string) => boolean, ms = 10_000, what = 'a message'): Promise<Record<string, unknown>> {
    let wake!: () => void;
    const found = new Promise<Record<string, unknown>>((resolve) => {
      wake = () => {
        const index = this.messages.findIndex((m) => m.json !== undefined && match(m.json, m.topic));
        if (index === -1) return;
        const [hit] = this.messages.splice(index, 1);
        resolve(hit?.json as Record<string, unknown>);
      };
      this.#waiters.add(wake);
      wake();
    });
    return withTimeout(found, ms, what).finally(() => this.#waiters.delete(wake));
  }
}

/**
 * For state that has no event of its own, such as libuv handles still closing after a socket's 'close' event:
 * re-checks `condition` each 10 ms until it holds, failing after `ms`.
 */
export async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** `until` for a condition that must be read asynchronously (e.g. through a persistence interface). */
export async function eventually(condition: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
