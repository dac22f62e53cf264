/**
 * Keyframe requests towards one camera: at most one outstanding at a time. Every viewer join, every viewer PLI and the
 * stream going live say a keyframe is needed; the camera hears a request at once unless one is outstanding, and a need
 * while one is outstanding joins it (a crowd joining at once costs the camera one PLI). The camera's next keyframe
 * answers the request, so the need after it is sent at once (viewers watching back to back each get their picture
 * without waiting out a window). A request still unanswered after `retryMs` is sent again (the PLI or the keyframe
 * was lost, or the camera dropped it); after that, again only while needs keep coming.
 *
 * This is mediasoup's KeyFrameRequestManager (worker/src/RTC/KeyFrameRequestManager.cpp at a82dba8: KeyFrameNeeded,
 * KeyFrameReceived, OnKeyFrameRequestTimeout with its retryOnTimeout flag, KeyFrameRetransmissionWaitTime; and
 * `keyFrameRequestDelay`, our `minIntervalMs`), with one difference: the first timeout always retries, whether or not
 * another need came. A libwebrtc sender drops a request that comes within 300 ms of the last one it acted on
 * (video/encoder_rtcp_feedback.cc, kMinKeyframeSendIntervalMs), so a request sent right after an answered one can be
 * dropped silently, and a lone viewer would otherwise wait for its own next ask (KEYFRAME_RETRY_MS in ./viewer.ts).
 *
 *   idle ──── need ────► outstanding (sent)     idle ── need within minIntervalMs of the last request ──► deferred
 *   outstanding ── need ──► outstanding (joined)  deferred ── minIntervalMs over ──► outstanding (sent)
 *   outstanding ── keyframe ──► idle               deferred ── keyframe ──► idle
 *   outstanding ── retryMs, not retried yet or asked since ──► outstanding (sent again)
 *   outstanding ── retryMs, retried and nobody asked since ──► idle
 */
export const KEYFRAME_REQUEST_STATES = ['idle', 'deferred', 'outstanding'] as const;
export type KeyframeRequestState = (typeof KEYFRAME_REQUEST_STATES)[number];

export interface KeyframeRequestOptions {
  /** Sends one request to the camera (RTCP PLI). */
  send: () => void;
  /** An unanswered request is sent again after this long. */
  retryMs: number;
  /** Least milliseconds between two requests (a floor for cameras that choke on many); 0: none. */
  minIntervalMs: number;
}

export class KeyframeRequests {
  readonly #options: KeyframeRequestOptions;
  #state: KeyframeRequestState = 'idle';
  #timer: NodeJS.Timeout | undefined;
  #lastSentAt = Number.NEGATIVE_INFINITY;
  /** Whether the outstanding request is sent again when its retry timer runs out without a keyframe. */
  #retry = false;
  /** Requests sent to the camera, retries included. */
  sent = 0;
  /** Needs that joined an outstanding or deferred request instead of sending their own. */
  coalesced = 0;
  /** Requests sent again because no keyframe answered them in time. */
  retried = 0;

  constructor(options: KeyframeRequestOptions) {
    this.#options = options;
  }

  get state(): KeyframeRequestState {
    return this.#state;
  }

  /** Someone needs a keyframe. */
  needed(): void {
    if (this.#state !== 'idle') {
      this.coalesced++;
      this.#retry = true;
      return;
    }
    const wait = this.#lastSentAt + this.#options.minIntervalMs - performance.now();
    if (wait > 0) {
      this.coalesced++;
      this.#state = 'deferred';
      this.#timer = setTimeout(() => this.#send(true), wait);
      return;
    }
    this.#send(true);
  }

  /** The camera sent a keyframe: it answers the request outstanding (or deferred), whoever asked. */
  received(): void {
    this.reset();
  }

  /** Forgets any request (a keyframe came, or the camera's session changed and the next need asks the new one). */
  reset(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#state = 'idle';
    this.#retry = false;
  }

  close(): void {
    this.reset();
  }

  #send(retry: boolean): void {
    this.#state = 'outstanding';
    this.#retry = retry;
    this.#lastSentAt = performance.now();
    this.sent++;
    // The floor holds for retries too.
    this.#timer = setTimeout(() => this.#timedOut(), Math.max(this.#options.retryMs, this.#options.minIntervalMs));
    this.#options.send();
  }

  #timedOut(): void {
    this.#timer = undefined;
    if (!this.#retry) {
      this.#state = 'idle';
      return;
    }
    this.retried++;
    this.#send(false);
  }
}
