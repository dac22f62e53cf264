/**
 * Keyframe requests towards one camera, rate-limited and coalesced: every viewer join and every viewer PLI asks,
 * but the camera hears at most one request per interval, and a request inside the interval is sent at its end
 * rather than dropped, so the viewer that asked still gets its keyframe. (Janus and mediasoup bound PLI the same way.)
 */
export class KeyframeRequests {
  readonly #send: () => void;
  readonly #intervalMs: number;
  #lastSentAt = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;
  sent = 0;
  coalesced = 0;

  constructor(send: () => void, intervalMs: number) {
    this.#send = send;
    this.#intervalMs = intervalMs;
  }

  request(): void {
    if (this.#timer !== undefined) {
      this.coalesced++;
      return;
    }
    const wait = this.#lastSentAt + this.#intervalMs - performance.now();
    if (wait <= 0) {
      this.#fire();
      return;
    }
    this.coalesced++;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#fire();
    }, wait);
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fire(): void {
    this.#lastSentAt = performance.now();
    this.sent++;
    this.#send();
  }
}
