/**
 * The ICE servers a WHEP endpoint hands its player as `Link` headers (RFC 9725 §4.6; the bridge's
 * src/profiles/whep/whep-route.ts writes them): `<turn:host:3478?transport=udp>; rel="ice-server";
 * username="…"; credential="…"; credential-type="password"`, one link per URL, several joined by commas (RFC 8288
 * §3). Anything that is not an `ice-server` link, or not a stun:/stuns:/turn:/turns: URL, is left out. Browser-safe.
 */

export interface LinkIceServer {
  urls: string;
  username?: string;
  credential?: string;
}

/** Each link: `<uri>` then `; name=value` parameters, values quoted or not. */
const LINK = /<([^>]*)>((?:\s*;\s*[A-Za-z0-9!#$&+.^_`|~-]+\s*(?:=\s*(?:"(?:[^"\\]|\\.)*"|[^",;]*))?)*)/g;
const PARAM = /;\s*([A-Za-z0-9!#$&+.^_`|~-]+)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"|([^",;]*)))?/g;

export function iceServersFromLinks(header: string | null): LinkIceServer[] {
  if (header === null) return [];
  const servers: LinkIceServer[] = [];
  for (const [, url, rest] of header.matchAll(LINK)) {
    const params = new Map<string, string>();
    for (const [, name, quoted, bare] of rest!.matchAll(PARAM)) {
      params.set(name!.toLowerCase(), quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : (bare ?? '').trim());
    }
    if (!(params.get('rel') ?? '').toLowerCase().split(/\s+/).includes('ice-server')) continue;
    if (!/^(stuns?|turns?):/i.test(url!)) continue;
    const username = params.get('username');
    const credential = params.get('credential');
    servers.push({ urls: url!, ...(username !== undefined && credential !== undefined && { username, credential }) });
  }
  return servers;
}
