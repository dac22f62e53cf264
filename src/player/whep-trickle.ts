/**
 * Trickle ICE for one WHEP session of the player (draft-ietf-wish-whep §4.4, RFC 8840, RFC 8838): the offer is POSTed
 * as soon as it is made, with whatever candidates its description already holds (in Chromium, none), and every local
 * candidate gathered after that, then the end of gathering (`a=end-of-candidates`), goes to the session's resource
 * as a PATCH with `Content-Type: application/trickle-ice-sdpfrag` and `If-Match: <the 201's ETag>`.
 *
 *   gathered before the 201 ── kept ──► 201 (Location, ETag) ── one PATCH with all of them
 *   gathered later ── PATCH (one at a time: those that come while one is in flight go in the next, in order)
 *   PATCH → 404, 405, 409, 412, 422, 501 (the session is gone, or the server does not trickle, which WHEP §4.4
 *         allows) → no more PATCHes for this session; the session goes on (the server learns the player's addresses
 *         from its connectivity checks anyway, as peer-reflexive candidates, RFC 8445 §7.3.1.3)
 *   stop() (the session is deleted, replaced or failed) → no PATCH starts after it
 *
 * Each PATCH carries the session's own token as Bearer: after a renewal, an older session still trickles with the
 * token it was made with. Browser only.
 */

/**
 * PATCH answers that end trickling without failing the session (anything else but 2xx ends it too, with a warning):
 * the resource is gone (404) or no longer this ICE session (409, 412: If-Match, RFC 9110 §13.1.1), or it takes no
 * trickle: draft-ietf-wish-whep §4.4 makes trickle OPTIONAL for a resource, which then answers 405 or 422 (it only
 * restarts ICE: the drafts' revisions name one or the other) or 501 (no PATCH at all). No need to read Accept-Patch
 * first: a server's CORS may not expose it, and the refusal says the same.
 */
const NOT_TRICKLING = new Set([404, 405, 409, 412, 422, 501]);

export interface TrickleTarget {
  /** The session's resource (absolute URL). */
  url: string;
  /** From the 201; without one, PATCHes go without If-Match (a server that needs it says 428, which ends trickling). */
  etag: string | undefined;
  token: string;
}

export class CandidateTrickle {
  readonly #pc: RTCPeerConnection;
  /** Candidate lines (`a=candidate:…`) by the mid they belong to, not sent yet. */
  #pending: { mid: string | null; line: string }[] = [];
  #ended = false;
  #endSent = false;
  /** Lines the POSTed offer already carried: their events may still come, and need no PATCH. */
  #posted = new Set<string>();
  #target: TrickleTarget | undefined;
  #inFlight = false;
  #stopped = false;
  /** A refusal the transport should hear about (not one of NOT_TRICKLING, nor a network error). */
  onWarning: ((message: string) => void) | undefined;

  /** Listens from now on: create it before setLocalDescription, which starts gathering. */
  constructor(pc: RTCPeerConnection) {
    this.#pc = pc;
    pc.addEventListener('icecandidate', this.#onCandidate);
  }

  /** The offer as POSTed: its candidates (if any) are not sent again. */
  posted(sdp: string): void {
    for (const line of sdp.split(/\r?\n/)) if (line.startsWith('a=candidate:')) this.#posted.add(line);
  }

  /** The 201 came: sends what was gathered since the offer, then each later candidate. */
  start(target: TrickleTarget): void {
    if (this.#stopped) return;
    this.#target = target;
    void this.#flush();
  }

  /** The session ends (DELETE, replaced, failed): no PATCH starts after this. Idempotent. */
  stop(): void {
    this.#stopped = true;
    this.#pending = [];
    this.#pc.removeEventListener('icecandidate', this.#onCandidate);
  }

  readonly #onCandidate = (event: RTCPeerConnectionIceEvent): void => {
    if (this.#stopped || this.#ended) return;
    // `null` ends gathering (RFC 8838 §4.4); an empty candidate string is the older form of the same.
    if (event.candidate === null || event.candidate.candidate === '') {
      this.#ended = true;
    } else {
      const line = `a=${event.candidate.candidate}`;
      if (this.#posted.has(line)) return;
      this.#pending.push({ mid: event.candidate.sdpMid, line });
    }
    void this.#flush();
  };

  /** One PATCH at a time, so fragments arrive in order and the end of candidates comes last. */
  async #flush(): Promise<void> {
    const target = this.#target;
    if (target === undefined || this.#stopped || this.#inFlight) return;
    const end = this.#ended && !this.#endSent;
    if (this.#pending.length === 0 && !end) return;
    const lines = this.#pending;
    this.#pending = [];
    if (end) this.#endSent = true;
    const body = sdpFragment(this.#pc.localDescription?.sdp ?? '', lines, end);
    this.#inFlight = true;
    let status: number;
    try {
      const res = await fetch(target.url, {
        method: 'PATCH',
        headers: {
          authorization: `Bearer ${target.token}`,
          'content-type': 'application/trickle-ice-sdpfrag',
          ...(target.etag !== undefined && { 'if-match': target.etag }),
        },
        body,
      });
      status = res.status;
    } catch {
      status = 0; // the bridge is unreachable: the session's own checks find that out
    } finally {
      this.#inFlight = false;
    }
    if (this.#stopped) return;
    if (status >= 200 && status < 300) return void this.#flush(); // what came while this one was in flight
    this.stop();
    if (status !== 0 && !NOT_TRICKLING.has(status)) this.onWarning?.(`a PATCH of trickled candidates got ${status}: no more are sent for this session`);
  }
}

/**
 * An `application/trickle-ice-sdpfrag` body (RFC 8840 §4.4, §9; WHEP §4.4.1): the offer's BUNDLE group, then each of
 * its media sections in order (so a section's place is its sdpMLineIndex, as the bridge reads it) with its mid, the
 * ICE credentials (which name the ICE generation the candidates belong to) and its new candidates; with `end`, each
 * section's `a=end-of-candidates`.
 */
export function sdpFragment(offer: string, candidates: readonly { mid: string | null; line: string }[], end: boolean): string {
  const lines = offer.split(/\r?\n/);
  const session = lines.slice(0, Math.max(0, lines.findIndex((l) => l.startsWith('m='))));
  const sessionUfrag = session.find((l) => l.startsWith('a=ice-ufrag:'));
  const sessionPwd = session.find((l) => l.startsWith('a=ice-pwd:'));
  const out = session.filter((l) => l.startsWith('a=group:BUNDLE '));
  const sections: string[][] = [];
  for (const line of lines) {
    if (line.startsWith('m=')) sections.push([line]);
    else if (line !== '') sections.at(-1)?.push(line);
  }
  sections.forEach((section, index) => {
    const mid = section.find((l) => l.startsWith('a=mid:'))?.slice('a=mid:'.length);
    out.push(section[0]!);
    if (mid !== undefined) out.push(`a=mid:${mid}`);
    const ufrag = section.find((l) => l.startsWith('a=ice-ufrag:')) ?? sessionUfrag;
    const pwd = section.find((l) => l.startsWith('a=ice-pwd:')) ?? sessionPwd;
    if (ufrag !== undefined) out.push(ufrag);
    if (pwd !== undefined) out.push(pwd);
    // A candidate without a mid goes with the first section (max-bundle: the one transport).
    for (const c of candidates) if (c.mid === null ? index === 0 : c.mid === mid) out.push(c.line);
    if (end) out.push('a=end-of-candidates');
  });
  return `${out.join('\r\n')}\r\n`;
}
