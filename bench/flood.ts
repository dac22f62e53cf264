/**
 * A hostile-input flood against plain Aedes or tali, to see where memory goes and whether it is bounded. A FUME run
 * is not possible here (no public network), so this sends what such a fuzzer sends, one kind per attack:
 *
 *   garbage        random bytes, then close, over and over
 *   half-open      connect and say nothing, hold the socket
 *   partial        half a CONNECT, hold
 *   big-claim      a CONNECT header claiming 200 MB, then stream bytes as fast as the socket takes them
 *   fuzz           valid CONNECT (anonymous, random client IDs, clean 0 half the time), then random PUBLISH
 *                  (random topics, retained, QoS 0–2, up to 64 KB), SUBSCRIBE (incl. '#'), mutated packets;
 *                  never reads replies
 *   device         (tali) an authenticated device publishing junk to its own topic as fast as it can, never reading
 *
 *   node_modules/.bin/node bench/flood.ts aedes|tali ATTACKS SECONDS [CONCURRENCY] [tcp,ws] [BURSTS]
 *
 * Prints peak and settled (after GC) RSS/heap of the target, and how a well-behaved client fared meanwhile. With
 * BURSTS > 1 the attack runs that many times, SECONDS each, and the target settles after each one (`bursts`: peak,
 * settled and well-behaved client of each): what one burst leaves is the allocator's high-water mark, which the next
 * burst reuses; a leak grows again with each one.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import { connectPacket, publishPacket, subscribePacket, varint } from '../test/helpers/raw-mqtt.ts';

const [kind = 'aedes', attackList = 'garbage', secondsArg = '10', concurrencyArg = '50', transportList = 'tcp,ws', burstsArg = '1'] = process.argv.slice(2);
const seconds = Number(secondsArg);
const burstCount = Number(burstsArg);
const concurrency = Number(concurrencyArg);
const attacks = attackList.split(',');
const transports = transportList.split(',') as ('tcp' | 'ws')[];


interface Ready {
  mqtt: string;
  ws: string;
  root?: string;
  device?: { id: string; secret: string };
  victim?: { id: string; secret: string };
}
interface MemReport {
  mem: NodeJS.MemoryUsage;
  connections: number;
  handles: number;
}

const child = fork(new URL('./flood-target.ts', import.meta.url).pathname, [kind], {
  execArgv: ['--expose-gc'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  env: process.env,
});
child.setMaxListeners(100);
const ready = await new Promise<Ready>((resolve) => child.on('message', (m: { ready?: Ready }) => m.ready && resolve(m.ready)));

function ask(what: 'mem' | 'gc'): Promise<MemReport> {
  return new Promise((resolve) => {
    const on = (m: MemReport & { ready?: unknown }) => {
      if (m.mem) {
        child.off('message', on);
        resolve(m);
      }
    };
    child.on('message', on);
    child.send(what);
  });
}

const baseline = await ask('gc');
/** The current burst's end. */
let deadline = 0;
const live = new Set<{ destroy(): void }>();
let stopped = false;

/** A raw duplex over TCP or WebSocket with the few operations the attacks need. */
interface Pipe {
  write(b: Buffer): boolean;
  destroy(): void;
  closed: Promise<void>;
  /** Resolves when the pipe can take more (TCP drain; WS buffered amount small). */
  drained(): Promise<void>;
}

function open(transport: 'tcp' | 'ws'): Promise<Pipe | undefined> {
  return new Promise((resolve) => {
    if (transport === 'tcp') {
      const u = new URL(ready.mqtt);
      const s: Socket = netConnect({ host: u.hostname, port: Number(u.port) });
      s.on('error', () => {});
      s.once('connect', () => {
        const pipe: Pipe = {
          write: (b) => s.write(b),
          destroy: () => s.destroy(),
          closed: new Promise((r) => s.once('close', () => r())),
          drained: () => (s.writableNeedDrain ? new Promise((r) => s.once('drain', () => r())) : Promise.resolve()),
        };
        live.add(pipe);
        void pipe.closed.then(() => live.delete(pipe));
        resolve(pipe);
      });
      s.once('close', () => resolve(undefined));
    } else {
      const ws = new WebSocket(ready.ws, ['mqtt']);
      ws.on('error', () => {});
      ws.once('open', () => {
        const pipe: Pipe = {
          write: (b) => (ws.readyState === ws.OPEN ? (ws.send(b), ws.bufferedAmount < 1 << 20) : false),
          destroy: () => ws.terminate(),
          closed: new Promise((r) => ws.once('close', () => r())),
          drained: async () => {
            while (ws.readyState === ws.OPEN && ws.bufferedAmount > 1 << 20) await new Promise((r) => setTimeout(r, 5));
          },
        };
        live.add(pipe);
        void pipe.closed.then(() => live.delete(pipe));
        resolve(pipe);
      });
      ws.once('close', () => resolve(undefined));
    }
  });
}

