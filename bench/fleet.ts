/**
 * 7. Fleet reconnect: N credentialed devices reconnecting at once to a bridge that just restarted (fresh process, no
 * login cache), as after an upgrade or a crash. Each device does what the device SDK does: CONNECT with its ID and
 * secret (and its offline card as will), SUBSCRIBE to its down topic and the bridge cards, publish its online card
 * (retained, QoS 1); a refused or dropped attempt is retried after the SDK's default backoff (1 s doubling, half of it
 * jitter). Devices come from 200 loopback addresses, as a fleet comes from many.
 *
 * Two stores in the same run: device secrets as tali now writes them (HMAC-SHA256), and the same fleet as tali wrote
 * it before (scrypt entries, the baseline; such entries are re-hashed after their first login, so this is the first
 * restart after an upgrade). The bridge runs with its default limits, alone in a child process.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backoffDelay, DEFAULT_BACKOFF } from '../src/client/backoff.ts';
import { CredentialStore, scrypt } from '../src/security/credentials.ts';
import { Child } from './lib/child.ts';
import { MiniMqtt } from './lib/mini-mqtt.ts';
import type { BenchTable } from './lib/report.ts';
import { fmt, fmtRatio, ratio, summarize } from './lib/stats.ts';
import type { TargetCommand, TargetEvent } from './lib/target.ts';
import { sleep } from './lib/util.ts';

type Store = 'hmac' | 'scrypt';
const LABELS: Record<Store, string> = { hmac: 'HMAC-SHA256 device secrets (now)', scrypt: 'scrypt device secrets (before)' };

interface Outcome {
  store: Store;
  allOnlineS: number;
  perDeviceMs: number[];
  attempts: number[];
  online: number;
}

/** A data directory with `devices` registered; `store` says how their secrets are hashed. */
async function fleetDir(devices: number, store: Store): Promise<{ dir: string; secrets: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), `tali-bench-fleet-${store}-`));
  const credentials = new CredentialStore(dir);
  const secrets: string[] = [];
  for (let i = 0; i < devices; i += 100) {
    secrets.push(...(await Promise.all(Array.from({ length: Math.min(100, devices - i) }, (_, j) => credentials.add(`fleet-${i + j}`, 'device')))));
  }
  if (store === 'scrypt') {
    // As an older tali wrote them: the same secrets, scrypt-hashed, no store key.
    const file = JSON.parse(await readFile(credentials.file, 'utf8')) as { identities: Record<string, unknown>[] };
    const identities = await Promise.all(
      file.identities.map(async (entry) => {
        const salt = Buffer.from(String(entry.salt), 'base64');
        const secret = String(entry.id).startsWith('fleet-') ? secrets[Number(String(entry.id).slice(6))]! : '';
        return { id: entry.id, role: entry.role, salt: entry.salt, hash: (await scrypt(secret, salt)).toString('base64'), created: entry.created };
      }),
    );
    await writeFile(credentials.file, JSON.stringify({ version: 1, identities }));
  }
  return { dir, secrets };
}

async function bringOnline(port: number, i: number, secret: string, t0: number): Promise<{ ms: number; attempts: number; client: MiniMqtt }> {
  const id = `fleet-${i}`;
  const card = (state: string) => JSON.stringify({ v: 1, type: 'status', ts: Date.now(), state, model: 'bench', firmware: '0', sdk: 'bench' });
  for (let attempt = 0; ; attempt++) {
    try {
      const client = await MiniMqtt.connect({
        port,
        localAddress: `127.0.${1 + Math.floor((i % 200) / 100)}.${2 + (i % 100)}`,
        clientId: id,
        username: id,
        password: secret,
        keepaliveS: 60,
        timeoutMs: 20_000,
        will: { topic: `tali/v1/device/${id}/status`, payload: card('offline'), qos: 1, retain: true },
      });
      await client.subscribe([`tali/v1/device/${id}/down`, 'tali/v1/bridge/+/status'], 1);
      await client.publishAcked(`tali/v1/device/${id}/status`, card('online'), 1, true);
      return { ms: performance.now() - t0, attempts: attempt + 1, client };
    } catch (err) {
      if (attempt >= 20) throw new Error(`${id}: not online after 21 attempts (${(err as Error).message})`);
      await sleep(backoffDelay(attempt, DEFAULT_BACKOFF));
    }
  }
}

async function measure(store: Store, devices: number): Promise<Outcome> {
  const { dir, secrets } = await fleetDir(devices, store);
  const child = new Child<TargetCommand, TargetEvent>(new URL('./lib/target.ts', import.meta.url), { env: { ...process.env, BENCH_TARGET: 'fleet', BENCH_DATA_DIR: dir } });
  const clients: MiniMqtt[] = [];
  try {
    const { port } = await child.next('ready', 60_000);
    const t0 = performance.now();
    const results = await Promise.all(secrets.map((secret, i) => bringOnline(port, i, secret, t0)));
    const allOnlineS = (performance.now() - t0) / 1000;
    for (const r of results) clients.push(r.client);
    return { store, allOnlineS, perDeviceMs: results.map((r) => r.ms), attempts: results.map((r) => r.attempts), online: results.length };
  } finally {
    for (const c of clients) c.socket.destroy();
    child.send({ cmd: 'stop' });
    await child.next('stopped', 30_000).catch(() => {});
    await child.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function runFleet(options: { devices: number }): Promise<BenchTable> {
  const outcomes: Outcome[] = [];
  for (const store of ['hmac', 'scrypt'] as const) outcomes.push(await measure(store, options.devices));
  const [now, before] = outcomes as [Outcome, Outcome];
  const rows = outcomes.map((o) => {
    const ms = summarize(o.perDeviceMs);
    const attempts = summarize(o.attempts);
    return [LABELS[o.store], `${o.online}/${options.devices}`, fmt(o.allOnlineS, 2), `${fmt(ms.p50 / 1000, 2)} / ${fmt(ms.p95 / 1000, 2)}`, `${fmt(attempts.p50, 0)} / ${fmt(attempts.p99, 0)}`, o === before ? '1.00×' : fmtRatio(ratio(o.allOnlineS, before.allOnlineS))];
  });
  return {
    id: 'fleet',
    title: 'Fleet reconnect after a restart',
    columns: ['store', 'online', 'all online (s)', 'per device p50 / p95 (s)', 'attempts p50 / p99', 'vs before'],
    rows,
    notes: [
      `${options.devices} devices with their own secrets connect at once to a freshly started bridge (default limits), each as the device SDK does (CONNECT with will, SUBSCRIBE, online card QoS 1), retrying with the SDK's default backoff; from 200 loopback addresses.`,
      'Baseline: the same fleet with scrypt entries, as tali stored device secrets before (measured in the same run).',
    ],
    bottleneck: `With HMAC secrets a login costs microseconds: the ${fmt(now.allOnlineS, 2)} s are the broker admitting ${options.devices} connections (maxPendingConnections, CONNECT → CONNACK, subscriptions, retained cards) and the retries of those refused while it was full. With scrypt each login held one of the 4 scrypt slots for ~50 ms, so logins queued behind the hashing.`,
    data: outcomes.map((o) => ({ store: o.store, allOnlineS: o.allOnlineS, perDevice: summarize(o.perDeviceMs), attempts: summarize(o.attempts) })),
    charts: [{ title: 'Fleet reconnect: time to online per device', unit: 'ms', series: outcomes.map((o) => ({ label: LABELS[o.store], samples: o.perDeviceMs })) }],
  };
}
