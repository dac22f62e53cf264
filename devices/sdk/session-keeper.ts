/**
 * Keeps exactly one camera session alive. It offers when the device is connected and an online bridge is known, and
 * offers again (with backoff) whenever the session is lost: ICE failure, no answer in time, a bye or an error from
 * the bridge, an MQTT reconnect, or the bridge coming back with a new card. WebRTC-stack-agnostic (see DevicePeer)
 * and browser-safe.
 *
 *   idle ── offer ──► offering ── answer ──► answered ── ICE+DTLS ──► connected
 *    ▲                    │                     │                         │
 *    └──── retry timer ◄──┴── timeout · bye · error · ice-failed ─────────┘
 */
import { ERROR_CODES, isErrorCode, ProtocolError, type BridgeStatus, type ByeReason, type ErrorMessage } from '../../src/protocol/index.ts';
import { backoffDelay, backoffOptions, type BackoffOptions } from '../../src/client/backoff.ts';
import { CameraSession, randomSessionId, type SessionInfo } from './camera-session.ts';
import type { DeviceClient, UpBody } from './device-client.ts';
import type { DevicePeer, DevicePeerFactory, DevicePeerState, IceCandidateInit } from './device-peer.ts';
import { TypedEmitter } from '../../src/client/emitter.ts';
import { withTimeout } from '../../src/client/mqtt-link.ts';

/**
 * What the keeper uses of its client: a DeviceClient, or anything that speaks protocol v1 for a device the same way
 * (the bridge's libpeer adapter, src/profiles/libpeer/, speaks for devices that signal otherwise).
 */
export type SessionLink = Pick<DeviceClient, 'connected' | 'onlineBridge' | 'bridges' | 'send' | 'forgetSession' | 'on'> &
  /** The device's own ICE servers (TURN credentials, protocol §5.10), if the link keeps them; else the card's only. */
  Partial<Pick<DeviceClient, 'iceGrant'>>;

export interface SessionKeeperOptions {
  client: SessionLink;
  createPeer: DevicePeerFactory;
  /** Milliseconds from offer to answer before offering again (default 10 000). */
  answerTimeoutMs?: number | undefined;
  /** Milliseconds from answer to ICE + DTLS connected before offering again (default 20 000). */
  connectTimeoutMs?: number | undefined;
  /** Re-offer backoff (defaults: 1 s doubling to 30 s, half jitter). */
  backoff?: Partial<BackoffOptions> | undefined;
  /**
   * When the bridge card says `iceServersPerDevice`: milliseconds to wait for this device's `ice-servers` (its TURN
   * credentials) before offering without them (default 3000). The bridge sends them on seeing the online card.
   */
  iceServersWaitMs?: number | undefined;
}

export interface SessionCounters {
  opened: number;
  connected: number;
  answersReceived: number;
  candidatesSent: number;
  candidatesReceived: number;
  byesReceived: number;
  errorsReceived: number;
  iceFailures: number;
  answerTimeouts: number;
  connectTimeouts: number;
  retries: number;
}

export interface SessionKeeperEvents {
  'session-open': [SessionInfo];
  'session-connected': [SessionInfo];
  'session-closed': [SessionInfo & { closeReason: string }];
  'retry-scheduled': [{ attempt: number; delayMs: number; reason: string }];
}

/**
 * Bridge byes after which offering again would be wrong (docs/protocol.md §5.4): "normal" means the bridge needs no
 * media now (it sends `start` when it does), "replaced" that a newer session of ours exists, "shutdown" that the
 * bridge is going (a new bridge card brings us back).
 */
const NO_RETRY_BYES: readonly string[] = ['normal', 'replaced', 'shutdown'] satisfies ByeReason[];

