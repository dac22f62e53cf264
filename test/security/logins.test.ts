/**
 * Credential checks under attack and across identity changes (issue 11: finding 3, finding 6, the token item of
 * finding 16, and device secrets on HMAC): concurrent guesses from one address cannot pass the throttle together and
 * run scrypt hundreds of times, while a login from another address is checked at once; a token with junk after its
 * signature is refused; re-keying a user closes the connections on its tokens; device secrets are checked without
 * scrypt, and entries from before are re-hashed after a login without disturbing the device.
 *
 * Attackers connect from 127.0.0.1, good clients from 127.0.0.2.
 */
import { request } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { scrypt } from '../../src/security/credentials.ts';
import { TokenSigner } from '../../src/security/tokens.ts';
import { startBridge, TRANSPORTS, type TestBridge } from '../helpers/bridge.ts';
import { connectPacket, RawConnection, TYPE } from '../helpers/raw-mqtt.ts';
import { until, withTimeout } from '../helpers/wait.ts';

const GOOD_ADDRESS = '127.0.0.2';
const basic = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;

/** POST /api/token from `localAddress`; the status, or 0 when the socket was refused. */
function postToken(tb: TestBridge, authorization: string, localAddress = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: tb.bridge.httpPort, path: '/api/token', method: 'POST', headers: { authorization, connection: 'close' }, localAddress, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** A raw connection from `localAddress` (the socket or WebSocket is open; nothing is sent yet). */
async function rawFrom(url: string, localAddress = '127.0.0.1'): Promise<RawConnection> {
  const conn = await RawConnection.open(url, { localAddress });
  onTestFinished(() => conn.destroy());
  return conn;
}

/** Sends CONNECT; the CONNACK return code, or -1 when the connection closes without one. */
async function connack(conn: RawConnection, fields: { clientId: string; username: string; password: string }): Promise<number> {
  conn.write(connectPacket(fields));
  try {
    const reply = await conn.next(TYPE.CONNACK, 20_000);
    return reply.body[1] as number;
  } catch {
    return -1;
  } finally {
    conn.destroy();
  }
}

/** The documented limit: 10 failed logins at once from one address, one more every 6 s since `began`. */
function failuresAllowed(began: number): number {
  return 10 + Math.floor((performance.now() - began) / 6000);
}

function closed(client: { once(e: 'close', f: () => void): unknown }, what: string): Promise<void> {
  return withTimeout(new Promise<void>((resolve) => client.once('close', () => resolve())), 5000, what);
}

describe('login throttle (finding 3)', () => {
  it('400 concurrent wrong passwords on /api/token from one address: at most 10 are checked; another address gets its token', async () => {
    // Enough sockets and pending requests for the whole burst to reach the route, as in the report.
    const tb = await startBridge({ maxHttpSocketsPerAddress: 1000 });
    const password = await tb.bridge.credentials.add('alice', 'viewer');
    const began = performance.now();
    const attack = Promise.all(Array.from({ length: 400 }, (_, i) => postToken(tb, basic('alice', `guess-${i}`))));
    const legit = await postToken(tb, basic('alice', password), GOOD_ADDRESS);
    const statuses = await attack;
    const allowed = failuresAllowed(began);
    expect(legit).toBe(200);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(allowed);
    expect(statuses.filter((s) => s === 429 || s === 503).length).toBeGreaterThanOrEqual(400 - allowed);
    // Every scrypt run: the attacker's (one per failure allowed), the good one 1.
    expect(tb.bridge.credentials.logins.slowChecks).toBeLessThanOrEqual(allowed + 1);
  });

  it.each(TRANSPORTS)('400 concurrent wrong passwords over MQTT/%s from one address: at most 10 CONNACK 4; another address logs in', async (transport) => {
    const tb = await startBridge({ maxPendingConnections: 1000, maxPendingConnectionsPerAddress: 1000, maxConnectionsPerAddress: 1000, maxHttpSocketsPerAddress: 1000 });
    const password = await tb.bridge.credentials.add('alice', 'viewer');
    const url = tb.urlFor(transport);
    // The 400 connections open first, so that what is measured is their CONNECTs arriving together.
    const attackers = await Promise.all(Array.from({ length: 400 }, () => rawFrom(url)));
    const began = performance.now();
    const attack = Promise.all(attackers.map((conn, i) => connack(conn, { clientId: `alice:g${i}`, username: 'alice', password: `guess-${i}` })));
    const legit = await connack(await rawFrom(url, GOOD_ADDRESS), { clientId: 'alice', username: 'alice', password });
    const codes = await attack;
    const allowed = failuresAllowed(began);
    expect(legit).toBe(0);
    expect(codes.filter((c) => c === 4).length).toBeLessThanOrEqual(allowed);
    expect(codes.filter((c) => c === 5 || c === 3).length).toBeGreaterThanOrEqual(400 - allowed);
    expect(tb.bridge.credentials.logins.slowChecks).toBeLessThanOrEqual(allowed + 1);
  });
});

describe.each(TRANSPORTS)('tokens over %s', (transport) => {
  it('a token with junk after its signature is refused (finding 16), over MQTT and as a Bearer', async () => {
    const tb = await startBridge();
    const user = await tb.bridge.credentials.add('alice', 'viewer').then(() => tb.bridge.credentials.get('alice'));
    const signer = await TokenSigner.open(tb.dataDir);
    const now = Math.floor(Date.now() / 1000);
    const token = signer.sign({ sub: 'alice', devices: '*', iat: now, exp: now + 600, auth: now, cred: user!.created });
    const viewer = await connectMqtt({ target: tb.urlFor(transport), clientId: 'alice', username: 'alice', password: token });
    await viewer.endAsync();
    for (const junk of ['!', '=', '==', '%', ' x', '\u00e9']) {
      await expect(connectMqtt({ target: tb.urlFor(transport), clientId: 'alice', username: 'alice', password: `${token}${junk}` }), JSON.stringify(junk)).rejects.toThrow(/bad user ?name/i);
    }
    expect(await postToken(tb, `Bearer ${token}!`, GOOD_ADDRESS)).toBe(401);
    expect(await postToken(tb, `Bearer ${token}`, GOOD_ADDRESS)).toBe(200);
  });

  it('re-keying a user (tali user add --replace) closes the connections on its tokens (finding 6)', async () => {
    const tb = await startBridge();
    const user = await tb.bridge.credentials.add('alice', 'viewer').then(() => tb.bridge.credentials.get('alice'));
    const signer = await TokenSigner.open(tb.dataDir);
    const now = Math.floor(Date.now() / 1000);
    const token = signer.sign({ sub: 'alice', devices: ['cam1'], iat: now, exp: now + 600, auth: now, cred: user!.created });
    const viewer = await connectMqtt({ target: tb.urlFor(transport), clientId: 'alice', username: 'alice', password: token });
    const gone = closed(viewer, "the re-keyed user's token connection to close");
    await tb.bridge.credentials.add('alice', 'viewer', { replace: true });
    await gone;
    expect(tb.logs.find((l) => l.event === 'disconnected')).toMatchObject({ identity: 'alice', clientId: 'alice' });
    await expect(connectMqtt({ target: tb.urlFor(transport), clientId: 'alice', username: 'alice', password: token })).rejects.toThrow(/bad user ?name/i);
  });
});

describe('device secrets on HMAC', () => {
  it('a device logs in without a scrypt run; an entry from before is re-hashed after its login, and stays connected', async () => {
    const tb = await startBridge();
    const store = tb.bridge.credentials;
    const secret = await store.add('cam1', 'device');
    expect(await store.get('cam1')).toMatchObject({ kdf: 'hmac-sha256' });
    const cam1 = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'cam1', username: 'cam1', password: secret });
    onTestFinished(() => cam1.endAsync(true));
    expect(store.logins.slowChecks).toBe(0);

    // cam0 as an older tali stored it: scrypt.
    const legacy = 'legacy-secret-of-cam0-24-bytes';
    const salt = Buffer.alloc(16, 7);
    const file = JSON.parse(await readFile(store.file, 'utf8')) as { identities: Record<string, unknown>[] };
    const created = '2025-01-01T00:00:00.000Z';
    file.identities.push({ id: 'cam0', role: 'device', salt: salt.toString('base64'), hash: (await scrypt(legacy, salt)).toString('base64'), created });
    await writeFile(store.file, JSON.stringify(file));
    const cam0 = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'cam0', username: 'cam0', password: legacy });
    onTestFinished(() => cam0.endAsync(true));
    expect(store.logins.slowChecks).toBe(1);
    await until(() => JSON.parse(JSON.stringify(store.lookup('cam0') ?? {})).kdf === 'hmac-sha256', 5000, 'cam0 to be re-hashed');
    await store.refresh();
    expect(store.lookup('cam0')).toMatchObject({ kdf: 'hmac-sha256', created });
    await tb.bridge.embedded!.revocation.check();
    expect(cam0.connected).toBe(true);
    const again = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'cam0', username: 'cam0', password: legacy });
    onTestFinished(() => again.endAsync(true));
    expect(store.logins.slowChecks).toBe(1);
    await expect(connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'cam0', username: 'cam0', password: `${legacy}x` })).rejects.toThrow(/bad user ?name/i);
    expect(await readFile(store.file, 'utf8')).not.toContain(legacy);
  });
});
