/**
 * werift 0.25 falls back to stun.l.google.com:19302 whenever no STUN server is configured, even with
 * `iceServers: []`: traffic nobody asked for, and where that name does not resolve the lookups queue in libuv's
 * thread pool and gathering waits out werift's 5 s STUN timeout (100 concurrent answers: 5.2 s p50 instead of
 * 0.23 s; see bench/concurrency.ts). Every werift peer in the project goes through here before it gathers.
 */
import type { RTCPeerConnection } from 'werift';

interface IceServerLike {
  urls: string | readonly string[];
}

export function hasStunServer(servers: readonly IceServerLike[]): boolean {
  return servers.some((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]).some((url: string) => /^stuns?:/i.test(url)));
}

/**
 * Unless `servers` has a stun: URL, drops werift's default so gathering yields host (and TURN) candidates only.
 * Call after createOffer/createAnswer (the ICE transports exist then) and before setLocalDescription (which gathers).
 */
export function withoutDefaultStun(pc: RTCPeerConnection, servers: readonly IceServerLike[] = []): void {
  if (hasStunServer(servers)) return;
  for (const transport of pc.iceTransports) transport.connection.stunServer = undefined;
}
