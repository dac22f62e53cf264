/**
 * The dashboard of `tali answer` on a real Mosquitto (Debian's package, with the ACL and password files tali
 * generates, and no WebSocket listener of its own): Chromium signs in with a viewer's password (no tokens here: the
 * bridge issues none for an external broker), its MQTT over WebSocket goes through the bridge's /mqtt pipe to
 * Mosquitto, it sees a simulated camera online and plays its video.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import { Bridge } from '../../src/bridge.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import { Topics } from '../../src/protocol/topics.ts';
import { AccessPolicy } from '../../src/security/access.ts';
import { CredentialStore } from '../../src/security/credentials.ts';
import { mosquittoAcl, mosquittoPasswordLine } from '../../src/security/mosquitto.ts';
import { captureLogger } from '../helpers/bridge.ts';
import { describeWith, startMosquitto, type Service } from '../helpers/services.ts';
import { chromiumAvailable, launch, openPage, screenshot, type Browser } from './browser.ts';
import { deviceCard, signIn, watchAndPlay } from './pages.ts';

describeWith(['mosquitto'], 'the dashboard of tali answer on Mosquitto', () => {
  describe.skipIf(!chromiumAvailable())('in Chromium', { timeout: 60_000 }, () => {
    let dataDir: string;
    let mosquitto: Service;
    let bridge: Bridge;
    let browser: Browser;
    const secrets: Record<string, string> = { 'tali-bridge': 'bridge-secret-for-tests' };

    beforeAll(async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'tali-e2e-mosq-'));
      const store = new CredentialStore(dataDir);
      secrets.cam1 = await store.add('cam1', 'device');
      secrets.alice = await store.add('alice', 'viewer');
      const acl = mosquittoAcl(new AccessPolicy(new Topics('tali')), 'tali-bridge', [
        { id: 'cam1', role: 'device' },
        { id: 'alice', role: 'viewer' },
      ]);
      const passwords = await Promise.all(Object.entries(secrets).map(([user, secret]) => mosquittoPasswordLine(user, secret)));
      mosquitto = await startMosquitto({ acl, passwords: `${passwords.join('\n')}\n` });
      bridge = await Bridge.start({
        config: { host: '127.0.0.1', httpPort: 0, dataDir, broker: mosquitto.url, brokerUsername: 'tali-bridge', brokerPassword: secrets['tali-bridge'] },
        logger: captureLogger([]),
      });
      browser = await launch({ candidates: 'raw-ip' });
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
      await bridge?.close();
      await mosquitto?.close();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    it('signs in with a password, sees the camera through the /mqtt pipe and plays it', async () => {
      const camera = new SimulatedCamera({ deviceId: 'cam1', secret: secrets.cam1!, connect: nodeConnector(mosquitto.url) });
      onTestFinished(() => camera.stop());
      await camera.start();
      const page = await openPage(browser, `http://127.0.0.1:${bridge.httpPort}/`);
      onTestFinished(() => page.close());
      const sockets: string[] = [];
      page.on('websocket', (socket) => sockets.push(socket.url()));
      await signIn(page, 'alice', secrets.alice!);
      expect(sockets).toEqual([`ws://127.0.0.1:${bridge.httpPort}/mqtt`]);
      expect(await page.getAttribute('#who', 'data-login')).toBe('password');
      await page.waitForSelector(deviceCard('cam1', 'online'));
      expect((await watchAndPlay(page, 'cam1')).videoWidth).toBeGreaterThan(0);
      await screenshot(page, 'dashboard-on-mosquitto');
    });
  });
});
