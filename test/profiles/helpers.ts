/**
 * A bridge with MQTT over TLS (libpeer always speaks TLS) and libpeer test devices registered on it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { LibpeerDevice, type LibpeerDeviceOptions } from '../../devices/libpeer/libpeer-device.ts';
import { selfSigned } from '../../src/cli/cert.ts';
import type { OptionName } from '../../src/config/options.ts';
import { libpeerToken } from '../../src/profiles/libpeer/token.ts';
import { TokenSigner } from '../../src/security/tokens.ts';
import { startBridge, type TestBridge } from '../helpers/bridge.ts';

export async function tlsBridge(config: Partial<Record<OptionName, unknown>> = {}): Promise<TestBridge> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-libpeer-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const pair = await selfSigned(['localhost', '127.0.0.1'], 1);
  await writeFile(join(dir, 'cert.pem'), pair.cert);
  await writeFile(join(dir, 'key.pem'), pair.key, { mode: 0o600 });
  return startBridge({ tlsCert: join(dir, 'cert.pem'), tlsKey: join(dir, 'key.pem'), mqttsPort: 0, ...config });
}

/** Registers `deviceId` as a libpeer device and starts a test device on `<prefix>/<deviceId>`; stopped after the test. */
export async function startLibpeerDevice(
  tb: TestBridge,
  deviceId: string,
  options: Partial<LibpeerDeviceOptions> & { prefix?: string } = {},
): Promise<{ device: LibpeerDevice; url: string; token: string }> {
  const secret = await tb.bridge.credentials.add(deviceId, 'device', { profile: 'libpeer' });
  const token = libpeerToken(deviceId, secret);
  const url = `mqtts://127.0.0.1:${tb.bridge.mqttsPort}${options.prefix ?? '/public'}/${deviceId}`;
  const device = new LibpeerDevice({ url, token, ...options });
  onTestFinished(() => device.stop());
  const rc = await device.start();
  if (rc !== 0) throw new Error(`CONNACK ${rc}`);
  return { device, url, token };
}

/** A viewer token for `user` (a stored viewer or admin), as `tali user token` signs it; a negative ttl is expired. */
export async function viewerToken(tb: TestBridge, user: string, devices: string[] | '*', ttlS = 300): Promise<string> {
  const stored = await tb.bridge.credentials.get(user);
  const now = Math.floor(Date.now() / 1000);
  return (await TokenSigner.open(tb.dataDir)).sign({ sub: user, devices, iat: now, exp: now + ttlS, auth: now, cred: stored?.created ?? '' });
}
