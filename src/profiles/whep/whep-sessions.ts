/**
 * WHEP sessions (draft-ietf-wish-whep): each one a viewer session of the relay, owned by an HTTP resource instead of
 * an MQTT connection. The POST becomes a v1 `watch` (same decoder, checks, limits, keyframe on join and metrics as a
 * viewer over MQTT), a PATCH becomes `candidate`s, DELETE a `bye`. What the relay says to the viewer comes back here:
 * the `answer` goes into the POST's 201, a `bye` ends the resource.
 *
 *   POST ──► watch ──► (waiting: the camera is asked to start) ──► answer ──► 201 + Location + ETag
 *                                 └── no answer in answerTimeoutMs ──► 409 Retry-After
 *   live ──► DELETE · token expired · identity removed or re-keyed · bye from the relay (timeout, ice-failed, …) ──► gone
 *
 * The session ends at its token's expiry: WHEP has no way to re-authenticate a live session (a player POSTs again
 * with a fresh token). Ending closes the peer, which stops answering consent checks (RFC 7675 §5.2).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { decode, encode } from '../../protocol/codec.ts';
import { ProtocolError } from '../../protocol/errors.ts';
import type { Message, Watch } from '../../protocol/messages.ts';
import { PROTOCOL_VERSION } from '../../protocol/topics.ts';
import type { Viewer } from '../../relay/viewer.ts';
import type { Disconnector } from '../../security/revocation.ts';
import type { Identity } from '../../security/identity.ts';
import type { SdpFragment } from './sdpfrag.ts';

export interface WhepRelay {
  watch(viewerId: string, watch: Watch, send: (message: Message) => void): Viewer;
}

export interface WhepSessionsOptions {
  relay: WhepRelay;
  /** How long a POST waits for the camera's media to be known (the camera asked to start) before 409. */
  answerTimeoutMs: number;
  /** Largest offer, as for a `watch` over MQTT (maxMessageBytes). */
  maxMessageBytes: number;
  logger: Logger;
}

export interface WhepSession {
  readonly id: string;
  readonly deviceId: string;
  /** Who watches: the token's user, as a viewer identity (what revocation checks). */
  readonly identity: Identity;
  /** Strong entity-tag of the ICE session (WHEP §4.4.1); no ICE restart, so it never changes. */
  readonly etag: string;
  readonly viewer: Viewer;
}

/** Why a POST got no session: the HTTP layer maps each to a status. */
export class WhepRefusal extends Error {
  readonly kind: 'limit' | 'elsewhere' | 'not-streaming' | 'refused';
  readonly code: string;
  constructor(kind: WhepRefusal['kind'], code: string, message: string) {
    super(message);
    this.name = 'WhepRefusal';
    this.kind = kind;
    this.code = code;
  }
}

export class WhepSessions implements Disconnector {
  readonly #options: WhepSessionsOptions;
  readonly #sessions = new Map<string, WhepSession & { timer: NodeJS.Timeout | undefined }>();
  #closed = false;

  constructor(options: WhepSessionsOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#sessions.size;
  }

  get(id: string): WhepSession | undefined {
    return this.#sessions.get(id);
  }

