import { describe, expect, it } from 'vitest';
import { parseCandidate } from '../../src/protocol/index.ts';

describe('parseCandidate: candidates as real stacks write them', () => {
  it('Chrome host candidate hidden behind an mDNS name', () => {
    const c = parseCandidate(
      'candidate:1467250027 1 udp 2122260223 0a7c6b3e-5f1d-4c2a-9e8b-7d6f5a4b3c2d.local 54400 typ host generation 0 ufrag aBcD network-id 1 network-cost 10',
    );
    expect(c).toEqual({
      foundation: '1467250027',
      component: 1,
      transport: 'udp',
      priority: 2122260223,
      address: '0a7c6b3e-5f1d-4c2a-9e8b-7d6f5a4b3c2d.local',
      port: 54400,
      type: 'host',
      mdns: true,
    });
  });

  it('srflx with raddr/rport (and Chrome extensions after them)', () => {
    const c = parseCandidate(
      'candidate:842163049 1 udp 1677729535 198.51.100.7 62001 typ srflx raddr 192.168.1.23 rport 51234 generation 0 ufrag aBcD network-cost 999',
    );
    expect(c).toMatchObject({ type: 'srflx', address: '198.51.100.7', port: 62001, mdns: false });
    expect(c.relatedAddress).toBe('192.168.1.23');
    expect(c.relatedPort).toBe(51234);
  });

  it('srflx whose related address Chrome blanked out (0.0.0.0 / 0)', () => {
    const c = parseCandidate('candidate:3 1 udp 1686052607 198.51.100.7 62001 typ srflx raddr 0.0.0.0 rport 0');
    expect([c.relatedAddress, c.relatedPort]).toEqual(['0.0.0.0', 0]);
  });

  it('TCP with tcptype (RFC 6544), port 9 for active', () => {
    const c = parseCandidate('candidate:1191048001 1 tcp 1518280447 192.168.1.23 9 typ host tcptype active generation 0');
    expect(c).toMatchObject({ transport: 'tcp', port: 9, type: 'host' });
  });

  it('IPv6 host and relay over IPv6', () => {
    expect(parseCandidate('candidate:2 1 udp 2122262783 2001:db8::1a2b:3c4d 50000 typ host').address).toBe(
      '2001:db8::1a2b:3c4d',
    );
    const relay = parseCandidate('candidate:5 1 udp 41885439 2001:db8:1::5 3478 typ relay raddr 2001:db8::9 rport 50000');
    expect(relay).toMatchObject({ type: 'relay', relatedAddress: '2001:db8::9', relatedPort: 50000 });
  });

  it.each(['::', '::1', 'fe80::1', '::ffff:192.0.2.1', '::192.0.2.1', '1:2:3:4:5:6:192.0.2.1', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::'])(
    'IPv6 text form %s',
    (address) => {
      expect(parseCandidate(`candidate:1 1 udp 1 ${address} 9 typ host`).address).toBe(address);
    },
  );

  it('libnice / libjuice style: "a=" prefix, upper-case UDP, link-local IPv6', () => {
    const c = parseCandidate('a=candidate:1 1 UDP 2013266431 fe80::7c2a:8bff:fe11:2233 46011 typ host');
    expect(c).toMatchObject({ foundation: '1', transport: 'udp', address: 'fe80::7c2a:8bff:fe11:2233', port: 46011 });
  });

  it('Firefox relay and prflx, foundation with + and /, component 2, trailing CRLF', () => {
    expect(parseCandidate('candidate:4 1 UDP 8265727 203.0.113.50 53791 typ relay raddr 198.51.100.7 rport 62001').type).toBe(
      'relay',
    );
    expect(parseCandidate('candidate:a+b/C9 2 udp 1845501695 198.51.100.7 62002 typ prflx\r\n')).toMatchObject({
      foundation: 'a+b/C9',
      component: 2,
      type: 'prflx',
    });
  });

  it('boundary values: 32-character foundation, priority 2^32-1, ports 0 and 65535', () => {
    const c = parseCandidate(`candidate:${'F'.repeat(32)} 256 udp 4294967295 192.0.2.1 65535 typ host`);
    expect([c.foundation.length, c.component, c.priority, c.port]).toEqual([32, 256, 4294967295, 65535]);
    expect(parseCandidate('candidate:1 1 udp 1 192.0.2.1 0 typ host').port).toBe(0);
  });
});

describe('parseCandidate: garbage', () => {
  it.each([
    ['empty', ''],
    ['no prefix', '1 1 udp 2122260223 192.168.1.23 51234 typ host'],
    ['prefix only', 'candidate:'],
    ['SDP line with a different attribute', 'a=mid:0'],
    ['too few fields', 'candidate:1 1 udp 2122260223 192.168.1.23 51234 typ'],
    ['foundation with -', 'candidate:ab-c 1 udp 1 192.0.2.1 9 typ host'],
    ['foundation of 33', `candidate:${'f'.repeat(33)} 1 udp 1 192.0.2.1 9 typ host`],
    ['component 0', 'candidate:1 0 udp 1 192.0.2.1 9 typ host'],
    ['component 257', 'candidate:1 257 udp 1 192.0.2.1 9 typ host'],
    ['transport sctp', 'candidate:1 1 sctp 1 192.0.2.1 9 typ host'],
    ['priority over 32 bits', 'candidate:1 1 udp 4294967296 192.0.2.1 9 typ host'],
    ['priority of 11 digits', 'candidate:1 1 udp 12345678901 192.0.2.1 9 typ host'],
    ['negative priority', 'candidate:1 1 udp -1 192.0.2.1 9 typ host'],
    ['hex priority', 'candidate:1 1 udp 0x10 192.0.2.1 9 typ host'],
    ['FQDN', 'candidate:1 1 udp 1 stun.example.com 9 typ host'],
    ['.local with a dot in the label', 'candidate:1 1 udp 1 a.b.local 9 typ host'],
    ['IPv4 octet 256', 'candidate:1 1 udp 1 192.0.2.256 9 typ host'],
    ['IPv4 with three octets', 'candidate:1 1 udp 1 192.0.2 9 typ host'],
    ['IPv4 with a leading zero', 'candidate:1 1 udp 1 192.0.2.01 9 typ host'],
    ['IPv6 with a zone', 'candidate:1 1 udp 1 fe80::1%eth0 9 typ host'],
    ...[':::', '1:2', '1.2.3.4:', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '12345::1', '::ffff:1.2.3', ':1:2:3:4:5:6:7:8'].map(
      (address) => [`IPv6-looking ${address}`, `candidate:1 1 udp 1 ${address} 9 typ host`],
    ),
    ['port 65536', 'candidate:1 1 udp 1 192.0.2.1 65536 typ host'],
    ['port not a number', 'candidate:1 1 udp 1 192.0.2.1 http typ host'],
    ['"typ" missing', 'candidate:1 1 udp 1 192.0.2.1 9 type host'],
    ['unknown type', 'candidate:1 1 udp 1 192.0.2.1 9 typ peer'],
    ['raddr without value', 'candidate:1 1 udp 1 192.0.2.1 9 typ srflx raddr'],
    ['raddr that is a DNS name', 'candidate:1 1 udp 1 192.0.2.1 9 typ srflx raddr router.lan rport 9'],
    ['rport out of range', 'candidate:1 1 udp 1 192.0.2.1 9 typ srflx raddr 10.0.0.1 rport 70000'],
    ['tab separated', 'candidate:1\t1\tudp\t1\t192.0.2.1\t9\ttyp\thost'],
    ['binary junk', 'candidate:\u0000\u0001\u0002 1 udp 1 192.0.2.1 9 typ host'],
  ])('rejects %s', (_what, text) => {
    expect(() => parseCandidate(text)).toThrow(TypeError);
  });

  it('quotes at most a short piece of the input in its message', () => {
    for (const text of [
      `candidate:1 1 ${'u'.repeat(500)} 1 192.0.2.1 9 typ host`,
      `candidate:1 1 udp 1 ${'a'.repeat(500)} 9 typ host`,
      `candidate:1 1 udp 1 192.0.2.1 9 typ host ${'e'.repeat(500)}`,
    ]) {
      expect(() => parseCandidate(text)).toThrow(TypeError);
      try {
        parseCandidate(text);
      } catch (err) {
        expect((err as Error).message.length).toBeLessThan(120);
      }
    }
  });
});
