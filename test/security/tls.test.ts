/**
 * MQTT over TLS and MQTT over WSS with the certificate `tali cert` makes: clients that trust it connect and
 * negotiate; plain MQTT to the TLS port and plain WebSocket to the HTTPS port do not get an MQTT session, and the
 * plain MQTT port is closed unless asked for.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished, describe, expect, it } from 'vitest';
import { selfSigned } from '../../src/cli/cert.ts';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { startBridge, type TestBridge } from '../helpers/bridge.ts';
import { connectPacket, RawConnection, TYPE } from '../helpers/raw-mqtt.ts';

async function tlsBridge(config: Record<string, unknown> = {}): Promise<{ tb: TestBridge; ca: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-tls-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const pair = await selfSigned(['localhost', '127.0.0.1'], 1);
  await writeFile(join(dir, 'cert.pem'), pair.cert);
  await writeFile(join(dir, 'key.pem'), pair.key, { mode: 0o600 });
  const tb = await startBridge({ tlsCert: join(dir, 'cert.pem'), tlsKey: join(dir, 'key.pem'), mqttsPort: 0, ...config });
  return { tb, ca: Buffer.from(pair.cert) };
}

describe('TLS', () => {
  it('mqtts:// and wss:// with the certificate as CA: a device logs in and gets answers', async () => {
    const { tb, ca } = await tlsBridge();
    expect(tb.bridge.wsUrl).toMatch(/^wss:/);
    const secret = await tb.bridge.credentials.add('cam1', 'device');
    for (const url of [tb.bridge.mqttsUrl as string, tb.bridge.wsUrl]) {
      const client = await connectMqtt({ target: url.replace('127.0.0.1', 'localhost'), clientId: 'cam1', username: 'cam1', password: secret, tls: { ca } });
      const reply = new Promise<string>((resolve) => client.once('message', (_t, p) => resolve(p.toString())));
      await client.subscribeAsync(tb.bridge.topics.device('cam1', 'down'), { qos: 1 });
      await client.publishAsync(tb.bridge.topics.device('cam1', 'up'), '{', { qos: 1 });
      expect(JSON.parse(await reply)).toMatchObject({ code: 'TALI_ERR_MALFORMED_JSON' });
      await client.endAsync();
    }
  });

  it('a client that does not trust the certificate is refused by its own TLS check', async () => {
    const { tb } = await tlsBridge();
    await expect(connectMqtt({ target: tb.bridge.mqttsUrl as string, clientId: 'x', connectTimeoutMs: 3000 })).rejects.toThrow(/self-signed|certificate/i);
  });

  it('plain MQTT to the TLS port and a plain WebSocket to the HTTPS port get no MQTT session', async () => {
    const { tb } = await tlsBridge();
    const plain = await RawConnection.open((tb.bridge.mqttsUrl as string).replace('mqtts:', 'mqtt:'));
    plain.write(connectPacket({ clientId: 'cam1' }));
    await plain.expectClosed();
    expect(plain.packets.some((p) => p.type === TYPE.CONNACK)).toBe(false);
    await expect(RawConnection.open(tb.bridge.wsUrl.replace('wss:', 'ws:'))).rejects.toThrow();
  });

  it('with a certificate, plain MQTT does not listen unless plainMqttWithTls asks for it', async () => {
    const { tb, ca } = await tlsBridge();
    expect(tb.bridge.mqttPort).toBe(0);
    expect(tb.bridge.embedded?.tcp.server.listening).toBe(false);
    expect(tb.bridge.mqttUrl).toBe(tb.bridge.mqttsUrl);
    // Ready on the TLS listener alone.
    expect(await httpsStatus(`https://localhost:${tb.bridge.httpPort}/readyz`, ca)).toBe(200);
    const both = (await tlsBridge({ plainMqttWithTls: true })).tb;
    expect(both.bridge.mqttPort).toBeGreaterThan(0);
    const secret = await both.bridge.credentials.add('cam1', 'device');
    const plain = await connectMqtt({ target: both.bridge.mqttUrl, clientId: 'cam1', username: 'cam1', password: secret });
    expect(both.bridge.mqttUrl).toMatch(/^mqtt:/);
    await plain.endAsync();
  });
});

function httpsStatus(url: string, ca: Buffer): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    get(url, { ca }, (res) => (res.resume(), resolve(res.statusCode))).on('error', reject);
  });
}
