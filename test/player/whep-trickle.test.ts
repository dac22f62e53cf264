/** The player's trickle fragments (src/player/whep-trickle.ts), read by the bridge's own parser of PATCH bodies. */
import { describe, expect, it } from 'vitest';
import { sdpFragment } from '../../src/player/whep-trickle.ts';
import { parseSdpFragment } from '../../src/profiles/whep/sdpfrag.ts';

/** The shape of a Chromium recvonly offer made with max-bundle (trimmed), before any candidate is gathered. */
const OFFER = [
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'a=msid-semantic: WMS',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97',
  'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:EsAw',
  'a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1',
  'a=ice-options:trickle',
  'a=mid:0',
  'a=recvonly',
  'a=rtpmap:96 VP8/90000',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111',
  'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:EsAw',
  'a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1',
  'a=mid:1',
  'a=recvonly',
  'a=rtpmap:111 opus/48000/2',
  '',
].join('\r\n');

const HOST = 'a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1';
const OTHER = 'a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2';

describe('sdpFragment', () => {
  it('puts each candidate under its media section, in the offer\'s order, with the ICE credentials and the end of candidates', () => {
    const body = sdpFragment(OFFER, [{ mid: '0', line: HOST }, { mid: '1', line: OTHER }], true);
    expect(body.split('\r\n').slice(0, 6)).toEqual(['a=group:BUNDLE 0 1', 'm=video 9 UDP/TLS/RTP/SAVPF 96 97', 'a=mid:0', 'a=ice-ufrag:EsAw', 'a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1', HOST]);
    expect(parseSdpFragment(body)).toEqual({
      ufrag: 'EsAw',
      pwd: 'P2uYro0UCOQ4zxjKXaWCBui1',
      candidates: [
        { candidate: HOST.slice(2), sdpMid: '0', sdpMLineIndex: 0 },
        { candidate: OTHER.slice(2), sdpMid: '1', sdpMLineIndex: 1 },
      ],
      endOfCandidates: true,
    });
  });

  it('a candidate without a mid goes with the first section; the end alone is a fragment too', () => {
    expect(parseSdpFragment(sdpFragment(OFFER, [{ mid: null, line: HOST }], false))).toMatchObject({
      candidates: [{ candidate: HOST.slice(2), sdpMid: '0', sdpMLineIndex: 0 }],
      endOfCandidates: false,
    });
    expect(parseSdpFragment(sdpFragment(OFFER, [], true))).toMatchObject({ candidates: [], endOfCandidates: true });
  });
});
