/**
 * What the device and viewer entry points (./device.ts, ./viewer.ts and their browser twins) both export: the
 * connection options, refused-CONNECT error, backoff settings and the offerer surface a WebRTC stack implements.
 * Browser-safe.
 */
export type { BackoffOptions } from '../client/backoff.ts';
export { ConnectRefusedError, type ClientConnectOptions, type MqttConnector } from '../client/mqtt-link.ts';
export type { IceCandidateInit, OffererPeer, OffererPeerState } from '../client/offerer-peer.ts';
export { TypedEmitter, type Listener } from '../client/emitter.ts';
