/**
 * libpeer's credentials: `peer_signaling_connect(url, token, pc)` base64-decodes the token and splits it at the first
 * `:` into the MQTT user name and password (peer_signaling.c, peer_signaling_resolve_token; a 256-byte buffer).
 */
export function libpeerToken(deviceId: string, secret: string): string {
  return Buffer.from(`${deviceId}:${secret}`, 'utf8').toString('base64');
}