export class SessionKeeper extends TypedEmitter<SessionKeeperEvents> {
  readonly counters: SessionCounters = {
    opened: 0, connected: 0, answersReceived: 0, candidatesSent: 0, candidatesReceived: 0, byesReceived: 0,
    errorsReceived: 0, iceFailures: 0, answerTimeouts: 0, connectTimeouts: 0, retries: 0,
  };
  readonly #client: SessionLink;
  readonly #options: SessionKeeperOptions;
  readonly #backoff: BackoffOptions;
  /** Last online card ts per bridge: a new ts means the bridge restarted and knows none of our sessions. */
  readonly #bridgeTs = new Map<string, number>();
  readonly #unsubscribe: (() => void)[] = [];
  #session: CameraSession | undefined;
  #last: CameraSession | undefined;
  #attempt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Waiting for this device's ICE servers before an offer: no other offer starts meanwhile. */
  #awaitingIce = false;
  #started = false;
  #stopped: Promise<void> | undefined;

  constructor(options: SessionKeeperOptions) {
    super();
    this.#client = options.client;
    this.#options = options;
    this.#backoff = backoffOptions(options.backoff);
  }

  /** The live or pending session. */
  get session(): SessionInfo | undefined {
    return this.#session?.info;
  }

  /** The most recent session, live or closed. */
  get lastSession(): SessionInfo | undefined {
    return this.#last?.info;
  }

