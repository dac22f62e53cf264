/**
 * The dashboard's JSON API on a real bridge with real cameras: stills decoded by Debian's ffmpeg (VP8 and H264),
 * scoped like a watch and rate-limited; the admin routes for devices, users and viewer links; the CSRF rules and the
 * missing `WWW-Authenticate` (issue 11, finding 14); presence for `tali device list`.
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import { readPresence } from '../../src/fleet/presence.ts';
import { createBridge, type TestBridge } from '../helpers/bridge.ts';
import { tali } from '../helpers/cli.ts';
import { until } from '../helpers/wait.ts';

const HAVE_FFMPEG = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;
if (!HAVE_FFMPEG && process.env.CI === 'true') throw new Error('ffmpeg is missing: apt-get install -y ffmpeg');

describe.skipIf(!HAVE_FFMPEG)('dashboard API', () => {
  let tb: TestBridge & { close: () => Promise<void> };
  let base: string;
  let admin: string;
  const cameras: SimulatedCamera[] = [];

  beforeAll(async () => {
    tb = await createBridge({ snapshotRefreshMs: 500 });
    base = `http://127.0.0.1:${tb.bridge.httpPort}`;
    admin = `Basic ${btoa(`ops:${await tb.bridge.credentials.add('ops', 'admin')}`)}`;
    for (const [id, codec] of [['cam-vp8', 'VP8'], ['cam-h264', 'H264']] as const) {
      const camera = new SimulatedCamera({ deviceId: id, secret: await tb.bridge.credentials.add(id, 'device'), connect: nodeConnector(tb.bridge.mqttUrl), codec });
      cameras.push(camera);
      await camera.start();
    }
  }, 30_000);

  afterAll(async () => {
    await Promise.all(cameras.map((c) => c.stop()));
    await tb?.close();
  });

  const api = (path: string, init: RequestInit & { auth?: string } = {}) =>
    fetch(`${base}${path}`, { ...init, headers: { ...(init.auth && { authorization: init.auth }), ...(init.headers as Record<string, string>) } });
  const json = (body: unknown) => ({ method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

  async function token(auth: string, body: Record<string, unknown> = {}): Promise<string> {
    const res = await fetch(`${base}/api/token`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    return `Bearer ${((await res.json()) as { token: string }).token}`;
  }

  it('a still of each camera: a JPEG of the picture, revalidated by ETag, refreshed by keyframe requests', async () => {
    for (const camera of cameras) {
      await until(() => tb.bridge.services.fleet.health().some((h) => h.deviceId === camera.deviceId && h.stillAt !== undefined), 10_000, `a keyframe from ${camera.deviceId}`);
      const res = await api(`/api/snapshots/${camera.deviceId}.jpg`, { auth: admin });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/jpeg');
      const jpeg = Buffer.from(await res.arrayBuffer());
      expect(jpeg.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff])); // JPEG SOI + marker
      const size = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=width,height', '-of', 'csv=p=0', '-'], { input: jpeg }).stdout.toString().trim();
      expect(size).toBe('320,240');
      const etag = res.headers.get('etag')!;
      const again = await api(`/api/snapshots/${camera.deviceId}.jpg`, { auth: admin, headers: { 'if-none-match': etag } });
      expect([200, 304]).toContain(again.status); // 200 only if a new keyframe came in between
      // Asked again after snapshotRefreshMs: the camera was sent a keyframe request, and a newer still follows.
      const before = Date.parse(res.headers.get('last-modified')!);
      await until(() => Date.now() > before + 1500, 2000, 'the still to age');
      await api(`/api/snapshots/${camera.deviceId}.jpg`, { auth: admin });
      await until(() => (tb.bridge.services.fleet.health().find((h) => h.deviceId === camera.deviceId)?.stillAt ?? 0) > before + 1000, 5000, 'a newer keyframe');
    }
    const health = (await (await api('/api/cameras', { auth: admin })).json()) as { stills: boolean; cameras: { deviceId: string; fps: number; bitrate: number; streamingSince: number }[] };
    expect(health.stills).toBe(true);
    for (const c of health.cameras) {
      expect(c.fps).toBeGreaterThan(5);
      expect(c.bitrate).toBeGreaterThan(10_000);
      expect(c.streamingSince).toBeLessThanOrEqual(Date.now());
    }
    expect(health.cameras.map((c) => c.deviceId).sort()).toEqual(['cam-h264', 'cam-vp8']);
    // A registered camera that never streamed: nothing to show yet, which is no error.
    await tb.bridge.credentials.add('cam-idle', 'device');
    expect((await api('/api/snapshots/cam-idle.jpg', { auth: admin })).status).toBe(204);
    expect(await (await api('/api/me', { auth: admin })).json()).toEqual({ id: 'ops', role: 'admin', via: 'password' });
  });

  it('scoped like a watch: a token for one camera gets its still, not the other one; unknown devices are 404', async () => {
    await tb.bridge.credentials.add('alice', 'viewer');
    const scoped = await token(admin, { sub: 'alice', devices: ['cam-vp8'] });
    expect((await api('/api/snapshots/cam-vp8.jpg', { auth: scoped })).status).toBe(200);
    const other = await api('/api/snapshots/cam-h264.jpg', { auth: scoped });
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: string }).error).toBe('TALI_ERR_FORBIDDEN');
    expect((await (await api('/api/cameras', { auth: scoped })).json()) as object).toMatchObject({ cameras: [{ deviceId: 'cam-vp8' }] });
    expect((await api('/api/snapshots/nobody.jpg', { auth: admin })).status).toBe(404);
    expect((await api('/api/snapshots/../x.jpg', { auth: admin })).status).toBe(404);
    // A device's own secret is no login here.
    const device = await api('/api/cameras', { auth: `Basic ${btoa('cam-vp8:nope')}` });
    expect(device.status).toBe(401);
  });

  it('401s never invite a Basic dialog: no WWW-Authenticate on the routes the dashboard calls', async () => {
    for (const path of ['/api/cameras', '/api/snapshots/cam-vp8.jpg', '/api/devices', '/api/users']) {
      for (const auth of [undefined, `Basic ${btoa('ops:wrong')}`, 'Bearer tali1.junk.junk']) {
        const res = await api(path, auth === undefined ? {} : { auth });
        expect(res.status, `${path} ${auth}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toBeNull();
        expect(((await res.json()) as { error: string }).error).toBe('TALI_ERR_UNAUTHORIZED');
      }
    }
    // The sign-in itself, and the recordings API.
    const signIn = await fetch(`${base}/api/token`, { method: 'POST', headers: { authorization: `Basic ${btoa('ops:wrong')}`, 'content-type': 'application/json' }, body: '{}' });
    expect(signIn.status).toBe(401);
    expect(signIn.headers.get('www-authenticate')).toBeNull();
    const recordings = await api('/api/recordings', { auth: `Basic ${btoa('ops:wrong')}` });
    expect(recordings.status).toBe(401);
    expect(recordings.headers.get('www-authenticate')).toBeNull();
  });

  it('snapshot requests are rate-limited per caller: at most the burst (100) plus 40 a second', async () => {
    const bob = `Basic ${btoa(`bob:${await tb.bridge.credentials.add('bob', 'viewer')}`)}`;
    const bearer = await token(bob);
    const n = 300;
    const began = performance.now();
    const statuses = await Promise.all(Array.from({ length: n }, () => api('/api/snapshots/cam-vp8.jpg', { auth: bearer, method: 'HEAD' }).then((r) => r.status)));
    const seconds = (performance.now() - began) / 1000;
    const ok = statuses.filter((s) => s === 200).length;
    expect(ok + statuses.filter((s) => s === 429).length).toBe(n);
    expect(ok).toBeGreaterThanOrEqual(100);
    expect(ok).toBeLessThanOrEqual(100 + Math.ceil(40 * seconds));
    if (seconds < (n - 100) / 40) expect(ok).toBeLessThan(n); // the requests came faster than the refill: some were refused
    expect((await api('/api/snapshots/cam-vp8.jpg', { auth: admin, method: 'HEAD' })).status).toBe(200); // others are not affected
  });

  it('CSRF: a state-changing request needs JSON (or X-Tali-Request) and, from a browser, this origin', async () => {
    const form = await api('/api/devices', { auth: admin, method: 'POST', body: 'id=evil', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(403);
    const plain = await api('/api/devices', { auth: admin, method: 'POST', body: '{"id":"evil"}', headers: { 'content-type': 'text/plain' } });
    expect(plain.status).toBe(403);
    const elsewhere = await api('/api/devices', { auth: admin, ...json({ id: 'evil' }), headers: { 'content-type': 'application/json', origin: 'https://attacker.example' } });
    expect(elsewhere.status).toBe(403);
    const crossSite = await api('/api/devices', { auth: admin, ...json({ id: 'evil' }), headers: { 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' } });
    expect(crossSite.status).toBe(403);
    expect(await tb.bridge.credentials.get('evil')).toBeUndefined();
    const same = await api('/api/devices', { auth: admin, ...json({ id: 'good' }), headers: { 'content-type': 'application/json', origin: base, 'sec-fetch-site': 'same-origin' } });
    expect(same.status).toBe(201);
    const header = await api('/api/devices/good', { auth: admin, method: 'DELETE', headers: { 'x-tali-request': '1' } });
    expect(header.status).toBe(200);
    expect(tb.logs.some((l) => l.event === 'forged_request')).toBe(true);
  });

  it('devices: add (secret once, it works), re-key (the old one stops working), remove; online and last seen', async () => {
    const added = await api('/api/devices', { auth: admin, ...json({ id: 'cam-new' }) });
    expect(added.status).toBe(201);
    const { secret } = (await added.json()) as { secret: string };
    expect((await api('/api/devices', { auth: admin, ...json({ id: 'cam-new' }) })).status).toBe(409);
    const camera = new SimulatedCamera({ deviceId: 'cam-new', secret, connect: nodeConnector(tb.bridge.mqttUrl) });
    onTestFinished(() => camera.stop());
    await camera.start();
    type Listing = { devices: { id: string; online: boolean; lastSeen: string | null }[] };
    const listed = (await (await api('/api/devices', { auth: admin })).json()) as Listing;
    expect(listed.devices.find((d) => d.id === 'cam-new')).toMatchObject({ online: true });
    expect(listed.devices.find((d) => d.id === 'good')).toBeUndefined();
    await camera.stop();
    await until(() => tb.bridge.presence?.get('cam-new')?.online === false, 5000, 'cam-new offline');
    const after = (await (await api('/api/devices', { auth: admin })).json()) as Listing;
    expect(after.devices.find((d) => d.id === 'cam-new')).toMatchObject({ online: false, lastSeen: expect.any(String) });
    // The presence file says the same to another process (tali device list).
    await tb.bridge.presence?.flush();
    const presence = await readPresence(tb.dataDir);
    expect(presence.running).toBe(true);
    expect(presence.devices.get('cam-vp8')?.online).toBe(true);
    expect(presence.devices.get('cam-new')).toMatchObject({ online: false, lastSeen: expect.any(Number) });
    const list = await tali('device', 'list', '--data-dir', tb.dataDir);
    expect(list.out).toMatch(/^DEVICE\s+ONLINE\s+LAST SEEN\s+CREATED$/m);
    expect(list.out).toMatch(/^cam-vp8\s+yes\s+now\s/m);
    expect(list.out).toMatch(/^cam-new\s+no\s+\d{4}-\d\d-\d\dT/m);
    const rows = JSON.parse((await tali('device', 'list', '--json', '--data-dir', tb.dataDir)).out) as { id: string; online: boolean | null; lastSeen: string | null }[];
    expect(rows.find((r) => r.id === 'cam-vp8')).toMatchObject({ online: true, lastSeen: expect.any(String) });

    const rekeyed = await api('/api/devices/cam-new/secret', { auth: admin, method: 'POST', headers: { 'x-tali-request': '1' } });
    const fresh = ((await rekeyed.json()) as { secret: string }).secret;
    expect(fresh).not.toBe(secret);
    expect(await tb.bridge.credentials.verify('cam-new', Buffer.from(secret))).toBeUndefined();
    expect(await tb.bridge.credentials.verify('cam-new', Buffer.from(fresh))).toBeDefined();
    expect((await api('/api/devices/cam-new', { auth: admin, method: 'DELETE', headers: { 'x-tali-request': '1' } })).status).toBe(200);
    expect((await api('/api/devices/cam-new', { auth: admin, method: 'DELETE', headers: { 'x-tali-request': '1' } })).status).toBe(404);
  });

  it('users: roles, a viewer is no admin, an admin token for every device is, a scoped one is not; no self-removal', async () => {
    const carol = (await (await api('/api/users', { auth: admin, ...json({ id: 'carol', role: 'viewer' }) })).json()) as { secret: string; role: string };
    expect(carol.role).toBe('viewer');
    expect((await api('/api/users', { auth: admin, ...json({ id: 'dave', role: 'device' }) })).status).toBe(400);
    const carolAuth = `Basic ${btoa(`carol:${carol.secret}`)}`;
    expect((await api('/api/users', { auth: carolAuth })).status).toBe(403);
    expect((await api('/api/users', { auth: await token(carolAuth) })).status).toBe(403);
    const adminToken = await token(admin);
    const users = (await (await api('/api/users', { auth: adminToken })).json()) as { users: { id: string; role: string }[] };
    expect(users.users).toContainEqual(expect.objectContaining({ id: 'carol', role: 'viewer' }));
    expect((await api('/api/users', { auth: await token(admin, { devices: ['cam-vp8'] }) })).status).toBe(403);
    expect((await api('/api/users/ops', { auth: adminToken, method: 'DELETE', headers: { 'x-tali-request': '1' } })).status).toBe(403);
    expect((await api('/api/users/carol', { auth: adminToken, method: 'DELETE', headers: { 'x-tali-request': '1' } })).status).toBe(200);
    expect((await api('/api/users', { auth: carolAuth })).status).toBe(401);
  });

  it('a viewer link: one camera, expires, and refreshing it never goes past its expiry', async () => {
    const res = await api('/api/links', { auth: admin, ...json({ deviceId: 'cam-vp8', ttlS: 120 }) });
    expect(res.status).toBe(201);
    const link = (await res.json()) as { url: string; token: string; expiresAt: string };
    expect(link.url).toBe(`${base}/#/camera/cam-vp8?token=${link.token}`);
    const bearer = `Bearer ${link.token}`;
    expect((await api('/api/snapshots/cam-vp8.jpg', { auth: bearer })).status).toBe(200);
    expect((await api('/api/snapshots/cam-h264.jpg', { auth: bearer })).status).toBe(403);
    const refreshed = await fetch(`${base}/api/token`, { method: 'POST', headers: { authorization: bearer, 'content-type': 'application/json' }, body: JSON.stringify({ ttlS: 86_400 }) });
    expect(refreshed.status).toBe(200);
    expect(Date.parse(((await refreshed.json()) as { expiresAt: string }).expiresAt)).toBeLessThanOrEqual(Date.parse(link.expiresAt));
    expect((await api('/api/links', { auth: admin, ...json({ deviceId: 'nobody', ttlS: 120 }) })).status).toBe(404);
    expect((await api('/api/links', { auth: admin, ...json({ deviceId: 'cam-vp8', ttlS: 10 }) })).status).toBe(400);
    const file = JSON.parse(await readFile(join(tb.dataDir, 'identities.json'), 'utf8')) as object;
    expect(JSON.stringify(file)).not.toContain(link.token);
  });
});
