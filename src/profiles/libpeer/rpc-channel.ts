/**
 * One libpeer device's JSON-RPC calls: numbers requests (1, 2, 3, …), matches responses by id, times out the ones
 * that get none. QoS 0 both ways (libpeer subscribes and publishes at QoS 0), so a lost request is a timeout here.
 */
import { encodeRequest, MAX_RPC_ID, type LibpeerMethod, type RpcResponse } from './json-rpc.ts';

export class RpcTimeoutError extends Error {
  constructor(method: string, ms: number) {
    super(`no response to "${method}" within ${ms} ms`);
    this.name = 'RpcTimeoutError';
  }
}

export class RpcClosedError extends Error {
  constructor() {
    super('the device went away');
    this.name = 'RpcClosedError';
  }
}

interface Pending {
  method: LibpeerMethod;
  resolve: (response: RpcResponse) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class RpcChannel {
  readonly #publish: (payload: string) => void;
  readonly #fits: (payload: string) => boolean;
  readonly #pending = new Map<number, Pending>();
  #lastId = 0;
  #closed = false;

  /**
   * `publish` sends a payload on the device's invoke topic; `fits` says whether a payload fits the device's buffer
   * (libpeer's 4096-byte MQTT buffer holds the whole packet).
   */
  constructor(publish: (payload: string) => void, fits: (payload: string) => boolean) {
    this.#publish = publish;
    this.#fits = fits;
  }

  /** Calls a method that gets a response; rejects with RpcTimeoutError, or RpcClosedError once closed. */
  call(method: 'offer' | 'state' | 'close', timeoutMs: number): Promise<RpcResponse> {
    if (this.#closed) return Promise.reject(new RpcClosedError());
    const id = this.#nextId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new RpcTimeoutError(method, timeoutMs));
      }, timeoutMs);
      this.#pending.set(id, { method, resolve, reject, timer });
      this.#publish(encodeRequest(method, id));
    });
  }

  /** Sends a request libpeer does not answer (`answer`). Throws RangeError if it would not fit the device's buffer. */
  notify(method: 'answer', params: string): void {
    if (this.#closed) throw new RpcClosedError();
    const payload = encodeRequest(method, this.#nextId(), params);
    if (!this.#fits(payload)) throw new RangeError(`"${method}" request of ${Buffer.byteLength(payload)} bytes does not fit the device's buffer`);
    this.#publish(payload);
  }

  /** Whether a request carrying `params` would fit the device's buffer (the id taking its largest width). */
  fits(method: LibpeerMethod, params: string): boolean {
    return this.#fits(encodeRequest(method, MAX_RPC_ID, params));
  }

  /** A response from the device; one nobody waits for (late, or for a request before a reconnect) is dropped. */
  deliver(response: RpcResponse): boolean {
    const pending = this.#pending.get(response.id);
    if (pending === undefined) return false;
    this.#pending.delete(response.id);
    clearTimeout(pending.timer);
    pending.resolve(response);
    return true;
  }

  /** Rejects every pending call. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(new RpcClosedError());
    }
    this.#pending.clear();
  }

  #nextId(): number {
    this.#lastId = this.#lastId >= MAX_RPC_ID ? 1 : this.#lastId + 1;
    return this.#lastId;
  }
}
