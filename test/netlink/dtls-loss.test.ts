/**
 * DTLS through a link that loses exactly the packet that hurts: a werift camera in a network namespace, the bridge
 * here, and one handshake record dropped by the forwarder. Each case failed before patches/werift+0.25.2.patch
 * (docs/werift-patches.md): the session must connect on BOTH sides, never on one only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBridge, type TestBridge } from '../helpers/bridge.ts';
import { DTLS, NetHost, netHostUnavailable } from './netns.ts';
import { cameraTrials, oneSided, streamed } from './trials.ts';

const unavailable = netHostUnavailable();

describe.skipIf(unavailable !== undefined && process.env.CI !== 'true')(`DTLS through a lossy link${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let host: NetHost;
  let tb: TestBridge & { close: () => Promise<void> };
  beforeAll(async () => {
    if (unavailable) throw new Error(`${unavailable} (CI=true)`);
    host = await NetHost.create();
    tb = await createBridge({ host: host.gateway });
    await host.shape('both', { delayMs: 10 });
  });
  afterAll(async () => {
    await tb?.close();
    await host?.close();
  });

  const cases = [
    // The server's Finished: the camera retransmits its flight 5 and must get flight 6 again.
    { name: "the bridge's Finished", direction: 'down', pattern: DTLS.finishedRecord },
    // The camera's Certificate: CertificateVerify and ClientKeyExchange come first. werift failed the handshake
    // ("client certificate missing before certificate verify") or derived the extended master secret from a partial
    // transcript, and every later Finished failed to decrypt.
    { name: "the camera's Certificate", direction: 'up', pattern: DTLS.handshake(11) },
    // The bridge's CertificateRequest: werift's client sent flight 5 without a certificate, forever.
    { name: "the bridge's CertificateRequest", direction: 'down', pattern: DTLS.handshake(13) },
    // The bridge's ServerHello: the rest of flight 4 arrives before it.
    { name: "the bridge's ServerHello", direction: 'down', pattern: DTLS.handshake(2) },
  ] as const;

  it.each(cases)('losing $name still connects both sides', async ({ direction, pattern }) => {
    await host.dropNext(direction, pattern);
    const before = (await host.stats())[direction].matched;
    const [trial, ...more] = await cameraTrials(host, tb.bridge, { cameras: 1, trialsPerCamera: 1, idPrefix: `drop${direction}` });
    expect((await host.stats())[direction].matched).toBe(before + 1); // the record was really lost
    expect(more).toEqual([]);
    expect(trial).toBeDefined();
    expect(oneSided(trial!)).toBe(false);
    expect(streamed(trial!), JSON.stringify(trial)).toBe(true);
  });

  // Random loss: every session streams or fails on both sides (never one-sided), and most stream. The rates and
  // times to streaming are measured by `npm run bench` (lossy table), not asserted here.
  it.each([0.05, 0.15])('at %s loss and 20 ms each way, sessions are never one-sided and most stream', async (loss) => {
    await host.shape('both', { loss, delayMs: 20 });
    try {
      const trials = await cameraTrials(host, tb.bridge, { cameras: 4, trialsPerCamera: 1, idPrefix: `loss${loss * 100}x` });
      expect(trials).toHaveLength(4);
      expect(trials.filter(oneSided), JSON.stringify(trials)).toEqual([]);
      expect(trials.filter((t) => streamed(t)).length, JSON.stringify(trials)).toBeGreaterThanOrEqual(2);
    } finally {
      await host.shape('both', { loss: 0, delayMs: 10 });
    }
  });
});
