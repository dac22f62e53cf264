/**
 * One valid message of every type, with the channel it travels on. Kept minimal-but-complete so that each schema
 * violation test can break exactly one field of a known-good message.
 */
import type { Channel, Message, MessageType } from '../../src/protocol/index.ts';

export const SESSION = 'SNHLP5XcHOY1bK2syPl-jw';
export const TS = 1_764_038_401_250;

const SDP = 'v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n';

export const VALID: { [T in MessageType]: Extract<Message, { type: T }> } = {
  offer: { v: 1, type: 'offer', sessionId: SESSION, seq: 1, ts: TS, sdp: SDP },
  answer: { v: 1, type: 'answer', sessionId: SESSION, seq: 1, ts: TS, sdp: SDP },
  candidate: {
    v: 1,
    type: 'candidate',
    sessionId: SESSION,
    seq: 2,
    ts: TS,
    candidate: 'candidate:1 1 udp 2122260223 192.168.1.23 51234 typ host',
    sdpMid: '0',
    sdpMLineIndex: 0,
  },
  bye: { v: 1, type: 'bye', sessionId: SESSION, seq: 5, ts: TS, reason: 'normal' },
  error: {
    v: 1,
    type: 'error',
    ts: TS,
    code: 'TALI_ERR_STALE',
    message: 'ts is 90000 ms away from the bridge clock',
    sessionId: SESSION,
    seq: 2,
    ref: { type: 'offer', seq: 1 },
  },
  start: { v: 1, type: 'start', ts: TS, reason: 'viewer' },
  status: {
    v: 1,
    type: 'status',
    ts: TS,
    state: 'online',
    model: 'ACME C1',
    firmware: '1.4.2',
    sdk: 'libdatachannel 0.22',
    codecs: { video: ['H264', 'VP8'], audio: ['opus', 'PCMU'] },
  },
  'bridge-status': {
    v: 1,
    type: 'bridge-status',
    ts: TS,
    state: 'online',
    bridgeId: 'bridge-1',
    version: '0.1.0',
    iceServers: [
      { urls: 'stun:stun.example.net:3478' },
      { urls: ['turn:turn.example.net:3478?transport=udp'], username: 'u', credential: 'c' },
    ],
    udpPortRange: [40000, 40100],
    maxMessageBytes: 16384,
    iceServersPerDevice: true,
  },
  'ice-servers': {
    v: 1,
    type: 'ice-servers',
    ts: TS,
    iceServers: [{ urls: ['turn:turn.example.net:3478?transport=udp'], username: '1764042001:cam1', credential: 'pMVs/OIRO5Cm8qA8JzvW5Cpj6zU=' }],
    expiresAt: 1_764_042_001_000,
    iceTransportPolicy: 'relay',
  },
  watch: { v: 1, type: 'watch', sessionId: SESSION, seq: 1, ts: TS, deviceId: 'cam1', sdp: SDP },
  adopt: { v: 1, type: 'adopt', sessionId: SESSION, seq: 4, ts: TS, deviceId: 'cam1', connection: 'c-Qm4T8zW1xY' },
  stream: { v: 1, type: 'stream', sessionId: SESSION, seq: 2, ts: TS, deviceId: 'cam1', state: 'live' },
  leave: { v: 1, type: 'leave', ts: TS },
  metrics: {
    v: 1,
    type: 'metrics',
    ts: TS,
    sessionId: SESSION,
    bridgeId: 'bridge-1',
    state: 'streaming',
    timeline: { offer: 0, answer: 9.4, iceConnected: 131.2, connected: 139.8, firstRtp: 141.5 },
    tracks: [{ kind: 'video', codec: 'VP8', packets: 12, bytes: 14000, keyframes: 1 }],
  },
};

/** The channels each type may be sent on (the inverse of CHANNEL_TYPES, spelled out so a change to it is caught). */
export const CHANNELS_OF: { [T in MessageType]: Channel[] } = {
  offer: ['up'],
  answer: ['down', 'viewer-down'],
  candidate: ['up', 'down', 'viewer-up', 'viewer-down'],
  bye: ['up', 'down', 'viewer-up', 'viewer-down'],
  error: ['up', 'down', 'viewer-down'],
  start: ['down'],
  status: ['status'],
  'bridge-status': ['bridge'],
  'ice-servers': ['down', 'viewer-down'],
  watch: ['viewer-up'],
  adopt: ['viewer-up'],
  stream: ['viewer-down'],
  leave: ['viewer-up'],
  metrics: ['metrics'],
};

/** `base` with fields replaced (`undefined` deletes), as a JSON string ready for decode(). */
export function variant(base: object, changes: Record<string, unknown>): string {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete out[key];
    else out[key] = value;
  }
  return JSON.stringify(out);
}
