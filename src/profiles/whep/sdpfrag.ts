/**
 * `application/trickle-ice-sdpfrag` (RFC 8840 §4.4, §9), the body of a WHEP PATCH (draft-ietf-wish-whep §4.4.1):
 * ICE lines, optionally grouped under `m=` lines with their `a=mid`.
 *
 *   a=ice-options:trickle ice2        (session level, optional)
 *   a=group:BUNDLE 0 1                (optional)
 *   m=audio 9 UDP/TLS/RTP/SAVPF 111
 *   a=mid:0
 *   a=ice-ufrag:EsAw                  (session or media level)
 *   a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1
 *   a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1
 *   a=end-of-candidates
 */
import { parseCandidate } from '../../protocol/candidate.ts';
import { MAX_CANDIDATE_CHARS } from '../../protocol/limits.ts';

export interface SdpFragment {
  ufrag?: string;
  pwd?: string;
  /** Candidates the bridge can use; others are dropped silently (WHEP §4.4.2: an unsupported transport or address). */
  candidates: { candidate: string; sdpMid?: string; sdpMLineIndex: number }[];
  endOfCandidates: boolean;
}

export class SdpFragmentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SdpFragmentError';
  }
}

/** The shape every candidate line has (RFC 8839 §5.1), checked before the bridge's own parser decides about it. */
const CANDIDATE_SHAPE = /^candidate:\S{1,32} \d{1,3} \S+ \d{1,10} \S+ \d{1,5} typ \S+/;

/** Throws SdpFragmentError for a fragment that is not one (a malformed line: 400 in WHEP §4.4.1). */
export function parseSdpFragment(text: string): SdpFragment {
  const fragment: SdpFragment = { candidates: [], endOfCandidates: false };
  let mLineIndex = 0;
  let sections = 0;
  let mid: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line === '') continue;
    if (!/^[a-z]=/.test(line)) throw new SdpFragmentError(`not an SDP line: ${JSON.stringify(line.slice(0, 40))}`);
    if (line.startsWith('m=')) {
      mLineIndex = sections++;
      mid = undefined;
    } else if (line.startsWith('a=mid:')) {
      mid = line.slice('a=mid:'.length);
    } else if (line.startsWith('a=ice-ufrag:')) {
      fragment.ufrag = line.slice('a=ice-ufrag:'.length);
    } else if (line.startsWith('a=ice-pwd:')) {
      fragment.pwd = line.slice('a=ice-pwd:'.length);
    } else if (line === 'a=end-of-candidates') {
      fragment.endOfCandidates = true;
    } else if (line.startsWith('a=candidate:')) {
      const candidate = line.slice(2);
      if (candidate.length > MAX_CANDIDATE_CHARS || !CANDIDATE_SHAPE.test(candidate)) {
        throw new SdpFragmentError(`malformed candidate: ${JSON.stringify(candidate.slice(0, 60))}`);
      }
      try {
        parseCandidate(candidate);
      } catch {
        continue; // e.g. a DNS name: the bridge does not resolve them (protocol §5.3)
      }
      fragment.candidates.push({ candidate, sdpMLineIndex: mLineIndex, ...(mid !== undefined && { sdpMid: mid }) });
    }
  }
  return fragment;
}