  /** Starts following the client; offers as soon as it is connected and knows an online bridge. Idempotent. */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    const c = this.#client;
    this.#unsubscribe.push(
      c.on('connected', () => void this.#open('mqtt-connected')),
      c.on('disconnected', () => this.#onDisconnected()),
      c.on('bridge', (card) => this.#onBridge(card)),
      c.on('answer', (m) => void this.#onAnswer(m.sessionId, m.sdp, m.bridgeId)),
      c.on('candidate', (m) =>
        this.#onRemoteCandidate(m.sessionId, m.endOfCandidates ? null : { candidate: m.candidate ?? '', sdpMid: m.sdpMid, sdpMLineIndex: m.sdpMLineIndex }),
      ),
      c.on('bye', (m) => this.#onBye(m.sessionId, m.reason ?? 'normal')),
      c.on('error', (m) => this.#onError(m)),
      c.on('start', () => this.#onStart()),
    );
    void this.#open('start');
  }

  /** Ends the session with a bye, releases its peer and every timer. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    for (const off of this.#unsubscribe.splice(0)) off();
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.#session) await this.#close(this.#session, 'stopped', 'normal');
  }

  async #open(why: string): Promise<void> {
    let bridge = this.#client.onlineBridge;
    if (this.#stopped || !this.#started || this.#session || this.#awaitingIce || !this.#client.connected || bridge === undefined) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const grant = this.#client.iceGrant;
    if (grant && bridge.iceServersPerDevice && !grant.valid) {
      // Protocol §5.10: the bridge sends them when it sees our online card, a round trip after CONNACK.
      this.#awaitingIce = true;
      await grant.arrival(this.#options.iceServersWaitMs ?? 3000);
      this.#awaitingIce = false;
      bridge = this.#client.onlineBridge;
      if (this.#stopped || this.#session || !this.#client.connected || bridge === undefined) return;
    }
    this.#bridgeTs.set(bridge.bridgeId, bridge.ts);

    let peer: DevicePeer;
    try {
      const { iceServers, iceTransportPolicy } = grant?.config(bridge.iceServers) ?? { iceServers: bridge.iceServers, iceTransportPolicy: 'all' as const };
      peer = this.#options.createPeer(iceServers, { iceTransportPolicy });
    } catch (err) {
      this.#scheduleRetry(`peer-failed: ${(err as Error).message}`);
      return;
    }
    const session = new CameraSession(randomSessionId(), peer, bridge);
    this.#session = this.#last = session;
    this.counters.opened++;
    peer.onLocalCandidate = (candidate) => {
      if (session === this.#session) this.#trickle(session, session.localCandidate(candidate));
    };
    peer.onStateChange = (state) => this.#onPeerState(session, state);
    this.emit('session-open', session.info);

    let sdp: string;
    try {
      sdp = await peer.createOffer();
    } catch (err) {
      return this.#fail(session, `offer-failed: ${(err as Error).message}`);
    }
    if (session !== this.#session) return;
    const sent = this.#send(session, { type: 'offer', sdp }); // numbered now: seq 1, before any candidate
    session.mark('offerSent');
    for (const candidate of session.offerSent(sdp)) this.#trickle(session, candidate);
    session.timer = setTimeout(() => {
      this.counters.answerTimeouts++;
      void this.#fail(session, 'answer-timeout', 'timeout');
    }, this.#options.answerTimeoutMs ?? 10_000);
    try {
      await sent;
    } catch (err) {
      if (session !== this.#session) return; // the connection went: 'disconnected' closed it, reconnecting re-offers
      // An offer the bridge would refuse (e.g. larger than its maxMessageBytes) will not get better by repeating it.
      if (err instanceof ProtocolError) await this.#close(session, `offer-invalid: ${err.code} ${err.message}`);
      else await this.#fail(session, `offer-not-sent: ${(err as Error).message} (${why})`);
    }
  }

  #trickle(session: CameraSession, candidate: IceCandidateInit | null | undefined): void {
    if (candidate === undefined) return;
    const body: UpBody =
      candidate === null
        ? { type: 'candidate', endOfCandidates: true }
        : { type: 'candidate', candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex };
    this.counters.candidatesSent++;
    this.#send(session, body).catch(() => {}); // a lost candidate shows up as an ICE failure, handled there
  }

  #send(session: CameraSession, body: UpBody): Promise<void> {
    // JSON drops undefined fields, but the schema check in send() sees the object: strip them here.
    const clean = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined)) as UpBody;
    return this.#client.send(session.id, clean);
  }

  async #onAnswer(sessionId: string, sdp: string, bridgeId: string | undefined): Promise<void> {
    const session = this.#session;
    if (session?.id !== sessionId || session.phase !== 'offering') return; // an old session's answer
    // Several bridge nodes (a cluster): the session belongs to the node that answered, so only that node's restart
    // ends it, not another node's.
    const node = bridgeId === undefined ? undefined : this.#client.bridges.get(bridgeId);
    if (node !== undefined && node.state === 'online') {
      session.bridge = node;
      this.#bridgeTs.set(node.bridgeId, node.ts);
    }
    this.counters.answersReceived++;
    session.mark('answerReceived');
    session.phase = 'answered';
    session.clearTimer();
    try {
      await session.peer.applyAnswer(sdp);
    } catch (err) {
      if (session === this.#session) await this.#fail(session, `answer-rejected: ${(err as Error).message}`, 'error');
      return;
    }
    if (session !== this.#session || session.phase !== 'answered') return;
    session.answerApplied();
    session.timer = setTimeout(() => {
      this.counters.connectTimeouts++;
      void this.#fail(session, 'connect-timeout', 'timeout');
    }, this.#options.connectTimeoutMs ?? 20_000);
  }

  #onRemoteCandidate(sessionId: string, candidate: IceCandidateInit | null): void {
    const session = this.#session;
    if (session?.id !== sessionId) return;
    this.counters.candidatesReceived++;
    session.remoteCandidate(candidate);
  }

  #onPeerState(session: CameraSession, state: DevicePeerState): void {
    if (session !== this.#session) return;
    if (state === 'connected' && session.phase === 'answered') {
      session.clearTimer();
      session.phase = 'connected';
      session.mark('connected');
      this.counters.connected++;
      this.#attempt = 0; // a session that made it resets the backoff
      this.emit('session-connected', session.info);
    } else if (state === 'failed') {
      this.counters.iceFailures++;
      void this.#fail(session, 'ice-failed', 'ice-failed');
    } else if (state === 'closed') {
      void this.#fail(session, 'peer-closed', 'error');
    }
  }

  #onBye(sessionId: string, reason: string): void {
    const session = this.#session;
    if (session?.id !== sessionId) return;
    this.counters.byesReceived++;
    const retry = !NO_RETRY_BYES.includes(reason);
    void this.#close(session, `bye:${reason}`);
    if (retry) this.#scheduleRetry(`bye:${reason}`);
  }

  #onError(message: ErrorMessage): void {
    this.counters.errorsReceived++;
    const session = this.#session;
    if (session === undefined || (message.sessionId !== undefined && message.sessionId !== session.id)) return;
    // §11: an error that names neither a session nor an offer (a payload the bridge could not read, a rate limit) is
    // about no session: it changes nothing.
    if (message.sessionId === undefined && message.ref?.type !== 'offer') return;
    const retry = isErrorCode(message.code) ? ERROR_CODES[message.code].retry : 'later';
    // One unusable candidate does not make the session unusable.
    if (retry === 'fix' && message.ref?.type === 'candidate') return;
    void this.#close(session, `error:${message.code}`);
    // 'fix': the same offer would be refused again; wait for a new condition (start, reconnect, bridge restart).
    if (retry === 'offer') this.#scheduleRetry(`error:${message.code}`, true);
    else if (retry === 'later') this.#scheduleRetry(`error:${message.code}`);
  }

  #onStart(): void {
    if (this.#session === undefined) void this.#open('bridge-start');
  }

  #onDisconnected(): void {
    clearTimeout(this.#retryTimer); // the next CONNACK offers anyway
    this.#retryTimer = undefined;
    if (this.#session) void this.#close(this.#session, 'mqtt-disconnected');
  }

  #onBridge(card: BridgeStatus): void {
    const known = this.#bridgeTs.get(card.bridgeId);
    const session = this.#session;
    if (card.state === 'offline') {
      if (session && this.#client.onlineBridge === undefined) void this.#close(session, 'bridge-offline');
      if (this.#client.onlineBridge === undefined) {
        clearTimeout(this.#retryTimer); // nobody to offer to; the next online card offers
        this.#retryTimer = undefined;
      }
      return;
    }
    const restarted = known !== undefined && known !== card.ts;
    this.#bridgeTs.set(card.bridgeId, card.ts);
    if (session && restarted && session.bridge.bridgeId === card.bridgeId) {
      void this.#close(session, 'bridge-restarted');
    }
    if (this.#session === undefined && (this.#retryTimer === undefined || restarted)) void this.#open('bridge-online');
  }

  /** Closes `session` and schedules the next offer, unless something else already ended it. */
  #fail(session: CameraSession, reason: string, bye?: ByeReason): Promise<void> {
    if (session !== this.#session) return Promise.resolve();
    const closed = this.#close(session, reason, bye);
    this.#scheduleRetry(reason);
    return closed;
  }

  #scheduleRetry(reason: string, immediate = false): void {
    if (this.#stopped || !this.#client.connected) return; // reconnecting offers by itself
    clearTimeout(this.#retryTimer);
    const delayMs = immediate && this.#attempt === 0 ? 0 : backoffDelay(this.#attempt, this.#backoff);
    const attempt = ++this.#attempt;
    this.counters.retries++;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#open(`retry after ${reason}`);
    }, delayMs);
    this.emit('retry-scheduled', { attempt, delayMs, reason });
  }

  /** Ends `session` (sending `bye` if given and possible) and releases its peer. Resolves when both are done. */
  async #close(session: CameraSession, reason: string, bye?: ByeReason): Promise<void> {
    if (session !== this.#session) return;
    this.#session = undefined;
    session.clearTimer();
    session.phase = 'closed';
    session.closeReason = reason;
    session.mark('closed');
    session.peer.onLocalCandidate = undefined;
    session.peer.onStateChange = undefined;
    this.emit('session-closed', { ...session.info, closeReason: reason });
    const byeSent =
      bye !== undefined && this.#client.connected
        ? withTimeout(this.#send(session, { type: 'bye', reason: bye }), 2000, 'bye').catch(() => {})
        : Promise.resolve();
    await Promise.all([byeSent, session.peer.close().catch(() => {})]);
    this.#client.forgetSession(session.id);
  }
}
