/**
 * SDP checks and rewrites at the edge, so a bad offer gets a clear error before werift sees it, and answers fit a
 * device's 4 KB MQTT buffer.
 */

/** Why `Peer.answer()` refused an offer; callers map it to TALI_ERR_INVALID_SDP / TALI_ERR_NO_COMMON_CODEC. */
export class SdpError extends Error {
  readonly kind: 'invalid' | 'no-common-codec';
  constructor(kind: 'invalid' | 'no-common-codec', message: string) {
    super(message);
    this.name = 'SdpError';
    this.kind = kind;
  }
}

const REQUIRED: readonly [RegExp, string][] = [
  [/^m=(audio|video) /m, 'an audio or video m= line'],
  [/^a=ice-ufrag:/m, 'a=ice-ufrag (RFC 8839 §5.4)'],
  [/^a=ice-pwd:/m, 'a=ice-pwd (RFC 8839 §5.4)'],
  [/^a=fingerprint:/m, 'a=fingerprint (RFC 8122 §5; DTLS-SRTP is mandatory in WebRTC)'],
];

export function checkOffer(sdp: string): void {
  if (!/^v=0\r?\n/.test(sdp)) throw new SdpError('invalid', 'SDP must start with a "v=0" line (RFC 8866 §5)');
  for (const [pattern, what] of REQUIRED) {
    if (!pattern.test(sdp)) throw new SdpError('invalid', `SDP lacks ${what}`);
  }
  // JSEP (RFC 8829 §5.2.1) and BUNDLE (RFC 8843 §7.2) give every m= section an a=mid; werift cannot answer one without.
  const sections = splitSections(sdp).slice(1);
  const unnamed = sections.findIndex((section) => !/^a=mid:\S+/m.test(section));
  if (unnamed !== -1) throw new SdpError('invalid', `m= section ${unnamed} lacks a=mid (RFC 8843 §7.2)`);
}

/** True when every m= line of an answer has port 0, i.e. nothing could be negotiated (RFC 8829 §5.3.1). */
export function rejectedAll(answerSdp: string): boolean {
  const ports = [...answerSdp.matchAll(/^m=\S+ (\d+) /gm)].map((m) => m[1]);
  return ports.length === 0 || ports.every((p) => p === '0');
}

const CANDIDATE_LINE = /^a=(candidate:[^\r\n]*|end-of-candidates)\r?\n/gm;

/**
 * With BUNDLE, transport attributes belong only in the m= section of the bundle tag (RFC 8843 §7.3.1, the first mid
 * of the group); werift repeats the candidates in every section. Dropping the repeats keeps a two-track answer near
 * 1.1 KB instead of 1.5 KB. Left alone when the answer is not bundled.
 */
export function dropRepeatedCandidates(sdp: string): string {
  const tag = /^a=group:BUNDLE (\S+)/m.exec(sdp)?.[1];
  if (tag === undefined) return sdp;
  return splitSections(sdp)
    .map((section, i) => (i === 0 || midOf(section) === tag ? section : section.replace(CANDIDATE_LINE, '')))
    .join('');
}

/**
 * Removes every candidate line (to send them as trickle messages instead) and returns them with their m= section's
 * mid and index: some stacks (libdatachannel) look candidates up by sdpMid, others by sdpMLineIndex (RFC 8838 §4).
 */
export function extractCandidates(sdp: string): { sdp: string; candidates: { candidate: string; sdpMid: string; sdpMLineIndex: number }[] } {
  const candidates: { candidate: string; sdpMid: string; sdpMLineIndex: number }[] = [];
  const sections = splitSections(sdp).map((section, i) => {
    for (const m of section.matchAll(/^a=(candidate:[^\r\n]*)/gm)) {
      candidates.push({ candidate: m[1] as string, sdpMid: midOf(section) ?? String(i - 1), sdpMLineIndex: i - 1 });
    }
    return i === 0 ? section : section.replace(CANDIDATE_LINE, '');
  });
  return { sdp: sections.join(''), candidates };
}

/** Session section first, then one string per m= section. */
function splitSections(sdp: string): string[] {
  return sdp.split(/(?=^m=)/m);
}

function midOf(section: string): string | undefined {
  return /^a=mid:(\S+)/m.exec(section)?.[1];
}

/** The encoding names an offer lists for each kind, in its order of preference (RFC 3264 §5.1). */
export function offeredCodecs(sdp: string): { video: string[]; audio: string[] } {
  const offered: { video: string[]; audio: string[] } = { video: [], audio: [] };
  for (const section of splitSections(sdp).slice(1)) {
    const m = /^m=(audio|video) \d+ \S+ ([\d ]+)/.exec(section);
    if (!m) continue;
    const kind = m[1] as 'audio' | 'video';
    const names = new Map([...section.matchAll(/^a=rtpmap:(\d+) ([^/\s]+)/gm)].map((r) => [r[1], r[2] as string]));
    for (const pt of (m[2] as string).trim().split(' ')) {
      // Static payload types may come without an rtpmap (RFC 3551 §6): 0 is PCMU, 8 is PCMA.
      const name = names.get(pt) ?? ({ '0': 'PCMU', '8': 'PCMA' } as Record<string, string>)[pt];
      if (name && !offered[kind].includes(name)) offered[kind].push(name);
    }
  }
  return offered;
}
