/**
 * The lossy-link harness itself: a namespace host leaves the host's own interfaces as they were. Every WebRTC peer
 * of every other test running at the same time gathers a candidate on each address of this machine; an address the
 * harness added would become their selected pair and vanish with the namespace, stopping their media mid-test.
 */
import { networkInterfaces } from 'node:os';
import { createServer } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { NetHost, netHostUnavailable } from './netns.ts';

const unavailable = netHostUnavailable();

/** Every address of every interface of this (the host's) namespace. */
const hostAddresses = () =>
  Object.entries(networkInterfaces())
    .flatMap(([name, list]) => (list ?? []).map((info) => `${name} ${info.address}`))
    .sort();

describe.skipIf(unavailable !== undefined && process.env.CI !== 'true')(`the namespace harness${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  it("adds no address to the host's interfaces, and the namespace still reaches the host's services", async () => {
    if (unavailable) throw new Error(`${unavailable} (CI=true)`);
    const before = hostAddresses();
    const host = await NetHost.create();
    onTestFinished(() => host.close());
    expect(hostAddresses()).toEqual(before);
    expect(before.some((entry) => entry.endsWith(` ${host.address}`))).toBe(false);

    // A TCP service on the host's address, reached from inside the namespace through the link.
    const server = createServer((socket) => socket.end('hello from the host\n'));
    onTestFinished(() => void server.close());
    await new Promise<void>((resolve) => server.listen(0, host.gateway, resolve));
    const { port } = server.address() as { port: number };
    const script = `import socket; s = socket.create_connection(("${host.gateway}", ${port}), 5); print(s.getsockname()[0]); print(s.recv(64).decode().strip())`;
    const [source, reply] = (await host.exec('/usr/bin/python3', ['-c', script])).trim().split('\n');
    expect(source).toBe(host.address);
    expect(reply).toBe('hello from the host');
    const { up, down } = await host.stats();
    expect(up.packets).toBeGreaterThan(0);
    expect(down.packets).toBeGreaterThan(0);
  });
});