const rnd = (n: number) => Math.floor(Math.random() * n);
const hold = (p: Pipe) => Promise.race([p.closed, new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())))]);

const ATTACKS: Record<string, (t: 'tcp' | 'ws') => Promise<void>> = {
  async garbage(t) {
    const p = await open(t);
    if (!p) return;
    p.write(randomBytes(1 + rnd(4096)));
    await Promise.race([p.closed, new Promise((r) => setTimeout(r, 50))]);
    p.destroy();
  },
  async 'half-open'(t) {
    const p = await open(t);
    if (p) await hold(p);
  },
  async partial(t) {
    const p = await open(t);
    if (!p) return;
    const c = connectPacket({ clientId: `p${rnd(1e9)}` });
    p.write(c.subarray(0, c.length >> 1));
    await hold(p);
  },
  async 'big-claim'(t) {
    const p = await open(t);
    if (!p) return;
    p.write(Buffer.concat([Buffer.from([0x10]), varint(200 * 1024 * 1024)]));
    const chunk = randomBytes(64 * 1024);
    let open_ = true;
    void p.closed.then(() => (open_ = false));
    while (open_ && Date.now() < deadline && !stopped) {
      if (!p.write(chunk)) await Promise.race([p.drained(), p.closed]);
    }
    p.destroy();
  },
  async fuzz(t) {
    const p = await open(t);
    if (!p) return;
    const id = `fz${rnd(1e9)}`;
    p.write(connectPacket({ clientId: id, clean: Math.random() < 0.5, keepalive: 0, will: Math.random() < 0.3 ? { topic: `w/${id}`, payload: randomBytes(rnd(1024)), qos: 1, retain: true } : undefined }));
    let open_ = true;
    void p.closed.then(() => (open_ = false));
    for (let i = 0; open_ && i < 200 && Date.now() < deadline && !stopped; i++) {
      const r = Math.random();
      let b: Buffer;
      if (r < 0.5) b = publishPacket(`f/${rnd(1e6)}/${rnd(100)}`, randomBytes(rnd(64 * 1024)), { qos: rnd(3), retain: Math.random() < 0.5, id: 1 + rnd(65000) });
      else if (r < 0.75) b = subscribePacket(1 + rnd(65000), [[Math.random() < 0.3 ? '#' : `f/${rnd(1e6)}/+`, rnd(3)]]);
      else {
        b = publishPacket(`f/${rnd(1e6)}`, randomBytes(rnd(512)), { qos: 1, id: 1 });
        for (let k = 0; k < 3; k++) b[rnd(b.length)] = rnd(256);
      }
      if (!p.write(b)) await Promise.race([p.drained(), p.closed]);
    }
    await hold(p);
  },
  async 'slow-reader'(t) {
    // tali: an authenticated device that stops reading its socket and provokes replies (errors on its down topic).
    if (!ready.device || t !== 'tcp') return;
    const u = new URL(ready.mqtt);
    const s = netConnect({ host: u.hostname, port: Number(u.port) });
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    live.add(s);
    const { id, secret } = ready.device;
    s.write(connectPacket({ clientId: id, username: id, password: secret, keepalive: 0 }));
    s.write(subscribePacket(1, [[`${ready.root}/v1/device/${id}/down`, 1]]));
    await new Promise((r) => setTimeout(r, 200));
    s.pause();
    const junk = publishPacket(`${ready.root}/v1/device/${id}/up`, '{"v":1,', { qos: 0 });
    while (!s.destroyed && Date.now() < deadline && !stopped) {
      if (!s.write(junk)) await new Promise((r) => setTimeout(r, 1));
    }
    s.destroy();
  },
  async device(t) {
    if (!ready.device) return;
    const p = await open(t);
    if (!p) return;
    const { id, secret } = ready.device;
    p.write(connectPacket({ clientId: id, username: id, password: secret, keepalive: 0 }));
    p.write(subscribePacket(1, [[`${ready.root}/v1/device/${id}/down`, 1]]));
    let open_ = true;
    void p.closed.then(() => (open_ = false));
    for (let i = 0; open_ && Date.now() < deadline && !stopped; i++) {
      if (!p.write(publishPacket(`${ready.root}/v1/device/${id}/up`, '{"v":1,', { qos: 1, id: 1 + (i % 65000) }))) {
        await Promise.race([p.drained(), p.closed]);
      }
    }
    p.destroy();
  },
};

