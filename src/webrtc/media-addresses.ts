/**
 * Which local addresses media uses (--media-addresses) and which extra ones it announces (--announce-addresses), in
 * werift's terms: it binds ICE sockets to one IPv4 and one IPv6 address at most (`iceInterfaceAddresses`), and adds
 * announced addresses as host candidates on the same ports (`iceAdditionalHostAddresses`).
 */
import { isIP } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';

export interface MediaAddresses {
  udp4?: string;
  udp6?: string;
}

/**
 * Interface names and local addresses → the one IPv4 and/or IPv6 address to bind; undefined for none (every
 * interface). Throws with what is wrong: an unknown interface, an address this machine does not have, or more than
 * one address of a family (werift cannot bind several).
 */
export function resolveMediaAddresses(
  entries: readonly string[],
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
): MediaAddresses | undefined {
  if (entries.length === 0) return undefined;
  const local = Object.values(interfaces).flatMap((list) => list ?? []);
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  for (const entry of entries) {
    let found: NetworkInterfaceInfo[];
    if (isIP(entry) !== 0) {
      found = local.filter((info) => info.address === entry);
      if (found.length === 0) throw new Error(`mediaAddresses: ${entry} is not an address of this machine`);
      // werift never gathers loopback addresses, and with none of the given ones left it would use them all.
      if (found.every((info) => info.internal)) throw new Error(`mediaAddresses: ${entry} is a loopback address, which werift does not use for media`);
    } else {
      const named = interfaces[entry];
      if (named === undefined) throw new Error(`mediaAddresses: no network interface named ${entry} (have: ${Object.keys(interfaces).join(', ')})`);
      // Link-local IPv6 (fe80::/10) needs a scope and is no use to remote peers.
      found = named.filter((info) => !info.internal && !(info.family === 'IPv6' && info.address.toLowerCase().startsWith('fe80')));
      if (found.length === 0) throw new Error(`mediaAddresses: interface ${entry} has no address werift uses for media (loopback or link-local only)`);
    }
    for (const info of found) (info.family === 'IPv4' ? v4 : v6).add(info.address);
  }
  for (const [family, set] of [['IPv4', v4], ['IPv6', v6]] as const) {
    if (set.size > 1) throw new Error(`mediaAddresses: media binds one ${family} address, got ${[...set].join(', ')}: name addresses instead of interfaces`);
  }
  const [udp4] = v4;
  const [udp6] = v6;
  return { ...(udp4 !== undefined && { udp4 }), ...(udp6 !== undefined && { udp6 }) };
}