  /**
   * Watches `deviceId` for `identity` with the player's offer; resolves with the session and the answer once the
   * camera's codecs are known. Throws ProtocolError for an offer the edge refuses (size, shape), WhepRefusal for the
   * rest. `expiresAt`: when the token it came with stops being valid (ms since the epoch).
   */
  async create(identity: Identity, deviceId: string, offer: string, expiresAt: number | undefined): Promise<{ session: WhepSession; answer: string }> {
    if (this.#closed) throw new WhepRefusal('limit', 'TALI_ERR_UNAVAILABLE', 'the bridge is shutting down');
    const id = randomBytes(16).toString('base64url');
    const watch = decode('viewer-up', encode({ v: PROTOCOL_VERSION, type: 'watch', sessionId: id, seq: 1, ts: Date.now(), deviceId, sdp: offer }), this.#options.maxMessageBytes);
    if (watch.type !== 'watch') throw new Error('unreachable');
    let settle: { resolve: (sdp: string) => void; reject: (err: Error) => void } | undefined;
    const answered = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
    let viewer: Viewer;
    try {
      viewer = this.#options.relay.watch(identity.id, watch, (message) => {
        if (message.type === 'answer') settle?.resolve(message.sdp);
        else if (message.type === 'error') settle?.reject(new WhepRefusal('refused', message.code, message.message));
        else if (message.type === 'bye') this.#end(id, `bye ${message.reason ?? ''}`.trim());
      });
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      throw new WhepRefusal(err.code === 'TALI_ERR_SESSION_LIMIT' ? 'limit' : 'elsewhere', err.code, err.message);
    }
    viewer.once('closed', (reason) => {
      settle?.reject(new WhepRefusal('refused', 'TALI_ERR_NO_COMMON_CODEC', `the offer was not taken (${reason}): it has no codec the camera sends`));
      this.#end(id, reason);
    });
    const timeout = setTimeout(
      () => settle?.reject(new WhepRefusal('not-streaming', 'TALI_ERR_NOT_STREAMING', `camera ${deviceId} did not start streaming within ${this.#options.answerTimeoutMs} ms`)),
      this.#options.answerTimeoutMs,
    );
    let answer: string;
    try {
      answer = await answered;
    } catch (err) {
      void viewer.close('normal', { notify: false });
      throw err;
    } finally {
      clearTimeout(timeout);
      settle = undefined;
    }
    const session = { id, deviceId, identity, etag: `"${randomBytes(12).toString('base64url')}"`, viewer, timer: undefined as NodeJS.Timeout | undefined };
    if (expiresAt !== undefined) session.timer = setTimeout(() => void this.end(id, 'token expired'), Math.max(0, expiresAt - Date.now()));
    this.#sessions.set(id, session);
    viewer.log.info({ whep: true, expiresAt }, 'WHEP session created');
    return { session, answer };
  }

  /**
   * The player's trickled candidates (a PATCH), as `candidate` messages of the viewer session, through the same
   * decoder as a viewer's over MQTT. Throws ProtocolError for one it refuses (none is added then).
   */
  addCandidates(session: WhepSession, fragment: SdpFragment): void {
    const messages = fragment.candidates.map((c, i) =>
      decode('viewer-up', encode({ v: PROTOCOL_VERSION, type: 'candidate', sessionId: session.id, seq: i + 2, ts: Date.now(), ...c }), this.#options.maxMessageBytes),
    );
    for (const message of messages) if (message.type === 'candidate') session.viewer.addCandidate(message);
    // What a player trickles, for an operator reading why a session did (not) connect; the relay takes no
    // end-of-candidates (its peer goes on checking what it has), so it is only logged.
    session.viewer.log.debug({ candidates: messages.length, endOfCandidates: fragment.endOfCandidates }, 'WHEP candidates trickled');
  }

  /** Ends a session (DELETE, token expiry, revocation). Resolves once its peer is closed; false if it was gone. */
  async end(id: string, why: string): Promise<boolean> {
    const session = this.#sessions.get(id);
    if (session === undefined) return false;
    this.#end(id, why);
    await session.viewer.close('normal', { notify: false });
    return true;
  }

  /** Revocation (src/security/revocation.ts): ends the sessions of identities that no longer stand. */
  disconnectWhere(predicate: (identity: Identity, clientId: string) => boolean, reason: string): number {
    let ended = 0;
    for (const session of [...this.#sessions.values()]) {
      if (!predicate(session.identity, `whep:${session.id}`)) continue;
      this.#options.logger.warn({ event: 'disconnected', reason, identity: session.identity.id, deviceId: session.deviceId, whep: session.id }, `WHEP session ended: ${reason}`);
      void this.end(session.id, reason);
      ended++;
    }
    return ended;
  }

  /** Ends every session. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#sessions.keys()].map((id) => this.end(id, 'shutdown')));
  }

  #end(id: string, why: string): void {
    const session = this.#sessions.get(id);
    if (session === undefined) return;
    this.#sessions.delete(id);
    clearTimeout(session.timer);
    session.viewer.log.info({ why }, 'WHEP session ended');
  }
}
