/**
 * The fan-out queue of one event loop: packets read in the loop's I/O pass, forwarded to their viewers after it, in
 * chunks of bounded work, each chunk its own setImmediate, so the poll phase runs between two chunks and what became
 * ready meanwhile (a media worker's port: an offer's or a watch's command; MQTT sockets in one-worker mode) waits for
 * at most one chunk, not for every packet a keyframe burst brought (issue 16: a command's round trip through a media
 * worker was p50 1.2–11.6 ms, p99 20–200 ms under load, when a pass fanned out all it had read at once; one packet of a
 * camera with 25 viewers is ~1 ms of encryption and sends).
 *
 *   idle ──push()──► scheduled ──check phase: before(); one chunk──┬─ queue empty ─────────► idle
 *                       ▲                                           └─ packets left ─► scheduled (next pass, after its poll)
 *                       └───────────────────────────────────────────────────────────────┘
 *
 * A chunk forwards whole packets (every viewer of a packet gets it in the same chunk) until `chunkSends` sends are
 * done: at most chunkSends + (viewers of one camera − 1). The queue is bounded by the sends it holds (`maxQueuedSends`):
 * when a chunk starts past that bound, it forwards beyond its budget until the queue is back within it (catch-up,
 * counted in `catchUpSends`). No packet is dropped here: a loop that cannot keep up reads less often, and its sockets'
 * kernel buffers drop, as before chunking.
 */

/** One packet to forward (`a`, `b`: what `send` takes, e.g. the track and the packet: one object per packet). */
interface Fanned<V, A, B> {
  viewers: ReadonlySet<V>;
  a: A;
  b: B;
  /** Its viewers when queued (what #queuedSends counted). */
  sends: number;
}

export interface FanOutOptions<V, A, B> {
  /** Sends (one packet to one viewer) per chunk; a chunk always takes at least one whole packet. */
  chunkSends: number;
  /** Sends the queue may hold (counted at push, by its viewers then) before a chunk catches up past its budget. */
  maxQueuedSends: number;
  /** Forwards one packet to one viewer. */
  send: (viewer: V, a: A, b: B) => void;
  /** First in each chunk (a media worker posts what the pass made, e.g. an answer, before media work). */
  before?: () => void;
  /** After a chunk that went past its budget to bring the queue back within its bound: the sends past the budget. */
  caughtUp?: (sends: number) => void;
}

/** Defaults: ~1 ms of work per chunk at ~30 µs per send (AES-GCM + UDP send here); ~100 ms of work queued at most. */
export const CHUNK_SENDS = 32;
export const MAX_QUEUED_SENDS = 4096;

export class FanOut<V, A, B> {
  readonly #options: FanOutOptions<V, A, B>;
  #queue: Fanned<V, A, B>[] = [];
  /** Index of the oldest packet not yet forwarded in #queue. */
  #head = 0;
  #queuedSends = 0;
  #scheduled = false;
  /** Chunks run, and sends done past a chunk's budget because the queue was past its bound. */
  chunks = 0;
  catchUpSends = 0;

  constructor(options: FanOutOptions<V, A, B>) {
    this.#options = options;
  }

  /** Packets queued, not yet forwarded. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  push(viewers: ReadonlySet<V>, a: A, b: B): void {
    this.#queue.push({ viewers, a, b, sends: viewers.size });
    this.#queuedSends += viewers.size;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#chunk);
    }
  }

  readonly #chunk = (): void => {
    this.chunks++;
    try {
      this.#options.before?.();
      this.#forward();
    } finally {
      // Scheduled again even if a send threw: the packets after it still go, in the next pass.
      if (this.#head === this.#queue.length) {
        this.#queue = [];
        this.#head = 0;
        this.#queuedSends = 0;
        this.#scheduled = false;
      } else {
        if (this.#head > 1024) {
          this.#queue = this.#queue.slice(this.#head);
          this.#head = 0;
        }
        setImmediate(this.#chunk);
      }
    }
  };

  #forward(): void {
    const { send, chunkSends, maxQueuedSends } = this.#options;
    const queue = this.#queue;
    let sends = 0;
    let caughtUp = 0;
    while (this.#head < queue.length) {
      if (sends >= chunkSends && this.#queuedSends <= maxQueuedSends) break;
      const { viewers, a, b, sends: counted } = queue[this.#head]!;
      queue[this.#head++] = undefined as never; // the packet's buffers go once forwarded
      this.#queuedSends -= counted;
      let n = 0;
      for (const viewer of viewers) {
        send(viewer, a, b);
        n++;
      }
      // A packet started past the budget: only because the queue was past its bound.
      if (sends >= chunkSends) caughtUp += n;
      sends += n;
    }
    if (caughtUp > 0) {
      this.catchUpSends += caughtUp;
      this.#options.caughtUp?.(caughtUp);
    }
  }
}
