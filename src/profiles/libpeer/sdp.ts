/**
 * SDP across the libpeer edge (github.com/sepfy/libpeer at 9319aa4: src/sdp.c, src/peer_connection.c, src/agent.c,
 * src/ice.c). Only what libpeer does differently from what the answerer expects is rewritten, and only here.
 *
 * Offer (libpeer → bridge): libpeer signals H264 as `profile-level-id=42e01f;level-asymmetry-allowed=1` without
 * `packetization-mode`, which means mode 0 (RFC 6184 §8.1), yet its packetizer sends FU-A (rtp.c), which only mode 1
 * allows (§6.3). The offer is given `packetization-mode=1`, so the answerer, relay and recorder negotiate what arrives.
 *
 * Answer (bridge → libpeer): libpeer reads an answer line by line into a 256-byte stack buffer without a bound, keeps
 * at most 10 remote candidates in a fixed array without a bound (AGENT_MAX_CANDIDATES; an 11th overwrites memory),
 * skips candidates whose foundation it has seen, builds pairs only within an address family (IPv4 only: CONFIG_IPV6 is
 * 0) and checks the pairs one at a time in the order of the answer. It takes no trickled candidate, and the whole
 * MQTT packet must fit its 4096-byte receive buffer (coreMQTT drops a larger one). So the answer sent to it has:
 * no line of 256 characters or more, only UDP IPv4 candidates with distinct foundations, highest priority first, at
 * most 10 of them, and, when the payload would not fit, first no attributes libpeer ignores, then fewer candidates.
 */
import { parseCandidate, type ParsedCandidate } from '../../protocol/candidate.ts';

/** libpeer's AGENT_MAX_CANDIDATES. */
export const LIBPEER_MAX_CANDIDATES = 10;
/** Lines are copied into `char buf[256]` (peer_connection_set_remote_description). */
export const LIBPEER_MAX_LINE = 255;

export class LibpeerSdpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LibpeerSdpError';
  }
}

/** The offer as the answerer should read it: H264 without a packetization mode is what libpeer really sends, mode 1. */
export function fromLibpeerOffer(sdp: string): string {
  const h264 = new Set([...sdp.matchAll(/^a=rtpmap:(\d+) H264\/90000/gim)].map((m) => m[1]));
  return sdp.replace(/^a=fmtp:(\d+) ([^\r\n]*)/gm, (line, pt: string, params: string) =>
    h264.has(pt) && !/(^|;)\s*packetization-mode=/.test(params) ? `a=fmtp:${pt} ${params};packetization-mode=1` : line,
  );
}

/** Attributes libpeer never reads and an answer can do without (RFC 8866 §5.13: unknown or omitted is fine). */
const OPTIONAL_ATTRIBUTES = /^a=(extmap|extmap-allow-mixed|msid-semantic|msid|ssrc|ssrc-group|rtcp|rtcp-rsize|rtcp-fb|ice-options|end-of-candidates)(:|$)/;

/**
 * The answer to send libpeer, fitted to `fits` (true when the whole payload carrying this SDP fits the device's
 * buffer). Throws LibpeerSdpError when even the smallest form does not fit, or no candidate libpeer can use is left.
 */
export function toLibpeerAnswer(sdp: string, fits: (sdp: string) => boolean): string {
  const lines = sdp.split(/\r?\n/).filter((line) => line !== '');
  const candidates = usableCandidates(lines);
  if (candidates.length === 0) throw new LibpeerSdpError('the answer has no UDP IPv4 candidate, the only kind libpeer can use');
  const others = lines.filter((line) => !line.startsWith('a=candidate:'));
  if (others.some((line) => line.length > LIBPEER_MAX_LINE)) throw new LibpeerSdpError(`the answer has a line of ${LIBPEER_MAX_LINE + 1}+ characters`);
  const full = render(others, candidates);
  if (fits(full)) return full;
  const trimmed = others.filter((line) => !OPTIONAL_ATTRIBUTES.test(line));
  for (let n = candidates.length; n >= 1; n--) {
    const text = render(trimmed, candidates.slice(0, n));
    if (fits(text)) return text;
  }
  throw new LibpeerSdpError('the answer does not fit libpeer\'s 4096-byte MQTT buffer even with one candidate');
}

interface Usable {
  line: string;
  parsed: ParsedCandidate;
}

/** UDP IPv4 host, srflx and relay candidates, highest priority first, distinct foundations, at most LIBPEER_MAX_CANDIDATES. */
function usableCandidates(lines: readonly string[]): Usable[] {
  const usable: Usable[] = [];
  for (const line of lines) {
    if (!line.startsWith('a=candidate:') || line.length > LIBPEER_MAX_LINE) continue;
    try {
      const parsed = parseCandidate(line);
      // ice_candidate_from_description knows host, srflx and relay only.
      if (parsed.transport === 'udp' && parsed.type !== 'prflx' && !parsed.mdns && !parsed.address.includes(':')) usable.push({ line, parsed });
    } catch {
      // not a candidate tali could parse: libpeer would not use it either
    }
  }
  usable.sort((a, b) => b.parsed.priority - a.parsed.priority);
  const seen = new Set<string>();
  return usable.filter((c) => !seen.has(c.parsed.foundation) && seen.add(c.parsed.foundation)).slice(0, LIBPEER_MAX_CANDIDATES);
}

/** The candidates go into the first m-section (the BUNDLE tag's, RFC 8843 §7.3.1); libpeer reads them anywhere. */
function render(lines: readonly string[], candidates: readonly Usable[]): string {
  const out: string[] = [];
  let placed = false;
  for (const line of lines) {
    out.push(line);
    if (!placed && line.startsWith('a=mid:')) {
      for (const c of candidates) out.push(c.line);
      placed = true;
    }
  }
  if (!placed) out.push(...candidates.map((c) => c.line));
  return `${out.join('\r\n')}\r\n`;
}
