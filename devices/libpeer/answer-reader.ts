/**
 * How libpeer reads an answer (peer_connection_set_remote_description, agent_set_remote_description,
 * ice_candidate_from_description at 9319aa4), including where it would overwrite memory: a real device crashes or
 * misbehaves there, the test device throws LibpeerCrash so a test fails loudly.
 *
 * - Only lines ending in CRLF are read; each is copied into `char buf[256]` without a bound (256+ characters: crash).
 * - `a=ice-ufrag` equal to the previous call's (libpeer never clears it): the answer is taken as an update and
 *   ignored. ufrag and pwd are copied with strncpy over the previous call's, without a terminator: a shorter one
 *   keeps the old one's tail, and ICE then fails (its checks carry the wrong USERNAME and key).
 * - `a=fingerprint`: 95 characters from offset 22 (`a=fingerprint:sha-256 ` assumed), compared with strncmp against
 *   the DTLS peer's SHA-256 in upper case: anything else fails the handshake.
 * - `a=candidate` lines (sscanf "%s %d %s %u %s %u typ %s"): written into remote_candidates[count] before any check,
 *   AGENT_MAX_CANDIDATES = 10 (an 11th line overwrites memory); UDP only; host, srflx, relay; a foundation seen
 *   before is skipped; IPv6 ones make no pair (CONFIG_IPV6 0).
 */
export class LibpeerCrash extends Error {
  constructor(message: string) {
    super(`libpeer would crash: ${message}`);
    this.name = 'LibpeerCrash';
  }
}

export interface LibpeerAnswer {
  /** The answer repeats the previous ice-ufrag: libpeer ignores it. */
  isUpdate: boolean;
  /** agent.remote_ufrag and remote_upwd as libpeer holds them after this answer. */
  ice: { ufrag: string; pwd: string };
  /** They differ from the answer's: libpeer's checks will fail. */
  iceMangled: boolean;
  /** Remote candidates libpeer can pair with its IPv4 host candidate. */
  candidates: number;
  /** The fingerprint line is one libpeer can match (sha-256, upper-case hex). */
  fingerprintOk: boolean;
}

const AGENT_MAX_CANDIDATES = 10;

export function readLibpeerAnswer(sdp: string, previous: { ufrag: string; pwd: string }): LibpeerAnswer {
  const lines = sdp.split('\r\n').slice(0, -1); // the text after the last CRLF is never read
  const previousUfrag = previous.ufrag;
  let ufrag = '';
  let pwd = '';
  let fingerprintOk = false;
  let isUpdate = false;
  const foundations = new Set<string>();
  let slots = 0;
  let ipv4 = 0;
  for (const line of lines) {
    if (line.length >= 256) throw new LibpeerCrash(`a line of ${line.length} characters overflows buf[256]`);
    if (line.includes('a=fingerprint')) fingerprintOk = /^a=fingerprint:sha-256 [0-9A-F]{2}(:[0-9A-F]{2}){31}$/.test(line);
    if (line.includes('a=ice-ufrag') && previousUfrag !== '' && line.slice('a=ice-ufrag:'.length).startsWith(previousUfrag)) isUpdate = true;
    if (line.startsWith('a=ice-ufrag:')) ufrag = line.slice('a=ice-ufrag:'.length);
    if (line.startsWith('a=ice-pwd:')) pwd = line.slice('a=ice-pwd:'.length);
    if (!line.startsWith('a=candidate:')) continue;
    const fields = /^a=candidate:(\S+) (-?\d+) (\S+) (\d+) (\S+) (\d+) typ (\S+)/.exec(line);
    if (fields === null) continue; // sscanf stopped early: nothing is counted
    if (slots === AGENT_MAX_CANDIDATES) throw new LibpeerCrash(`an 11th candidate overwrites remote_candidates[${AGENT_MAX_CANDIDATES}]`);
    const [, foundation, , transport, , address, , type] = fields as unknown as string[];
    // sscanf %s into char foundation[33], transport[33], addrstring[INET6_ADDRSTRLEN = 46], type[16]: no bound.
    const overflow = [[foundation, 32], [transport, 32], [address, 45], [type, 15]].find(([v, max]) => (v as string).length > (max as number));
    if (overflow) throw new LibpeerCrash(`candidate field "${overflow[0]}" overflows its ${(overflow[1] as number) + 1}-byte buffer`);
    if (!/^udp/i.test(transport as string) || !['host', 'srflx', 'relay'].some((t) => (type as string).startsWith(t))) continue;
    if (foundations.has(foundation as string)) continue;
    foundations.add(foundation as string);
    slots++;
    if (/^\d+\.\d+\.\d+\.\d+$/.test(address as string)) ipv4++;
  }
  const ice = { ufrag: ufrag + previous.ufrag.slice(ufrag.length), pwd: pwd + previous.pwd.slice(pwd.length) };
  return { isUpdate, ice, iceMangled: ice.ufrag !== ufrag || ice.pwd !== pwd, candidates: ipv4, fingerprintOk };
}
