/**
 * The player's `whep` transport: WHEP (draft-ietf-wish-whep, the bridge's src/profiles/whep) instead of MQTT. An
 * HTTP POST of a receive-only offer to `{bridge}/whep/{device}` with the viewer token as Bearer, made at once (no
 * wait for ICE gathering); the 201 carries the answer (with every bridge candidate), the session's Location, which a
 * DELETE ends, its ETag, and the player's STUN/TURN servers as `Link: rel="ice-server"` headers (with its TURN
 * credentials), used by every later session (retries, renewals). The player's own candidates follow by PATCH to the
 * Location (trickle ICE, ./whep-trickle.ts). No MQTT, no WebSocket: only HTTP (the WHEP routes answer any origin: a
 * Bearer token is no ambient credential) and WebRTC media. Browser only.
 *
 *   connecting ── POST (no wait for ICE gathering) ── 201 ──► (the element shows playing once a frame is painted)
 *      ▲   │ 409 (camera offline / not streaming) ──► offline ── Retry-After ──► connecting
 *      │   │ 503/429, network error, peer failed, not connected in time ──► reconnecting ── backoff ──► connecting
 *      │   └ 401 (token refused), 403 (token not for this camera), 404, 4xx ──► error (until the page sets a new token)
 *   live: no packet for STALL_MS (or ICE disconnected) ── HEAD the resource ──┬ 404: the bridge ended it ──► reconnecting
 *                                                                            └ 200: the camera sends nothing ──► offline
 *   live: peer failed or closed (the bridge's DTLS close_notify) ── HEAD ──► reconnecting (404: without a DELETE)
 *   offline (live) ── packets again ──► connecting ──► (playing)
 *   renewal: a new token opens a second session; once it connects its video replaces the first, which is deleted
 *   trickle, each session (./whep-trickle.ts): candidates gathered before its 201 ── one PATCH once it comes
 *     later ones, then a=end-of-candidates ── a PATCH each, in order (If-Match: its ETag; Bearer: its own token)
 *     a PATCH answered 404/405/409/412/422/501 ── no more PATCHes for that session (the session goes on)
 *     the session deleted, replaced or failed ── no PATCH after that (stopped before its DELETE)
 *
 * The bridge ends a WHEP session when its token expires, so renewals (./token.ts, at half the token's life) move
 * the video to a session made with the new token before that happens. While the camera is away the bridge keeps the
 * session (the camera's next session feeds it), so a camera that leaves shows as `offline` and comes back by itself.
 */
import { backoffDelay, backoffOptions } from '../client/backoff.ts';
import { TypedEmitter } from '../client/emitter.ts';
import { iceServersFromLinks, type LinkIceServer } from './ice-links.ts';
import type { TokenSource } from './token.ts';
import type { PlayerSettings, PlayerTransport, TransportEvents, TransportState } from './transport.ts';
import { CandidateTrickle } from './whep-trickle.ts';

interface WhepSession {
  pc: RTCPeerConnection;
  tracks: MediaStreamTrack[];
  /** The session's resource (absolute), for DELETE and HEAD. */
  location: string | undefined;
  token: string;
  /** PATCHes its local candidates to `location` (stopped when the session ends). */
  trickle: CandidateTrickle;
  /** Ends a session that does not connect in time. */
  connectTimer: ReturnType<typeof setTimeout> | undefined;
}

/** From the 201 to ICE connected; the bridge gives up on its side after its own connect timeout. */
const CONNECT_MS = 15_000;
/** How often a live session's packet counters are read, and how long without a packet counts as a stall. */
const HEALTH_MS = 1000;
const STALL_MS = 4000;

export class WhepTransport extends TypedEmitter<TransportEvents> implements PlayerTransport {
  readonly #settings: PlayerSettings;
  readonly #tokens: TokenSource;
  readonly #backoff = backoffOptions();
  /**
   * What the video element shows: one MediaStream for the transport's life, whose tracks are the live session's.
   * A renewal swaps its tracks rather than the element's source, so playback goes on instead of starting over.
   */
  readonly #output = new MediaStream();
  #shown = false;
  #live: WhepSession | undefined;
  #state: TransportState | undefined;
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #health: ReturnType<typeof setInterval> | undefined;
  /** Packets the live session had received at the last health check, and when that count last grew. */
  #packets = 0;
  #packetsAt = 0;
  #checking = false;
  /** From the last 201's Link headers. */
  #iceServers: LinkIceServer[] = [];
  #closed = false;