async function actor(name: string, t: 'tcp' | 'ws'): Promise<void> {
  const attack = ATTACKS[name];
  if (!attack) throw new Error(`unknown attack ${name}`);
  while (Date.now() < deadline && !stopped) {
    await attack(t).catch(() => {});
    if (name === 'device') await new Promise((r) => setTimeout(r, 200));
  }
}

/** A well-behaved client in its own process (so the attackers' event loop does not slow it): bench/well-behaved.ts. */
function wellBehaved(): Promise<{ ok: number; failed: number; p50: number; max: number }> {
  const child = fork(new URL('./well-behaved.ts', import.meta.url).pathname, [JSON.stringify(ready), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  return new Promise((resolve) => child.stdout?.on('data', (d: Buffer) => resolve(JSON.parse(d.toString()))));
}

const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;

/** One burst of every attack, then the target settled: every attacker's socket closed, 3 s, a full GC. */
async function burst() {
  deadline = Date.now() + seconds * 1000;
  stopped = false;
  let peakRss = 0;
  let peakHeap = 0;
  let peakExternal = 0;
  let peakConnections = 0;
  const sampler = setInterval(async () => {
    const r = await ask('mem');
    peakRss = Math.max(peakRss, r.mem.rss);
    peakHeap = Math.max(peakHeap, r.mem.heapUsed);
    peakExternal = Math.max(peakExternal, r.mem.external + r.mem.arrayBuffers);
    peakConnections = Math.max(peakConnections, r.connections);
  }, 250);
  const actors: Promise<void>[] = [];
  for (const name of attacks) for (const t of transports) for (let i = 0; i < concurrency; i++) actors.push(actor(name, t));
  const good = wellBehaved();
  await Promise.all(actors);
  stopped = true;
  const goodResult = await good;
  clearInterval(sampler);
  for (const p of live) p.destroy();
  await new Promise((r) => setTimeout(r, 3000));
  const settled = await ask('gc');
  return {
    peak: { rss: mb(peakRss), heap: mb(peakHeap), external: mb(peakExternal), connections: peakConnections },
    settled: { rss: mb(settled.mem.rss), heap: mb(settled.mem.heapUsed), heapTotal: mb(settled.mem.heapTotal), external: mb(settled.mem.external), connections: settled.connections, handles: settled.handles },
    wellBehaved: goodResult,
  };
}

const bursts: Awaited<ReturnType<typeof burst>>[] = [];
for (let i = 0; i < burstCount; i++) bursts.push(await burst());
const last = bursts.at(-1);
console.log(
  JSON.stringify({
    target: kind,
    attacks,
    transports,
    seconds,
    concurrency,
    baseline: { rss: mb(baseline.mem.rss), heap: mb(baseline.mem.heapUsed), heapTotal: mb(baseline.mem.heapTotal), external: mb(baseline.mem.external) },
    peak: last?.peak,
    settled: last?.settled,
    wellBehaved: last?.wellBehaved,
    ...(burstCount > 1 ? { bursts } : {}),
  }),
);
if (process.env.FLOOD_SNAPSHOT) {
  child.send('snapshot');
  const file = await new Promise((resolve) => child.on('message', (m: { snapshot?: string }) => m.snapshot && resolve(m.snapshot)));
  console.log(`heap snapshot of the target after the attack: ${file}`);
}
child.kill();
process.exit(0);
