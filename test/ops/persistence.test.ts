/**
 * State that survives a restart (issue 17, item 1), with real processes: `tali start` with two cameras (one still
 * connected, one gone: its will published) and a viewer's stored session (CleanSession 0) holding QoS 1 messages
 * queued while it was away, is stopped with SIGKILL or SIGTERM and started again on the same data directory. A fresh
 * subscriber then gets both cards, offline with their last-seen time; the stored session resumes (Session Present 1)
 * with its queue; the camera that comes back re-confirms its card online. A state file that is damaged or held by
 * another process stops the start with TALI_ERR_STATE_DB and is left as it was.
 */
import type { MqttClient } from 'mqtt';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connected, connectMqtt, createMqttClient } from '../../src/mqtt/connect.ts';
import { CredentialStore } from '../../src/security/credentials.ts';
import { startTali, type TaliProcess } from '../helpers/tali-process.ts';
import { Inbox, withTimeout } from '../helpers/wait.ts';

const BRIDGE = 'persist-node';
const status = (id: string) => `tali/v1/device/${id}/status`;
const card = (state: 'online' | 'offline', extra: Record<string, unknown> = {}) => JSON.stringify({ v: 1, type: 'status', ts: Date.now(), state, model: 'test cam', ...extra });

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-persist-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function start(dataDir: string, extra: string[] = []): TaliProcess {
  return startTali(['--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dataDir, '--bridge-id', BRIDGE, '--log-level', 'info', ...extra]);
}

async function client(url: string, clientId: string, password: string, options: { clean?: boolean; will?: string } = {}): Promise<MqttClient> {
  const c = await connectMqtt({
    target: url,
    clientId,
    username: clientId.split(':')[0],
    password,
    clean: options.clean ?? true,
    ...(options.will !== undefined && { will: { topic: status(clientId), payload: Buffer.from(options.will), qos: 1, retain: true } }),
  });
  c.on('error', () => {}); // its node is killed: ECONNRESET is what the test does, not a failure
  onTestFinished(() => void c.end(true));
  return c;
}

/** Connects and resolves with the CONNACK's Session Present flag and an inbox opened before it. */
async function resume(url: string, clientId: string, password: string): Promise<{ c: MqttClient; inbox: Inbox; sessionPresent: boolean }> {
  const c = createMqttClient({ target: url, clientId, username: clientId.split(':')[0], password, clean: false });
  onTestFinished(() => void c.end(true));
  const inbox = new Inbox(c);
  const connack = new Promise<boolean>((resolve) => c.once('connect', (packet) => resolve(packet.sessionPresent)));
  await connected(c);
  return { c, inbox, sessionPresent: await connack };
}

describe('retained cards and stored sessions across a restart', () => {
  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    it(`survive ${signal}: cards back (offline, last seen), queued QoS 1 messages delivered, the returning camera online`, { timeout: 60_000 }, async () => {
      const dataDir = await tempDir();
      const store = new CredentialStore(dataDir);
      const startedAt = Date.now();
      const first = start(dataDir);
      const { mqttPort } = await first.ready();
      const url = `mqtt://127.0.0.1:${mqttPort}`;
      const [onSecret, awaySecret, aliceSecret] = [await store.add('cam-on', 'device'), await store.add('cam-away', 'device'), await store.add('alice', 'viewer')];

      const watcher = await client(url, 'alice:watch', aliceSecret);
      const seen = new Inbox(watcher);
      await watcher.subscribeAsync(status('+'), { qos: 1 });
      // alice's stored session: subscribed to cam-on's card, then away while three cards are published.
      const queued = await client(url, 'alice:queue', aliceSecret, { clean: false });
      await queued.subscribeAsync(status('cam-on'), { qos: 1 });
      await queued.endAsync();

      const camOn = await client(url, 'cam-on', onSecret, { will: card('offline', { firmware: 'will-on' }) });
      await camOn.publishAsync(status('cam-on'), card('online'), { qos: 1, retain: true });
      const away = await client(url, 'cam-away', awaySecret, { will: card('offline', { firmware: 'will' }) });
      await away.publishAsync(status('cam-away'), card('online'), { qos: 1, retain: true });
      const connectedAt = Date.now();
      (away as unknown as { stream: { destroy(): void } }).stream.destroy(); // gone without DISCONNECT: its will
      await seen.next((m, topic) => topic === status('cam-away') && m.firmware === 'will', 10_000, "cam-away's will");
      const awayGoneAt = Date.now();
      for (const n of [1, 2, 3]) await camOn.publishAsync(status('cam-on'), card('online', { firmware: `q${n}` }), { qos: 1, retain: true });
      await seen.next((m) => m.firmware === 'q3', 10_000, 'the last card');

      const stoppedAt = Date.now();
      first.child.kill(signal);
      expect(await withTimeout(first.exited, 10_000, 'tali to exit')).toMatchObject(signal === 'SIGKILL' ? { signal } : { code: 0 });
      camOn.end(true);

      const second = start(dataDir);
      await second.ready();
      // Queued for alice: cam-on's online card and q1..q3 (and with SIGTERM, maybe cam-on's will: the node closed its connection).
      const restored = second.logs.find((l) => l.event === 'state_restored');
      expect(restored).toMatchObject({ retained: 3, sessions: 1 });
      expect([4, signal === 'SIGKILL' ? 4 : 5]).toContain(restored!.queued);

      // A fresh subscriber: both cards, offline, with when each camera was last seen.
      const fresh = await client(url.replace(String(mqttPort), String((await second.ready()).mqttPort)), 'alice:fresh', aliceSecret);
      const cards = new Inbox(fresh);
      await fresh.subscribeAsync(status('+'), { qos: 1 });
      const on = await cards.next((_, topic) => topic === status('cam-on'), 10_000, "cam-on's card");
      const gone = await cards.next((_, topic) => topic === status('cam-away'), 10_000, "cam-away's card");
      // SIGKILL: its last online card; SIGTERM: that, or its will if the closing node published it.
      expect(on).toMatchObject({ type: 'status', state: 'offline', firmware: signal === 'SIGKILL' ? 'q3' : expect.stringMatching(/^(q3|will-on)$/), lastSeen: expect.any(Number) });
      // Connected until the node stopped: last seen then, or (SIGKILL) at the node's last heartbeat (every 5 s; 1 s
      // of slack for a late timer on a loaded machine), which is not before the node started.
      expect(on.lastSeen as number).toBeGreaterThanOrEqual(signal === 'SIGKILL' ? Math.max(startedAt, stoppedAt - 5000) - 1000 : stoppedAt);
      expect(on.lastSeen as number).toBeLessThanOrEqual(Date.now());
      expect(gone).toMatchObject({ type: 'status', state: 'offline', firmware: 'will' });
      expect(gone.lastSeen as number).toBeGreaterThanOrEqual(connectedAt);
      expect(gone.lastSeen as number).toBeLessThanOrEqual(awayGoneAt);

      // Kept cards are delivered under today's rights: a token scoped to cam-on reads cam-on's, never cam-away's.
      const login = await fetch(`http://127.0.0.1:${(await second.ready()).httpPort}/api/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`alice:${aliceSecret}`).toString('base64')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ devices: ['cam-on'], ttlS: 300 }),
      });
      expect(login.status).toBe(200);
      const { token } = (await login.json()) as { token: string };
      const scoped = await client(url.replace(String(mqttPort), String((await second.ready()).mqttPort)), 'alice:scoped', token);
      const scopedCards = new Inbox(scoped);
      await expect(scoped.subscribeAsync(status('cam-away'), { qos: 1 })).rejects.toThrow(/Subscribe error/); // SUBACK 0x80
      await scoped.subscribeAsync(status('cam-on'), { qos: 1 });
      await scopedCards.next((_, topic) => topic === status('cam-on'), 10_000, "cam-on's card for the scoped token");
      expect(scopedCards.messages.map((m) => m.topic)).not.toContain(status('cam-away'));

      // The stored session: present, its three queued messages in order.
      const newUrl = `mqtt://127.0.0.1:${(await second.ready()).mqttPort}`;
      const back = await resume(newUrl, 'alice:queue', aliceSecret);
      expect(back.sessionPresent).toBe(true);
      await back.inbox.next((m) => m.state === 'online' && m.firmware === undefined, 10_000, "queued: cam-on's first card");
      for (const n of [1, 2, 3]) await back.inbox.next((m) => m.firmware === `q${n}`, 10_000, `queued card q${n}`);

      // cam-on comes back: its own card, online again.
      const returned = await client(newUrl, 'cam-on', onSecret, { will: card('offline', { firmware: 'will-on' }) });
      await returned.publishAsync(status('cam-on'), card('online', { firmware: 'back' }), { qos: 1, retain: true });
      await cards.next((m, topic) => topic === status('cam-on') && m.state === 'online' && m.firmware === 'back', 10_000, 'cam-on online again');
      const later = await client(newUrl, 'alice:later', aliceSecret);
      const laterCards = new Inbox(later);
      await later.subscribeAsync(status('cam-on'), { qos: 1 });
      expect(await laterCards.next(() => true, 10_000, "cam-on's card")).toMatchObject({ state: 'online', firmware: 'back' });
    });
  }

  it("clears a removed device's card (removed while down, or while running), and keeps nothing with --no-persistence", { timeout: 60_000 }, async () => {
    const dataDir = await tempDir();
    const store = new CredentialStore(dataDir);
    const first = start(dataDir);
    const url = `mqtt://127.0.0.1:${(await first.ready()).mqttPort}`;
    const [camSecret, oldSecret, aliceSecret] = [await store.add('cam', 'device'), await store.add('old-cam', 'device'), await store.add('alice', 'viewer')];
    for (const [id, secret] of [['cam', camSecret], ['old-cam', oldSecret]] as const) {
      const c = await client(url, id, secret);
      await c.publishAsync(status(id), card('online'), { qos: 1, retain: true });
      await c.endAsync();
    }
    first.child.kill('SIGKILL');
    await first.exited;
    await store.remove('old-cam');

    const second = start(dataDir);
    const url2 = `mqtt://127.0.0.1:${(await second.ready()).mqttPort}`;
    expect(second.logs.find((l) => l.event === 'cards_restored')).toMatchObject({ cleared: 1 });
    const fresh = await client(url2, 'alice:fresh', aliceSecret);
    const cards = new Inbox(fresh);
    await fresh.subscribeAsync([status('cam'), status('old-cam')], { qos: 1 });
    expect(await cards.next(() => true, 10_000, "cam's card")).toMatchObject({ state: 'offline' });
    // The subscription is acknowledged before the retained messages go out: cam's card came, old-cam's never will.
    const probe = await client(url2, 'alice:probe', aliceSecret);
    const probed = new Inbox(probe);
    await probe.subscribeAsync([status('old-cam'), status('cam')], { qos: 1 });
    await probed.next((_, topic) => topic === status('cam'), 10_000, "cam's card");
    expect([...cards.messages, ...probed.messages].map((m) => m.topic)).not.toContain(status('old-cam'));
    // Removed while the node runs: its kept card is cleared at once (subscribers get the empty retained message).
    const cleared = new Promise<void>((resolve) => fresh.on('message', (topic, payload) => topic === status('cam') && payload.length === 0 && resolve()));
    await store.remove('cam');
    await withTimeout(cleared, 15_000, "cam's card cleared");
    const after = await client(url2, 'alice:after', aliceSecret);
    const afterCards = new Inbox(after);
    await after.subscribeAsync([status('cam'), 'tali/v1/bridge/+/status'], { qos: 1 });
    await afterCards.next((m) => m.type === 'bridge-status', 10_000, 'the bridge card');
    expect(afterCards.messages.map((m) => m.topic)).not.toContain(status('cam'));
    second.child.kill('SIGTERM');
    await second.exited;

    const third = start(dataDir, ['--no-persistence']);
    const url3 = `mqtt://127.0.0.1:${(await third.ready()).mqttPort}`;
    expect(third.logs.find((l) => l.event === 'state_restored')).toBeUndefined();
    const none = await client(url3, 'alice:none', aliceSecret);
    const noCards = new Inbox(none);
    await none.subscribeAsync(status('+'), { qos: 1 });
    // The bridge's own card is retained (it comes through the same subscription order); no device card with it.
    const bridges = await client(url3, 'alice:bridge', aliceSecret);
    const bridgeCards = new Inbox(bridges);
    await bridges.subscribeAsync('tali/v1/bridge/+/status', { qos: 1 });
    await bridgeCards.next((m) => m.state === 'online', 10_000, 'the bridge card');
    expect(noCards.messages).toEqual([]);
  });

  it('a damaged state file stops the start with TALI_ERR_STATE_DB and is left as it was', { timeout: 30_000 }, async () => {
    const dataDir = await tempDir();
    const file = join(dataDir, `state-${BRIDGE}.db`);
    const junk = Buffer.concat([Buffer.from('not SQLite at all\n'), Buffer.alloc(8192, 0x5a)]);
    await writeFile(file, junk);
    const tali = start(dataDir);
    const exit = await withTimeout(tali.exited, 20_000, 'tali to exit');
    expect(exit.code).toBe(1);
    expect(tali.stderr()).toMatch(/^tali start: TALI_ERR_STATE_DB: state file .*state-persist-node\.db is not a readable database .*Hint: move the file away/m);
    expect(await readFile(file)).toEqual(junk);
  });

  it('a state file held by another tali stops the second with TALI_ERR_STATE_DB; the first keeps serving', { timeout: 30_000 }, async () => {
    const dataDir = await tempDir();
    const first = start(dataDir);
    const { mqttPort } = await first.ready();
    const second = start(dataDir);
    const exit = await withTimeout(second.exited, 20_000, 'the second tali to exit');
    expect(exit.code).toBe(1);
    expect(second.stderr()).toMatch(/TALI_ERR_STATE_DB: state file .* is in use by another process/);
    const secret = await new CredentialStore(dataDir).add('cam', 'device');
    const cam = await client(`mqtt://127.0.0.1:${mqttPort}`, 'cam', secret);
    await cam.publishAsync(status('cam'), card('online'), { qos: 1, retain: true });
  });
});
