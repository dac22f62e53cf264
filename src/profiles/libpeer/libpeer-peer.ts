/**
 * A libpeer device's PeerConnection, driven over its JSON-RPC: the DevicePeer that SessionKeeper (devices/sdk) runs
 * for it, exactly as it runs werift for a simulated camera. So a libpeer device goes through the same device state
 * machine (offer on start, backoff, bye handling) as a native one, and the bridge sees protocol v1.
 *
 *   createOffer ─ "offer" ─► SDP (all candidates inside) ─► offer, then end of candidates
 *   applyAnswer ─ "answer" (trimmed to fit, candidates inside; trickled ones are gathered first) ─► polling "state":
 *     completed → connected · failed → failed · closed/new/disconnected (it ended the call) → closed
 *   close ─ "close"
 *
 * libpeer refuses an offer while a call is live (checking, connected, completed: −32603); the offer then closes that
 * call first and asks again.
 */
import type { Logger } from 'pino';
import type { DevicePeer, DevicePeerState, IceCandidateInit } from '../../../devices/sdk/device-peer.ts';
import { isLibpeerState, RPC_ERRORS, type RpcResponse } from './json-rpc.ts';
import { RpcClosedError, type RpcChannel } from './rpc-channel.ts';
import { fromLibpeerOffer, toLibpeerAnswer } from './sdp.ts';

/** libpeer gathers before it answers `offer`: host candidates at once, up to ~1 s per STUN/TURN server it has. */
export const OFFER_TIMEOUT_MS = 8000;
/** How often the call's state is asked while it connects, and once it is connected (the health check). */
export const CONNECTING_POLL_MS = 500;
export const CONNECTED_POLL_MS = 5000;
const STATE_TIMEOUT_MS = 4000;
const CLOSE_TIMEOUT_MS = 2000;

export class LibpeerCallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LibpeerCallError';
  }
}

export class LibpeerPeer implements DevicePeer {
  onLocalCandidate: ((candidate: IceCandidateInit | null) => void) | undefined;
  onStateChange: ((state: DevicePeerState) => void) | undefined;
  readonly #rpc: RpcChannel;
  readonly #log: Logger;
  /** An answer without candidates, waiting for the trickled ones (a bridge answer over the native 3840-byte limit). */
  #heldAnswer: { sdp: string; candidates: string[] } | undefined;
  #answered = false;
  #state: DevicePeerState = 'connecting';
  #poll: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #pollMs: { connecting: number; connected: number };

  constructor(rpc: RpcChannel, log: Logger, pollMs: Partial<{ connecting: number; connected: number }> = {}) {
    this.#rpc = rpc;
    this.#log = log;
    this.#pollMs = { connecting: CONNECTING_POLL_MS, connected: CONNECTED_POLL_MS, ...pollMs };
  }

  async createOffer(): Promise<string> {
    let response = await this.#rpc.call('offer', OFFER_TIMEOUT_MS);
    if ('error' in response && response.error.code === RPC_ERRORS.internalError) {
      this.#log.info('libpeer has a call in progress: closing it before offering');
      await this.#rpc.call('close', CLOSE_TIMEOUT_MS);
      response = await this.#rpc.call('offer', OFFER_TIMEOUT_MS);
    }
    const sdp = resultOf(response, 'offer');
    // No trickle: the offer carries every candidate, and gathering is over.
    this.onLocalCandidate?.(null);
    return fromLibpeerOffer(sdp);
  }

  async applyAnswer(sdp: string): Promise<void> {
    if (/^a=candidate:/m.test(sdp)) this.#sendAnswer(sdp);
    else this.#heldAnswer = { sdp, candidates: [] };
  }

  addRemoteCandidate(candidate: IceCandidateInit | null): void {
    const held = this.#heldAnswer;
    if (held === undefined) return; // libpeer takes candidates only inside the answer
    if (candidate !== null) {
      held.candidates.push(`a=${candidate.candidate.replace(/^a=/, '')}`);
      return;
    }
    this.#heldAnswer = undefined;
    const sdp = held.sdp.replace(/(\r?\n)?$/, `\r\n${held.candidates.join('\r\n')}\r\n`);
    try {
      this.#sendAnswer(sdp);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'answer not sent to libpeer');
      this.#setState('failed');
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#poll);
    this.onLocalCandidate = undefined;
    this.onStateChange = undefined;
    // libpeer's close only marks its PeerConnection closed; its reply tells nothing more, so it is not awaited.
    this.#rpc.call('close', CLOSE_TIMEOUT_MS).catch(() => {});
  }

  /** Throws LibpeerSdpError when the answer cannot be made to fit, RangeError when the request still would not. */
  #sendAnswer(sdp: string): void {
    if (this.#closed || this.#answered) return;
    const fitted = toLibpeerAnswer(sdp, (candidate) => this.#rpc.fits('answer', candidate));
    this.#rpc.notify('answer', fitted);
    this.#answered = true;
    this.#schedulePoll(this.#pollMs.connecting);
  }

  #schedulePoll(ms: number): void {
    clearTimeout(this.#poll);
    this.#poll = setTimeout(() => void this.#checkState(), ms);
  }

  async #checkState(): Promise<void> {
    let state: string;
    try {
      state = resultOf(await this.#rpc.call('state', STATE_TIMEOUT_MS), 'state');
    } catch (err) {
      if (this.#closed || err instanceof RpcClosedError) return;
      // A lost request or reply (QoS 0): ask again. A device that stopped answering also stops its media, and the
      // answerer's media timeout ends the session.
      this.#log.debug({ err: (err as Error).message }, 'no state from libpeer');
      this.#schedulePoll(this.#state === 'connected' ? this.#pollMs.connected : this.#pollMs.connecting);
      return;
    }
    if (this.#closed) return;
    if (!isLibpeerState(state)) this.#log.debug({ state }, 'unknown libpeer state');
    if (state === 'completed') this.#setState('connected');
    else if (state === 'failed') this.#setState('failed');
    else if (state === 'closed' || state === 'disconnected' || state === 'new') this.#setState('closed');
    if (this.#state === 'connecting' || this.#state === 'connected') {
      this.#schedulePoll(this.#state === 'connected' ? this.#pollMs.connected : this.#pollMs.connecting);
    }
  }

  #setState(state: DevicePeerState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.onStateChange?.(state);
  }
}

function resultOf(response: RpcResponse, method: string): string {
  if ('error' in response) throw new LibpeerCallError(`libpeer refused "${method}": ${response.error.code} ${response.error.message}`);
  return response.result;
}