  constructor(settings: PlayerSettings, tokens: TokenSource) {
    super();
    this.#settings = settings;
    this.#tokens = tokens;
    // A renewed token: a new session made with it takes over before the bridge ends the old one at its expiry.
    tokens.onRenewed = () => {
      if (this.#live !== undefined) void this.#open('renewal');
    };
  }

  start(): void {
    void this.#open('start');
  }

  firstFrame(): void {}

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#health);
    const live = this.#live;
    this.#live = undefined;
    if (live) await this.#end(live);
    this.removeAllListeners();
  }

  /** One attempt: offer, POST, answer. A renewal keeps the live session until the new one connects. */
  async #open(why: 'start' | 'retry' | 'renewal'): Promise<void> {
    if (this.#closed) return;
    if (why !== 'renewal') this.#set(this.#state === 'offline' ? 'offline' : 'connecting', why);
    let credential;
    try {
      credential = await this.#tokens.next();
    } catch (err) {
      this.emit('error', { code: 'token-expired', message: (err as Error).message });
      return why === 'renewal' ? undefined : this.#retry('reconnecting', 'no valid token');
    }
    if (this.#closed) return;
    const token = typeof credential === 'string' ? credential : credential.secret;
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', iceServers: this.#iceServers });
    // Listening before setLocalDescription, which starts gathering: nothing gathered is missed.
    const trickle = new CandidateTrickle(pc);
    trickle.onWarning = (message) => this.emit('error', { code: 'warning', message });
    const session: WhepSession = { pc, tracks: [], location: undefined, token, trickle, connectTimer: undefined };
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.ontrack = (event) => {
      session.tracks.push(event.track);
      if (session === this.#live) this.#output.addTrack(event.track);
    };
    let res: Response;
    try {
      await pc.setLocalDescription(await pc.createOffer());
      // No wait for gathering (a STUN or TURN server that is slow or gone would hold the POST for as long): the offer
      // goes with what the description holds now, and the rest is trickled once the 201 names the resource.
      const offer = pc.localDescription?.sdp ?? '';
      trickle.posted(offer);
      res = await fetch(new URL(`/whep/${encodeURIComponent(this.#settings.device)}`, this.#settings.bridge), {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/sdp' },
        body: offer,
      });
    } catch (err) {
      trickle.stop();
      pc.close();
      return why === 'renewal' ? undefined : this.#retry('reconnecting', `the bridge is unreachable: ${(err as Error).message}`);
    }
    if (this.#closed || res.status !== 201) {
      trickle.stop();
      pc.close();
      return this.#closed ? undefined : this.#refused(res, why);
    }
    const location = res.headers.get('location');
    session.location = location === null ? undefined : new URL(location, this.#settings.bridge).href;
    if (session.location !== undefined) trickle.start({ url: session.location, etag: res.headers.get('etag') ?? undefined, token });
    else trickle.stop(); // nowhere to PATCH to
    const servers = iceServersFromLinks(res.headers.get('link'));
    if (servers.length > 0) this.#iceServers = servers;
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    } catch (err) {
      await this.#end(session);
      return why === 'renewal' ? undefined : this.#retry('reconnecting', `the answer could not be applied: ${(err as Error).message}`);
    }
    if (this.#closed) return void this.#end(session);
    pc.onconnectionstatechange = () => this.#onPeerState(session);
    session.connectTimer = setTimeout(() => {
      if (session.pc.connectionState === 'connected') return;
      if (session === this.#live) this.#lost(session, `no WebRTC connection within ${CONNECT_MS} ms`);
      else void this.#end(session);
    }, CONNECT_MS);
    // A renewal takes over once connected; one that fails leaves the live session as it was.
    if (why !== 'renewal') this.#adopt(session);
  }

  #onPeerState(session: WhepSession): void {
    const state = session.pc.connectionState;
    if (state === 'connected') {
      clearTimeout(session.connectTimer);
      if (session !== this.#live) {
        const previous = this.#live;
        this.#adopt(session);
        if (previous) void this.#end(previous);
      }
    } else if (state === 'disconnected' && session === this.#live) {
      void this.#check(session);
    } else if ((state === 'failed' || state === 'closed') && session === this.#live) {
      // The bridge closing the session (DTLS close_notify) closes the peer too: the resource says which it was.
      void this.#check(session, `the WebRTC connection ${state}`);
    }
  }

  #adopt(session: WhepSession): void {
    this.#live = session;
    this.#attempt = 0;
    for (const track of this.#output.getTracks()) this.#output.removeTrack(track);
    for (const track of session.tracks) this.#output.addTrack(track);
    this.#set('connecting', 'session answered'); // no change while a healthy session is renewed
    if (!this.#shown) {
      this.#shown = true;
      this.emit('stream', this.#output);
    }
    this.emit('peer', session.pc);
    this.#packets = 0;
    this.#packetsAt = Date.now();
    clearInterval(this.#health);
    this.#health = setInterval(() => void this.#measure(session), HEALTH_MS);
  }

  /** The live session's packet count: a stall is checked with the bridge; packets after a stall resume playback. */
  async #measure(session: WhepSession): Promise<void> {
    let packets = 0;
    for (const stat of (await session.pc.getStats()).values()) {
      if (stat.type === 'inbound-rtp') packets += (stat as { packetsReceived?: number }).packetsReceived ?? 0;
    }
    if (session !== this.#live || this.#closed) return;
    if (packets > this.#packets) {
      this.#packets = packets;
      this.#packetsAt = Date.now();
      if (this.#state === 'offline') this.#set('connecting', 'media again');
    } else if (session.pc.connectionState === 'connected' && Date.now() - this.#packetsAt >= STALL_MS) {
      await this.#check(session);
    }
  }

  /**
   * Asks the bridge whether the session still stands (HEAD on its resource: no token needed, 404 once it ended).
   * `dead`: the peer is gone whatever the answer (failed or closed): the session is replaced either way.
   */
  async #check(session: WhepSession, dead?: string): Promise<void> {
    if (session.location === undefined) return void (dead !== undefined && this.#lost(session, dead));
    if (this.#checking && dead === undefined) return;
    this.#checking = true;
    let status: number;
    try {
      status = (await fetch(session.location, { method: 'HEAD', cache: 'no-store' })).status;
    } catch {
      status = 0; // the bridge is unreachable: ICE will fail too
    } finally {
      this.#checking = false;
    }
    if (session !== this.#live || this.#closed) return;
    if (status === 404) {
      session.location = undefined; // nothing to DELETE (and its CORS preflight would fail with the 404)
      this.#lost(session, 'the bridge ended the session');
    } else if (dead !== undefined) {
      this.#lost(session, dead);
    } else if (status === 200 && Date.now() - this.#packetsAt >= STALL_MS) this.#set('offline', `no media for ${STALL_MS / 1000} s: the camera is away`);
  }

  /** The live session is gone: release it and start a new one. */
  #lost(session: WhepSession, reason: string): void {
    if (session !== this.#live) return;
    this.#live = undefined;
    clearInterval(this.#health);
    void this.#end(session);
    this.#retry('reconnecting', reason);
  }

  async #refused(res: Response, why: 'start' | 'retry' | 'renewal'): Promise<void> {
    const body = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
    const code = body.error ?? `HTTP ${res.status}`;
    const message = body.message ?? res.statusText;
    if (why === 'renewal') return void this.emit('error', { code: 'warning', message: `a renewed session was refused: ${code} ${message}` });
    const retryAfterMs = Number(res.headers.get('retry-after') ?? 0) * 1000;
    if (res.status === 409) return this.#retry('offline', message, retryAfterMs);
    if (res.status === 503 || res.status === 429) return this.#retry('reconnecting', message, retryAfterMs);
    this.emit('error', { code: res.status === 401 ? 'unauthorized' : code, message: `${res.status}: ${message}` });
    this.#set('error', message);
  }

  #retry(state: 'offline' | 'reconnecting', reason: string, atLeastMs = 0): void {
    if (this.#closed) return;
    this.#set(state, reason);
    clearTimeout(this.#timer);
    const delayMs = Math.max(atLeastMs, backoffDelay(this.#attempt++, this.#backoff));
    this.#timer = setTimeout(() => void this.#open('retry'), delayMs);
  }

  /** Closes the peer and deletes the session's resource (the bridge ends the viewer session at once). */
  async #end(session: WhepSession): Promise<void> {
    session.trickle.stop(); // before the DELETE: no PATCH follows it
    clearTimeout(session.connectTimer);
    session.pc.onconnectionstatechange = null;
    session.pc.close();
    const location = session.location;
    session.location = undefined;
    if (location === undefined) return;
    await fetch(location, { method: 'DELETE', headers: { authorization: `Bearer ${session.token}` }, keepalive: true }).catch(() => {});
  }

  #set(state: TransportState, reason: string): void {
    if (this.#closed || this.#state === state) return;
    this.#state = state;
    this.emit('state', state, reason);
  }
}
