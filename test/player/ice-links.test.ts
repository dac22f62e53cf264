/** The player's reading of WHEP `Link: rel="ice-server"` headers, against what the bridge's WHEP route writes. */
import { describe, expect, it } from 'vitest';
import { iceServersFromLinks } from '../../src/player/ice-links.ts';

describe('iceServersFromLinks', () => {
  it('reads STUN and TURN links, with the TURN credentials (quoted values unescaped)', () => {
    const header = [
      '<stun:stun.example.net:3478>; rel="ice-server"',
      '<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="1767139200:alice"; credential="a\\"b,c;d"; credential-type="password"',
      '<turns:turn.example.net:5349?transport=tcp>; rel=ice-server; username="u"; credential="p"',
    ].join(', ');
    expect(iceServersFromLinks(header)).toEqual([
      { urls: 'stun:stun.example.net:3478' },
      { urls: 'turn:turn.example.net:3478?transport=udp', username: '1767139200:alice', credential: 'a"b,c;d' },
      { urls: 'turns:turn.example.net:5349?transport=tcp', username: 'u', credential: 'p' },
    ]);
  });

  it('leaves out other relations and other URL schemes; nothing for no header', () => {
    expect(iceServersFromLinks('<https://example.net/>; rel="next", <javascript:alert(1)>; rel="ice-server", <stun:s.example:3478>; rel="preload ice-server"')).toEqual([
      { urls: 'stun:s.example:3478' },
    ]);
    expect(iceServersFromLinks(null)).toEqual([]);
    expect(iceServersFromLinks('')).toEqual([]);
  });
});
