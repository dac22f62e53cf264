/**
 * Whether the bridge's own peers can use the TURN server right now. An answer waits for the bridge's relay candidate
 * at most `turnAnswerWaitMs` (then trickles it: Peer.trickleLate); unpatched werift held it until the allocation failed,
 * 6 s (a closed port on this host) to 13 s (an address that drops packets). So that answers do not wait even that
 * bound, and no allocation is tried per session against a dead server, the bridge checks its TURN server with an
 * Allocate of its own (./allocate.ts) at start and every `intervalMs`, and its peers go without TURN while it does not
 * answer: devices and viewers still reach the bridge's host candidates through their own relay candidates. Relay-only
 * peers keep TURN whatever the probe says (IcePlan.bridgePeer): they have nothing else.
 *
 *   unknown ──probe──► reachable ◄──probe──► unreachable      (a change of state is logged once)
 *
 * Only a UDP turn: URL can be probed this way; with turns: or transport=tcp first, the server is assumed reachable.
 */
import type { Logger } from 'pino';
import { tryAllocate } from './allocate.ts';
import type { TurnCredentials } from './credentials.ts';

export interface TurnProbeOptions {
  turn: TurnCredentials;
  /** Whose credentials the probe uses (the bridge's ID). */
  identity: string;
  intervalMs?: number | undefined;
  timeoutMs?: number | undefined;
  log: Logger;
}

/** host and port of a `turn:` URL over UDP (RFC 7065 §3.1), or undefined for any other. */
export function udpTurnServer(url: string): { address: string; port: number } | undefined {
  const m = /^turn:(\[[^\]]+\]|[^:?]+)(?::(\d+))?(?:\?transport=(\w+))?$/i.exec(url);
  if (m === null || (m[3] !== undefined && m[3].toLowerCase() !== 'udp')) return undefined;
  return { address: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] === undefined ? 3478 : Number(m[2]) };
}

export class TurnProbe {
  readonly #options: TurnProbeOptions;
  readonly #server: { address: string; port: number } | undefined;
  #state: 'unknown' | 'reachable' | 'unreachable' = 'unknown';
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: TurnProbeOptions) {
    this.#options = options;
    // werift uses the first TURN URL it is given (werift/lib/webrtc/src/utils.js parseIceServers).
    this.#server = udpTurnServer(options.turn.urls[0] ?? '');
  }

  /** Whether the bridge's peers should gather TURN candidates now (true while unprobed or unprobeable). */
  get reachable(): boolean {
    return this.#state !== 'unreachable';
  }

  /** Probes once (bounded by timeoutMs), then every intervalMs. */
  async start(): Promise<void> {
    await this.probe();
    if (this.#server === undefined || this.#closed) return;
    this.#timer = setInterval(() => void this.probe(), this.#options.intervalMs ?? 30_000);
    this.#timer.unref();
  }

  async probe(): Promise<boolean> {
    const server = this.#server;
    if (server === undefined) return true;
    const { iceServers } = this.#options.turn.mint(this.#options.identity);
    const { username = '', credential = '' } = iceServers[0] ?? {};
    let problem: string | undefined;
    try {
      const result = await tryAllocate(server, username, credential, this.#options.timeoutMs ?? 2000);
      if (!result.ok) problem = `refused: ${result.code} ${result.reason} (is its secret the bridge's turnSecret?)`;
    } catch (err) {
      problem = (err as Error).message;
    }
    if (this.#closed) return problem === undefined;
    const state = problem === undefined ? 'reachable' : 'unreachable';
    if (state !== this.#state) {
      const at = `${server.address}:${server.port}`;
      if (problem) this.#options.log.warn({ turn: at, problem }, "TURN server unusable: the bridge's peers go without relay candidates");
      else this.#options.log.info({ turn: at }, 'TURN server reachable');
    }
    this.#state = state;
    return problem === undefined;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }
}
