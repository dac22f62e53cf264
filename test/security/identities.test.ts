/**
 * Identities through the commands a newcomer types (`tali device add`, `tali user …`) against a running bridge: it
 * picks changes up without a restart, closes the connection of a removed or re-keyed identity, and viewer tokens
 * (CLI and POST /api/token) are scoped, expire, refresh and die with their user.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { TokenSigner } from '../../src/security/tokens.ts';
import { startBridge, type TestBridge } from '../helpers/bridge.ts';
import { connectRawDevice } from '../helpers/raw-device.ts';
import { Inbox, withTimeout } from '../helpers/wait.ts';

async function tali(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (append: (s: string) => void) => new Writable({ write: (c: Buffer, _e, done) => (append(c.toString()), done()) });
  const code = await main(argv, { stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)) });
  return { code, out, err };
}

function closed(client: { once(e: 'close', f: () => void): unknown }, what: string): Promise<void> {
  return withTimeout(new Promise<void>((resolve) => client.once('close', () => resolve())), 5000, what);
}

async function postToken(tb: TestBridge, auth: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${tb.bridge.httpPort}/api/token`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('tali device / tali user against a running bridge', () => {
  it('the first start creates the admin identity and says where its secret is (a file only the owner reads)', async () => {
    const tb = await startBridge();
    const file = join(tb.dataDir, 'admin.secret');
    expect(tb.logs.find((l) => l.adminSecretFile === file && /first start/.test(String(l.msg)))).toBeDefined();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(tb.dataDir, 'identities.json'))).mode & 0o777).toBe(0o600);
    const secret = (await import('node:fs/promises').then((fs) => fs.readFile(file, 'utf8'))).trim();
    const admin = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'admin', username: 'admin', password: secret });
    await admin.subscribeAsync('$SYS/#', { qos: 0 });
    await admin.endAsync();
    expect(JSON.stringify(tb.logs)).not.toContain(secret);
  });

  it('device add prints a secret once that works at once; device remove closes its live connection', async () => {
    const tb = await startBridge();
    const added = await tali('device', 'add', 'cam1', '--data-dir', tb.dataDir, '--quiet');
    expect(added.code).toBe(0);
    const secret = added.out.trim();
    expect(secret).toMatch(/^[\w-]{32}$/);
    expect(JSON.stringify(await import('node:fs/promises').then((fs) => fs.readFile(join(tb.dataDir, 'identities.json'), 'utf8')))).not.toContain(secret);
    const cam = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'cam1', username: 'cam1', password: secret });
    const gone = closed(cam, 'the removed device to be disconnected');
    expect((await tali('device', 'remove', 'cam1', '--data-dir', tb.dataDir)).code).toBe(0);
    await gone;
    expect(tb.logs.find((l) => l.event === 'disconnected')).toMatchObject({ identity: 'cam1', role: 'device' });
    await expect(connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'cam1', username: 'cam1', password: secret })).rejects.toThrow(/bad user ?name/i);
  });

  it('re-keying a device (--replace) closes the connection that used the old secret', async () => {
    const tb = await startBridge();
    const cam = await connectRawDevice(tb, 'mqtt', 'cam1');
    const gone = closed(cam.client, 'the re-keyed device to be disconnected');
    expect((await tali('device', 'add', 'cam1', '--replace', '--data-dir', tb.dataDir)).code).toBe(0);
    await gone;
  });

  it('user add / remove, list, and errors with stable codes', async () => {
    const tb = await startBridge();
    const added = await tali('user', 'add', 'alice', '--role', 'viewer', '--data-dir', tb.dataDir, '--quiet');
    const viewer = await connectMqtt({ target: tb.bridge.wsUrl, clientId: 'alice:x1', username: 'alice', password: added.out.trim() });
    expect(JSON.parse((await tali('user', 'list', '--json', '--data-dir', tb.dataDir)).out)).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: 'alice', role: 'viewer' }), expect.objectContaining({ id: 'admin', role: 'admin' })]),
    );
    expect(await tali('user', 'add', 'alice', '--role', 'viewer', '--data-dir', tb.dataDir)).toMatchObject({ code: 1, err: expect.stringContaining('TALI_ERR_IDENTITY_EXISTS') });
    expect(await tali('device', 'remove', 'alice', '--data-dir', tb.dataDir)).toMatchObject({ code: 1, err: expect.stringContaining('TALI_ERR_WRONG_ROLE') });
    expect(await tali('device', 'add', 'no/slash', '--data-dir', tb.dataDir)).toMatchObject({ code: 1, err: expect.stringContaining('TALI_ERR_INVALID_ID') });
    expect(await tali('user', 'add', 'bob', '--role', 'root', '--data-dir', tb.dataDir)).toMatchObject({ code: 2, err: expect.stringContaining('TALI_ERR_USAGE') });
    const gone = closed(viewer, 'the removed viewer to be disconnected');
    expect((await tali('user', 'remove', 'alice', '--data-dir', tb.dataDir)).code).toBe(0);
    await gone;
  });
});

describe('viewer tokens', () => {
  it('a CLI token logs in as a viewer scoped to its devices; a wrong name or a changed byte does not', async () => {
    const tb = await startBridge();
    await tb.bridge.credentials.add('alice', 'viewer');
    const { out } = await tali('user', 'token', 'alice', '--devices', 'cam1', '--ttl', '10m', '--data-dir', tb.dataDir);
    const token = out.trim();
    expect((await stat(join(tb.dataDir, 'token.key'))).mode & 0o777).toBe(0o600);
    const viewer = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'alice:1', username: 'alice', password: token });
    await viewer.subscribeAsync(tb.bridge.topics.device('cam1', 'status'), { qos: 1 });
    await expect(viewer.subscribeAsync(tb.bridge.topics.device('cam2', 'status'), { qos: 1 })).rejects.toThrow();
    await expect(viewer.subscribeAsync(tb.bridge.topics.allDevices('status'), { qos: 1 })).rejects.toThrow();
    await viewer.endAsync();
    await expect(connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'bob-1', username: 'bob', password: token })).rejects.toThrow(/bad user ?name/i);
    const tampered = token.slice(0, -2) + (token.endsWith('A') ? 'BB' : 'AA');
    await expect(connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'alice:2', username: 'alice', password: tampered })).rejects.toThrow(/bad user ?name/i);
  });

  it('a token scoped to cam1 may ask to watch cam1 but not cam2 (TALI_ERR_FORBIDDEN on its down topic; the connection stays)', async () => {
    const tb = await startBridge();
    await tb.bridge.credentials.add('alice', 'viewer');
    const token = (await tali('user', 'token', 'alice', '--devices', 'cam1', '--data-dir', tb.dataDir)).out.trim();
    const viewer = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'alice:1', username: 'alice', password: token });
    const up = tb.bridge.topics.viewer('alice', 'alice:1', 'up');
    const down = new Inbox(viewer);
    await viewer.subscribeAsync(tb.bridge.topics.viewer('alice', 'alice:1', 'down'), { qos: 1 });
    const watch = (deviceId: string, sessionId: string) => JSON.stringify({ v: 1, type: 'watch', sessionId, seq: 1, ts: Date.now(), deviceId, sdp: 'v=0\r\n' });
    await viewer.publishAsync(up, watch('cam2', 'watch-out-of-scope'), { qos: 1 });
    expect(await down.next((m) => m.type === 'error', 5000, 'the refusal')).toMatchObject({ code: 'TALI_ERR_FORBIDDEN', sessionId: 'watch-out-of-scope', ref: { type: 'watch', seq: 1 } });
    expect(viewer.connected).toBe(true);
    expect(tb.logs.filter((l) => l.event === 'rejected')).toEqual([expect.objectContaining({ identity: 'alice', code: 'TALI_ERR_FORBIDDEN' })]);
    expect(tb.bridge.relay.viewers.size).toBe(0);
    await viewer.endAsync();
  });

  it('an expired token is refused, and a live connection on a token is closed when it expires', async () => {
    const tb = await startBridge();
    const user = await tb.bridge.credentials.add('alice', 'viewer').then(() => tb.bridge.credentials.get('alice'));
    const signer = await TokenSigner.open(tb.dataDir);
    const now = Math.floor(Date.now() / 1000);
    const expired = signer.sign({ sub: 'alice', devices: '*', iat: now - 100, exp: now - 1, auth: now - 100, cred: user!.created });
    await expect(connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'alice', username: 'alice', password: expired })).rejects.toThrow(/bad user ?name/i);
    const short = signer.sign({ sub: 'alice', devices: '*', iat: now, exp: now + 2, auth: now, cred: user!.created });
    const viewer = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'alice', username: 'alice', password: short });
    await withTimeout(new Promise<void>((resolve) => viewer.once('close', () => resolve())), 5000, 'the token to expire');
    expect(tb.logs.find((l) => l.event === 'token_expired')).toMatchObject({ identity: 'alice' });
  });

  it('POST /api/token: password → token; Bearer → refreshed token, never wider; a removed user’s tokens die', async () => {
    const tb = await startBridge();
    const password = await tb.bridge.credentials.add('alice', 'viewer');
    expect((await postToken(tb, basic('alice', 'wrong'))).status).toBe(401);
    expect(tb.logs.find((l) => l.event === 'auth_failed' && l.transport === 'http')).toMatchObject({ username: 'alice', address: expect.any(String) });
    const issued = await postToken(tb, basic('alice', password), { devices: ['cam1', 'cam2'], ttlS: 60 });
    expect(issued).toMatchObject({ status: 200, json: { username: 'alice', devices: ['cam1', 'cam2'] } });
    const refreshed = await postToken(tb, `Bearer ${issued.json.token as string}`, { devices: ['cam1'] });
    expect(refreshed).toMatchObject({ status: 200, json: { devices: ['cam1'] } });
    expect((await postToken(tb, `Bearer ${refreshed.json.token as string}`, { devices: '*' })).status).toBe(403);
    expect((await postToken(tb, basic('alice', password), { sub: 'admin' })).status).toBe(403);
    // Refresh = reconnect MQTT with the new token (MQTT 3.1.1 cannot re-authenticate a live connection).
    const viewer = await connectMqtt({ target: tb.bridge.wsUrl, clientId: 'alice:tab', username: 'alice', password: refreshed.json.token as string });
    const gone = closed(viewer, "the removed user's token connection to close");
    await tb.bridge.credentials.remove('alice');
    await gone;
    expect((await postToken(tb, `Bearer ${refreshed.json.token as string}`)).status).toBe(401);
  });
});
