/**
 * Which web pages may open MQTT over WebSocket at /mqtt. A browser sends `Origin` with every WebSocket handshake
 * (RFC 6455 §4.1, item 8) and a page on another site can open one to any host it names: without this check, a page
 * the operator's browser visits could connect with that browser's cookies or cached credentials. Clients that are
 * not browsers send no Origin and are let through (they cannot be made to by a third-party page).
 *
 * Allowed: the bridge's own origin (the Origin's host and port equal the request's Host header; the scheme may
 * differ behind a TLS-terminating proxy) and the origins of the `allowedOrigins` option. Anything else, `null`
 * (sandboxed frames, file: pages) included, is refused with 403 before the upgrade.
 */
import type { IncomingMessage } from 'node:http';

/** "https://a.example, http://b.example:8080" → the normalised origins (scheme://host[:port], lower case). */
export function parseOrigins(list: string): ReadonlySet<string> {
  const origins = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return new Set(origins.map((o) => new URL(o).origin));
}

export function originAllowed(req: IncomingMessage, allowed: ReadonlySet<string>): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (allowed.has(url.origin)) return true;
  const host = req.headers.host;
  if (host === undefined) return false;
  let own: URL;
  try {
    own = new URL(`${url.protocol}//${host}`);
  } catch {
    return false;
  }
  return own.host === url.host;
}

/** The check for a bridge's /mqtt, from its `allowedOrigins` option. */
export function originCheck(config: { allowedOrigins: string }): (req: IncomingMessage) => boolean {
  const allowed = parseOrigins(config.allowedOrigins);
  return (req) => originAllowed(req, allowed);
}
