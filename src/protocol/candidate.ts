/**
 * ICE candidate attribute parser (RFC 8839 §5.1). The bridge parses every trickled candidate before werift sees it,
 * so garbage gets TALI_ERR_INVALID_CANDIDATE instead of an exception or a silent stall deep in the ICE agent.
 *
 *   candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>
 *             [raddr <address> rport <port>] *(<extension-name> <extension-value>)
 */

export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay';

export interface ParsedCandidate {
  foundation: string;
  component: number;
  transport: 'udp' | 'tcp';
  priority: number;
  address: string;
  port: number;
  type: CandidateType;
  relatedAddress?: string;
  relatedPort?: number;
  /** `<uuid>.local` host candidate hiding a private address (draft-ietf-mmusic-mdns-ice-candidates). */
  mdns: boolean;
}

const FOUNDATION = /^[A-Za-z0-9+/]{1,32}$/; // RFC 8839 §5.1: 1*32ice-char
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const MDNS = /^[A-Za-z0-9-]{1,63}\.local$/;
const TYPES: readonly string[] = ['host', 'srflx', 'prflx', 'relay'];

/** Error messages quote at most a few dozen characters of input: they go back to the device in an `error` (≤ 256). */
export function parseCandidate(attribute: string): ParsedCandidate {
  const text = attribute.startsWith('a=') ? attribute.slice(2) : attribute;
  if (!text.startsWith('candidate:')) throw new TypeError('must start with "candidate:"');
  const f = text.slice('candidate:'.length).trim().split(/ +/);
  if (f.length < 8) throw new TypeError(`expected at least 8 fields, got ${f.length}`);
  const [foundation, component, transport, priority, address, port, typ, type] = f as [
    string, string, string, string, string, string, string, string,
  ];
  if (!FOUNDATION.test(foundation)) throw new TypeError('bad foundation');
  const comp = toInt(component, 1, 256, 'component');
  const proto = transport.toLowerCase();
  if (proto !== 'udp' && proto !== 'tcp') {
    throw new TypeError(`unsupported transport ${JSON.stringify(transport.slice(0, 32))}`);
  }
  const prio = toInt(priority, 0, 0xffff_ffff, 'priority');
  const addr = checkAddress(address);
  const portNumber = toInt(port, 0, 65535, 'port');
  if (typ !== 'typ' || !TYPES.includes(type)) throw new TypeError('expected "typ host|srflx|prflx|relay"');

  const parsed: ParsedCandidate = {
    foundation,
    component: comp,
    transport: proto,
    priority: prio,
    address: addr,
    port: portNumber,
    type: type as CandidateType,
    mdns: MDNS.test(addr),
  };
  // Extensions come in name/value pairs; raddr/rport are the only ones we read.
  for (let i = 8; i < f.length; i += 2) {
    const name = f[i] as string;
    const value = f[i + 1];
    if (value === undefined) throw new TypeError(`extension ${JSON.stringify(name.slice(0, 32))} has no value`);
    if (name === 'raddr') parsed.relatedAddress = checkAddress(value);
    else if (name === 'rport') parsed.relatedPort = toInt(value, 0, 65535, 'rport');
  }
  return parsed;
}

function toInt(text: string, min: number, max: number, what: string): number {
  if (!/^\d{1,10}$/.test(text)) throw new TypeError(`bad ${what}`);
  const n = Number(text);
  if (n < min || n > max) throw new TypeError(`${what} out of range`);
  return n;
}

function checkAddress(address: string): string {
  if (IPV4.test(address) || MDNS.test(address) || isIPv6(address)) return address;
  // RFC 8839 allows other FQDNs but says they SHOULD NOT be used; resolving them would let a device make us query DNS.
  throw new TypeError(`address ${JSON.stringify(address.slice(0, 64))} is not an IP address or an mDNS .local name`);
}

/**
 * RFC 4291 §2.2 text forms: eight hex groups, at most one `::`, optionally a dotted IPv4 tail; no zone ID. Strict
 * because anything that is not an IP literal would make the socket layer try a DNS lookup.
 */
function isIPv6(text: string): boolean {
  let rest = text;
  let groups = 8;
  if (text.includes('.')) {
    const colon = text.lastIndexOf(':');
    if (colon < 0 || !IPV4.test(text.slice(colon + 1))) return false;
    rest = text.slice(0, colon + 1);
    if (!rest.endsWith('::')) rest = rest.slice(0, -1);
    groups = 6;
  }
  const halves = rest.split('::');
  if (halves.length > 2) return false;
  const parts = halves.map((half) => (half === '' ? [] : half.split(':')));
  if (!parts.every((part) => part.every((group) => HEX_GROUP.test(group)))) return false;
  const count = parts.reduce((n, part) => n + part.length, 0);
  return halves.length === 2 ? count < groups : count === groups;
}
